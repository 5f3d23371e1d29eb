"""`adaptlab registry list|show|promote|check|rm|gc`: the versions compare registered, which one each task serves, and
removing them."""

from __future__ import annotations

import json
import shutil
import sys

import typer
from rich.console import Console
from rich.table import Table

from adaptlab.cli import app

registry_app = typer.Typer(
    help="Solver versions (task@vN), their files and lineage, and the promoted version of each task.",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")


@registry_app.command("list")
def list_versions(
    task: str = typer.Argument(None, help="Only this task's versions."),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print the versions as a JSON list (each as `registry show` prints one) instead of the table.",
    ),
) -> None:
    """Every registered version, oldest first; * marks the promoted one."""
    from adaptlab.registry import default_registry, parse_ref

    if task:
        parse_ref(task)
    registry = default_registry()
    if as_json:
        print(json.dumps([v.to_dict() for v in registry.versions(task)], indent=1))
        return
    table = Table(title="registry")
    for column in ("version", "contender", "kind", "metric", "run", "created"):
        table.add_column(column)
    for v in registry.versions(task):
        table.add_row(
            ("* " if v.promoted else "  ") + v.ref,
            v.contender or v.strategy,
            v.strategy,
            headline(v.lineage.get("metrics"), _task_metric(v)),
            v.run_id or "",
            v.created,
        )
    Console(width=140 if not sys.stdout.isatty() else None).print(table)


def headline(metrics, metric: str | None = None) -> str:
    """A version's recorded score in words, `metric`'s where it is there, else the first number: "accuracy 0.830".

    Lineages keep metrics in more than one shape: compare's {metric: number}, {metric: {"value": number, ...}},
    finetune's {"test": {metric: number}, "test_ci95": {...}, "best_dev_score": number}; "" when none holds a number.

    >>> finetuned = {"test": {"accuracy": 0.8, "macro_f1": 0.7}, "best_dev_score": 0.75}
    >>> headline(finetuned, "macro_f1"), headline({"qa_score": {"value": 0.41}}), headline(None)
    ('macro_f1 0.700', 'qa_score 0.410', '')
    """
    figures = list(_figures(metrics))
    name, value = next((f for f in figures if f[0] == metric), figures[0] if figures else (None, None))
    return "" if value is None else (f"{name} " if name else "") + f"{value:.3f}"


def _figures(value, name: str | None = None):
    """Every (name, number) in a recorded metrics value, in order: a number is its name's, and so is a dict's "value";
    other dicts are searched."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        yield name, float(value)
    elif (
        isinstance(value, dict)
        and isinstance(value.get("value"), (int, float))
        and not isinstance(value["value"], bool)
    ):
        yield name, float(value["value"])
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _figures(inner, str(key))


def _task_metric(version) -> str | None:
    """The headline metric of the version's task: its lineage's task (finetune), else the task.json saved with it
    (compare)."""
    task = version.lineage.get("task")
    if not isinstance(task, dict):
        try:
            task = json.loads((version.folder / "task.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):  # no task.json: a version registered before it was saved
            return None
    metric = task.get("metric") if isinstance(task, dict) else None
    return metric if isinstance(metric, str) else None


@registry_app.command()
def show(ref: str = typer.Argument(..., help="task@vN, or a task name for its promoted version.")) -> None:
    """One version as JSON: files with their sha256, lineage, run."""
    from adaptlab.registry import default_registry

    print(json.dumps(default_registry().get(ref).to_dict(), indent=2, ensure_ascii=False))


@registry_app.command()
def promote(
    ref: str = typer.Argument(..., help="task@vN to serve for the task's name."),
    mlflow_uri: str = typer.Option(
        None,
        "--mlflow-uri",
        help="Also move MLflow's 'champion' alias in this tracking store (default: the store the "
        "version's compare logged to, if it did; registers the version there if MLflow lacks it).",
    ),
) -> None:
    """Make task@vN the version `adaptlab serve` answers for the task's name (its files are verified first), and
    MLflow's 'champion' when the compare was logged to MLflow."""
    from adaptlab.integrations.mlflow import CHAMPION, link_of, move_champion
    from adaptlab.integrations.mlflow_summary import masked
    from adaptlab.registry import default_registry

    registry = default_registry()
    link = link_of(registry, ref, mlflow_uri)  # before promoting: a missing mlflow extra changes nothing
    version = registry.promote(ref)
    print(f"promoted {version.ref}")
    if link:
        print(
            f"mlflow: model {link.model!r} version {move_champion(version, link)} ({version.ref}) is "
            f"{CHAMPION!r} at {masked(link.uri)}"
        )


