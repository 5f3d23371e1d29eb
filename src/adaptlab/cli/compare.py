"""`adaptlab compare EXPERIMENT.yaml`: the side-by-side table and the recommendation."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from adaptlab.cli import app, err
from adaptlab.cli.audit import audit_table
from adaptlab.models.embedded import EMBEDDED_NAME
from adaptlab.results import CompareResults, Contender, Power, Updates
from adaptlab.tasks import task_kind

if TYPE_CHECKING:
    from adaptlab.api import Comparison


@app.command()
def compare(
    experiment: Path = typer.Argument(
        None, help="Experiment YAML (task, data, model, strategies); leave out with --refresh."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="Run folder to write; default a new $ADAPTLAB_HOME/runs/<time>-<task>-<6 hex>; an existing "
        "folder must be empty.",
    ),
    model: str = typer.Option(
        None,
        "--model",
        help=f"Base model instead of the experiment's: '{EMBEDDED_NAME}', a local Hugging Face folder, or "
        "a .gguf file.",
    ),
    mlflow: bool = typer.Option(
        False,
        "--mlflow",
        help="Log the run to MLflow (pip install 'adaptlab[mlflow]'): a parent run, a child run per "
        "contender, the recommended solver registered with the alias 'champion'. Tracking URI: the "
        "experiment's mlflow.tracking_uri, else $MLFLOW_TRACKING_URI, else sqlite under "
        "$ADAPTLAB_HOME/mlflow.",
    ),
    mlflow_uri: str = typer.Option(
        None,
        "--mlflow-uri",
        help="Log to this MLflow tracking URI (implies --mlflow), e.g. sqlite:///mlflow.db or http://127.0.0.1:5000.",
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print a JSON summary on stdout instead of the tables: the run folder, results.json and "
        "report.html, the recommendation, each contender's headline score with its interval, "
        "P(best), cost and flags; progress stays on stderr.",
    ),
    resume: Path = typer.Option(
        None,
        "--resume",
        help="A compare run folder that did not complete (interrupted, killed, failed): continue it with "
        "its recorded experiment; the contenders it finished are kept as measured, the rest run.",
    ),
    refresh: str = typer.Option(
        None,
        "--refresh",
        help="A compare run (its id, as `adaptlab registry list` shows it, or its folder) to run again "
        "from its recorded config on the documents as they are now: rag versions re-index the "
        "changed files, fine-tuned ones retrain; new versions are registered.",
    ),
) -> None:
    """Fit every strategy in EXPERIMENT, measure each on the same held-out rows, and recommend one."""
    from adaptlab.api import compare as run
    from adaptlab.cli.events import RichEvents
    from adaptlab.errors import ConfigError

    if sum(x is not None for x in (experiment, refresh, resume)) != 1:
        raise ConfigError(
            "give an experiment file, or --resume RUN to continue a compare that did not complete, "
            "or --refresh RUN to run a recorded comparison again (one of them)"
        )
    if refresh is not None:
        from adaptlab.runs.compare import recorded_experiment

        experiment = recorded_experiment(refresh)
        err.print(f"refreshing {refresh}: its recorded experiment {experiment}")
    result = run(
        experiment,
        out=out,
        model=model,
        progress=RichEvents(err),
        mlflow=mlflow_uri or (True if mlflow else None),
        resume=resume,
    )
    if as_json:
        print(json.dumps(summary(result.results, result.run_dir, result.mlflow), indent=1))
        return
    _print_result(result)


def _print_result(result: Comparison) -> None:
    """The tables, the recommendation with its reasons and warnings, break-even, and where the run's files are."""
    results, run_dir = result.results, result.run_dir
    console = Console() if sys.stdout.isatty() else Console(width=120)
    console.print(audit_table(results.audit, "the training data"))
    console.print(results_table(results))
    if results.updates:
        console.print(updates_table(results.updates))
    rec = results.recommendation
    console.print(f"\n[bold]Recommendation: {rec.choice}[/]")
    for reason in rec.reasons:
        console.print(f"  - {escape(reason)}", highlight=False, soft_wrap=True)
    for warning in rec.warnings:
        console.print(f"  [yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for row in results.break_even_queries:
        queries = (
            row.queries if isinstance(row.queries, str) or row.queries is None else f"after {row.queries:,} queries"
        )
        console.print(
            f"  break-even, {row.fine_tuned} vs {row.prompted}: {queries or 'unknown'} ({row.why}; "
            f"${results.cost_assumptions.get('dollars_per_hour', '?')}/hour)",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"\nresults: {run_dir / 'results.json'}\nreport:  {run_dir / 'report.html'}", highlight=False)
    logged = result.mlflow  # read from mlflow.json once
    if logged:
        from adaptlab.integrations.mlflow_summary import masked

        champion = logged["champion"]
        console.print(
            f"mlflow:  experiment {logged['experiment']!r}, parent run {logged['parent_run_id']} at "
            f"{masked(logged['tracking_uri'])}"
            + (
                f"; model {logged['registered_model']!r} version {champion['version']} "
                f"({champion['ref']}) is {champion['alias']!r}"
                if champion
                else ""
            ),
            highlight=False,
            soft_wrap=True,
        )


def summary(results: CompareResults, run_dir: Path, mlflow: dict | None) -> dict:
    """`compare --json`: what a script reads from a run, in one object (results.json has everything)."""
    metric = results.task.metric
    contenders = [
        {
            "name": s.name,
            "kind": s.traits.get("kind", s.name),
            metric: s.metrics[metric],
            "ci": s.ci[metric],
            "p_best": s.p_best,
            "cost_per_1k_queries": s.cost_per_1k_queries,
            "flags": s.flags,
        }
        for s in results.strategies
    ]
    rec = results.recommendation
    return {
        "run_dir": str(run_dir),
        "results": str(run_dir / "results.json"),
        "report": str(run_dir / "report.html"),
        "task": results.task.name,
        "metric": metric,
        "choice": rec.choice,
        "reasons": rec.reasons,
        "warnings": rec.warnings,
        "contenders": contenders,
    } | ({"mlflow": mlflow} if mlflow else {})


def results_table(results: CompareResults) -> Table:
    """One row per strategy: quality with its 95% interval and P(best), then time, tokens and memory; below it, what the
    test split could detect."""
    task = results.task
    metric = task.metric
    spec = task_kind(task.kind)
    others = spec.columns(metric)
    digits = spec.metric(metric).digits
    table = Table(title=f"{task.name}: {task.kind}, {len(results.strategies[0].predictions)} test rows")
    repeated = any(s.repeats for s in results.strategies)
    numbers = (  # right-aligned, after the strategy's name
        [metric, "95% CI"]
        + (["repeats"] if repeated else [])
        + ["P(best)"]
        + [o.column for o in others]
        + (["labels"] if spec.labelled else [])
        + ["fit s", "ms/query", "prompt tok", "peak MB", "$/1k queries"]
    )
    table.add_column("strategy", justify="left")
    for name in numbers:
        table.add_column(name, justify="right")
    for s in results.strategies:
        table.add_row(*_row(s, results, spec, others, repeated, digits))
    table.caption = power_line(results.power, digits)
    return table


def _row(s: Contender, results: CompareResults, spec, others, repeated: bool, digits: int) -> list[str]:
    """One contender's cells: its name with what it is, the headline with its interval, the other metrics, then its
    costs."""
    metric = results.task.metric
    lo, hi = s.ci[metric]
    model = s.solver.get("base_model")
    where = (
        f" ({model['name']} @ {model['base_url']})"
        if isinstance(model, dict)
        else (f" ({model})" if model and model != results.base_model else "")
    )
    kind = s.traits.get("kind", s.name)
    name = (
        s.name
        + (f" [{kind}]" if kind != s.name else "")
        + (" (tuned)" if s.solver.get("tuning") else "")
        + where
        + (" (degenerate)" if s.flags else "")
    )
    cells = [escape(name), f"{s.metrics[metric]:.{digits}f}", f"{lo:.{digits}f}-{hi:.{digits}f}"] + (
        [_spread(s.repeats, digits)] if repeated else []
    )
    cells += ["-" if s.p_best is None else f"{s.p_best:.0%}"] + [
        "-" if s.metrics.get(o.name) is None else f"{s.metrics[o.name]:.{o.digits}f}" for o in others
    ]
    if spec.labelled:
        cells.append(f"{s.labels_predicted}/{len(results.task.labels)}")
    cost = s.cost_per_1k_queries
    return cells + [
        f"{s.fit_seconds:.1f}",
        f"{s.latency_ms_mean:.0f}",
        f"{s.prompt_tokens_mean:.0f}",
        f"{s.peak_rss_mb:.0f}",
        "?" if cost is None else f"{cost:.4f}",
    ]


def updates_table(update: Updates) -> Table:
    """After a document update, without retraining: each contender's score and stale answers before and after, and what
    absorbing it took."""
    from adaptlab.evaluation.freshness import absorbed_by

    table = Table(
        title=f"after the document update ({', '.join(update.changed + update.added)}): {update.questions} "
        "update questions"
    )
    for name in (
        "strategy",
        "score before",
        "score after",
        "stale before",
        "stale after",
        "absorbed by",
        "seconds",
        "$",
    ):
        table.add_column(name, justify="left" if name in ("strategy", "absorbed by") else "right")
    for name, u in update.contenders.items():
        table.add_row(
            name,
            f"{u.before.score:.3f}",
            f"{u.after.score:.3f}",
            f"{u.before.stale:.0%}",
            f"{u.after.stale:.0%}",
            absorbed_by(u.absorb),
            f"{u.absorb['seconds']:.1f}",
            f"{u.absorb['dollars']:.4f}",
        )
    return table


def _spread(repeats: list | None, digits: int) -> str:
    """A contender's repeats as 'lowest-highest (n)', or '1' when it ran once."""
    return f"{min(repeats):.{digits}f}-{max(repeats):.{digits}f} ({len(repeats)})" if repeats else "1"


def power_line(power: Power | None, digits: int) -> str | None:
    """The table's footer: the difference the test split could detect between the top two, and the rows that would
    settle their gap."""
    if not power:
        return None
    a, b = power.between
    if power.detectable_difference is None:
        return (
            f"{a} and {b} differ by the same amount on all {power.rows} test rows: the split gives no "
            "spread to size a detectable difference by"
        )
    line = (
        f"{power.rows} test rows can detect a difference in {power.metric} of about "
        f"{power.detectable_difference:.{digits}f} between {a} and {b} (80% power, 5% level)"
    )
    if power.rows_to_settle:
        line += f"; their gap of {power.difference:+.{digits}f} needs about {power.rows_to_settle:,} rows"
    return line
