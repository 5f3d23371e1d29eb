"""`adaptlab export RUN --format peft|merged OUT`: a fine-tuned result in the formats PEFT, transformers and vLLM load."""

from __future__ import annotations

from pathlib import Path

import typer

from adaptlab.cli import app


@app.command()
def export(
    run: Path = typer.Argument(..., help="An `adaptlab finetune` run folder, or a compare run's solvers/ID folder of a lora or full contender."),
    out: Path = typer.Argument(..., help="Folder to create."),
    format: str = typer.Option("peft", "--format", help="peft: the adapter (PEFT, vLLM --enable-lora); merged: base and adapter folded into one safetensors model."),
) -> None:
    """Export a fine-tuned adapter, or merged full weights, for serving elsewhere (see the README for vLLM)."""
    from adaptlab.errors import ConfigError
    from adaptlab.finetune.export import export as write

    if format not in ("peft", "merged"):
        raise ConfigError(f"--format must be peft or merged, got {format!r}")
    print(f"wrote {write(run, format, out)}")