LEFTOVER_AGE_S = 3600  # gc leaves younger leftover folders alone: they may be a compare's write in progress


@registry_app.command("rm")
def remove(refs: list[str] = typer.Argument(..., metavar="task@vN...", help="The versions to remove.")) -> None:
    """Delete versions' files (a task's promoted version is refused); their numbers are never given again."""
    from adaptlab.registry import default_registry

    registry = default_registry()
    for ref in refs:
        version = registry.remove(ref)
        print(f"removed {version.ref} ({version.contender or version.strategy}, run {version.run_id})")


@registry_app.command()
def gc(dry_run: bool = typer.Option(False, "--dry-run", help="Only print what would be deleted.")) -> None:
    """Delete the versions no alias or run refers to (not promoted, and their compare's run folder is gone), and the
    files of interrupted writes (untouched for an hour)."""
    from adaptlab.registry import default_registry

    registry = default_registry()
    versions, leftovers = registry.unused(), registry.leftovers(older_than_s=LEFTOVER_AGE_S)
    verb = "would remove" if dry_run else "removed"
    for version in versions:
        if not dry_run:
            registry.remove(version.ref)
        print(
            f"{verb} {version.ref} ({version.contender or version.strategy}; its run "
            f"{version.run_id or '(none recorded)'} has no folder)"
        )
    for folder in leftovers:
        if not dry_run:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"{verb} {folder} (files no version points at)")
    kept = len(registry.versions()) - (len(versions) if dry_run else 0)
    print(f"{len(versions)} version(s) and {len(leftovers)} leftover folder(s) {verb}; {kept} version(s) kept")


@registry_app.command()
def check(
    load: bool = typer.Option(
        False,
        "--load",
        help="Also load every version through its kind, on the base model it was fitted on (slower: loads "
        "those models).",
    ),
) -> None:
    """Find rows whose files are missing or corrupted (exit 1), leftovers of interrupted writes, and versions
    whose documents changed since they were indexed or fitted (stale: refresh them with `adaptlab compare --refresh
    RUN`)."""
    from adaptlab.registry import default_registry

    registry = default_registry()
    problems, notes = registry.check()
    for ref, changed in registry.stale().items():
        run = registry.get(ref).run_id
        notes.append(
            f"{ref} is stale: its documents changed since ({', '.join(changed)}); `adaptlab compare "
            f"--refresh {run}` re-indexes and retrains from its recorded config"
        )
    if load:
        problems += _load_problems(registry, {p.split(":")[0] for p in problems})
    for note in notes:
        print(f"note: {note}")
    for problem in problems:
        print(f"problem: {problem}")
    print(f"{len(problems)} problem(s)")
    if problems:
        raise typer.Exit(1)


def _load_problems(registry, broken: set[str]) -> list[str]:
    """Each version whose files verified, loaded the one way the server loads it; what failed, by version."""
    from adaptlab import kinds
    from adaptlab.kinds.context import LocalModels

    models, out = LocalModels(device="cpu"), []
    for version in registry.versions():
        if version.ref in broken:
            continue
        try:
            kinds.kind(version.strategy).load(version.folder, models)
        except Exception as exc:  # any failure to load is what this check reports
            out.append(f"{version.ref}: does not load ({type(exc).__name__}: {exc})")
    return out
