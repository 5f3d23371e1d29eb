"""`adaptlab report RUN`: (re)write the run folder's self-contained report.html."""

from __future__ import annotations

from pathlib import Path

import typer

from adaptlab.cli import app


@app.command()
def report(
    run: Path = typer.Argument(
        ..., help="A compare run folder (with results.json; a sweep.json beside it adds the learning curve)."
    ),
) -> None:
    """Write RUN/report.html: recommendation, table with intervals, cost chart, learning curve, audit, confusion
    matrices, disagreements."""
    from adaptlab.errors import ConfigError
    from adaptlab.report import write_report

    if not (run / "results.json").is_file():
        raise ConfigError(f"{run}: no results.json; pass a folder `adaptlab compare` wrote")
    print(f"wrote {write_report(run)}")
