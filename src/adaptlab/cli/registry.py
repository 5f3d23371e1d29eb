"""`adaptlab registry list|show|promote|check`: the versions compare registered, and which one each task serves."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.table import Table

from adaptlab.cli import app

registry_app = typer.Typer(help="Solver versions (task@vN), their files and lineage, and the promoted version of each task.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")


@registry_app.command("list")
def list_versions(task: str = typer.Argument(None, help="Only this task's versions.")) -> None:
    """Every registered version, oldest first; * marks the promoted one."""
    from adaptlab.registry import default_registry, parse_ref

    if task:
        parse_ref(task)
    registry = default_registry()
    table = Table(title="registry")
    for column in ("version", "contender", "kind", "metric", "run", "created"):
        table.add_column(column)
    for v in registry.versions(task):
        metrics = v.lineage.get("metrics") or {}
        headline = next(iter(metrics.items()), None)
        table.add_row(("* " if v.promoted else "  ") + v.ref, v.contender or v.strategy, v.strategy, f"{headline[0]} {headline[1]:.3f}" if headline else "", v.run_id or "", v.created)
    Console(width=140 if not sys.stdout.isatty() else None).print(table)


@registry_app.command()
def show(ref: str = typer.Argument(..., help="task@vN, or a task name for its promoted version.")) -> None:
    """One version as JSON: files with their sha256, lineage, run."""
    from adaptlab.registry import default_registry

    print(json.dumps(default_registry().get(ref).to_dict(), indent=2, ensure_ascii=False))


@registry_app.command()
def promote(
    ref: str = typer.Argument(..., help="task@vN to serve for the task's name."),
    mlflow_uri: str = typer.Option(None, "--mlflow-uri", help="Also move MLflow's 'champion' alias in this tracking store (default: the store the version's compare logged to, if it did; registers the version there if MLflow lacks it)."),
) -> None:
    """Make task@vN the version `adaptlab serve` answers for the task's name (its files are verified first), and MLflow's 'champion' when the compare was logged to MLflow."""
    from adaptlab.integrations.mlflow import CHAMPION, link_of, move_champion
    from adaptlab.integrations.mlflow_summary import masked
    from adaptlab.registry import default_registry

    registry = default_registry()
    link = link_of(registry, ref, mlflow_uri)  # before promoting: a missing mlflow extra changes nothing
    version = registry.promote(ref)
    print(f"promoted {version.ref}")
    if link:
        print(f"mlflow: model {link.model!r} version {move_champion(version, link)} ({version.ref}) is {CHAMPION!r} at {masked(link.uri)}")


@registry_app.command()
def check(load: bool = typer.Option(False, "--load", help="Also load every version through its kind, on the base model it was fitted on (slower: loads those models).")) -> None:
    """Find rows whose files are missing or corrupted (exit 1), leftovers of interrupted writes, and versions
    whose documents changed since they were indexed or fitted (stale: refresh them with `adaptlab compare --refresh RUN`)."""
    from adaptlab.registry import default_registry

    registry = default_registry()
    problems, notes = registry.check()
    for ref, changed in registry.stale().items():
        run = registry.get(ref).run_id
        notes.append(f"{ref} is stale: its documents changed since ({', '.join(changed)}); `adaptlab compare --refresh {run}` re-indexes and retrains from its recorded config")
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
