"""`adaptlab sweep EXPERIMENT.yaml`: the learning curve, prompting vs fine-tuning, and where they cross."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from adaptlab.cli import app, err


@app.command()
def sweep(
    experiment: Path = typer.Argument(
        ...,
        help="Experiment YAML with at least one prompted strategy and one fine-tuned strategy (each kind's "
        "family: docs/kinds.md).",
    ),
    sizes: str = typer.Option(
        "8,16,32,64", "--sizes", help="Training-set sizes to try, comma-separated; the full set is always added."
    ),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Samples per size (each a different seeded draw of rows)."),
    out: Path = typer.Option(
        None, "--out", help="Folder for sweep.json; default $ADAPTLAB_HOME/runs/<time>-<task>-sweep."
    ),
    model: str = typer.Option(
        None,
        "--model",
        help="Base model instead of the experiment's: 'smollm2-135m-instruct', a local Hugging Face "
        "folder, or a .gguf file.",
    ),
) -> None:
    """Quality against the number of labeled examples for each strategy, and the size from which fine-tuning overtakes
    prompting."""
    from adaptlab.api import sweep as run_sweep
    from adaptlab.cli.events import RichEvents
    from adaptlab.errors import ConfigError
    from adaptlab.files import new_folder
    from adaptlab.home import adaptlab_home

    try:
        points = tuple(int(x) for x in sizes.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--sizes must be comma-separated whole numbers, got {sizes!r}") from None
    if not points or min(points) < 1:
        raise ConfigError("--sizes needs at least one size of 1 or more")
    out = out or new_folder(adaptlab_home() / "runs", "sweep")
    result = run_sweep(experiment, sizes=points, seeds=seeds, out=out, progress=RichEvents(err), model=model)
    table = Table(
        title=f"{result['task']['name']}: mean {result['metric']} by training-set size ({seeds} seeds "
        "each, one for the full set)"
    )
    table.add_column("strategy")
    for n in result["sizes"]:
        table.add_column(str(n), justify="right")
    for name, points_ in result["curve"].items():
        table.add_row(name, *[f"{p['mean']:.3f}" for p in points_])
    Console().print(table)
    for c in result["comparisons"]:
        where = f"from n={c['crossover_n']}" if c["crossover_n"] else "not within the sizes tried"
        sure = (
            f"significantly from n={c['significant_from_n']}"
            if c["significant_from_n"]
            else "never significantly (95% paired bootstrap)"
        )
        print(f"{c['fine_tuned']} overtakes {c['prompted']}: {where}; {sure}")
    print(f"sweep: {out / 'sweep.json'}")
