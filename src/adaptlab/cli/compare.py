"""`adaptlab compare EXPERIMENT.yaml`: the side-by-side table and the recommendation."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from adaptlab.cli import app, err


@app.command()
def compare(
    experiment: Path = typer.Argument(..., help="Experiment YAML (task, data, model, strategies)."),
    out: Path = typer.Option(None, "--out", help="Run folder to write; default $ADAPTLAB_HOME/runs/<time>-<task>."),
) -> None:
    """Fit every strategy in EXPERIMENT, measure each on the same held-out rows, and recommend one."""
    from adaptlab.experiment import run_compare

    results, run_dir = run_compare(experiment, out, console=err)
    console = Console()
    console.print(results_table(results))
    rec = results["recommendation"]
    console.print(f"\n[bold]Recommendation: {rec['choice']}[/]")
    for reason in rec["reasons"]:
        console.print(f"  - {reason}", highlight=False)
    for warning in rec["warnings"]:
        console.print(f"  [yellow]warning:[/] {warning}", highlight=False)
    console.print(f"\nresults: {run_dir / 'results.json'}", highlight=False)


def results_table(results: dict) -> Table:
    """One row per strategy: quality with its 95% interval, then time, tokens and memory."""
    task = results["task"]
    metric = task["metric"]
    names = ["accuracy", "macro_f1"] if task["kind"] == "classify" else ["chrf", "exact_match"]
    table = Table(title=f"{task['name']} ({task['kind']}, {len(results['strategies'][0]['predictions'])} test rows)")
    table.add_column("strategy")
    for name in names:
        table.add_column(name + (" [95% CI]" if name == metric else ""), justify="right")
    if task["kind"] == "classify":
        table.add_column("labels used", justify="right")
    for col in ("fit s", "ms/query", "prompt tok", "peak RSS MB"):
        table.add_column(col, justify="right")
    for s in results["strategies"]:
        cells = [s["name"]]
        for name in names:
            value = f"{s['metrics'][name]:.3f}" if name != "chrf" else f"{s['metrics'][name]:.1f}"
            if name == metric:
                lo, hi = s["ci95"][metric]
                value += f" [{lo:.2f}-{hi:.2f}]" if name != "chrf" else f" [{lo:.1f}-{hi:.1f}]"
            cells.append(value)
        if task["kind"] == "classify":
            cells.append(f"{s['labels_predicted']}/{len(task['labels'])}")
        cells += [f"{s['fit_seconds']:.1f}", f"{s['latency_ms_mean']:.0f}", f"{s['prompt_tokens_mean']:.0f}", f"{s['peak_rss_mb']:.0f}"]
        table.add_row(*cells)
    return table
