"""`adaptlab export RUN --out FOLDER --format peft|merged` (a fine-tuned result for PEFT and transformers) and
`adaptlab export VERSION... --out FOLDER --format vllm` (registered versions, with serve.sh, for a vLLM server)."""

from __future__ import annotations

from pathlib import Path

import typer

from adaptlab.cli import app


@app.command()
def export(
    sources: list[str] = typer.Argument(
        ...,
        metavar="RUN|VERSION",
        help="peft, merged: an `adaptlab finetune` run folder, or a compare run's solvers/ID folder of a "
        "fine-tuned contender. vllm: one or more registry versions (task@vN, or a task for its "
        "promoted version).",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Folder to create (as every command's --out: the folder it writes into)."
    ),
    format: str = typer.Option(
        "peft",
        "--format",
        help="peft: the adapter (PEFT, vLLM --enable-lora); merged: base and adapter folded into one "
        "safetensors model; vllm: registered LoRA-adapter and prompted versions with serve.sh, prompts.json "
        "and client.py (versions vLLM cannot serve are refused, naming why).",
    ),
) -> None:
    """Export a fine-tuned adapter or merged full weights, or registered versions for a vLLM server."""
    from adaptlab.errors import ConfigError

    if format == "vllm":
        from adaptlab.serve.vllm import export_vllm

        result = export_vllm(sources, out)
        for note in result.notes:
            print(f"note: {note}")
        print(
            f"wrote {result.out}: {len(result.adapters)} LoRA and {len(result.prompted)} prompted "
            f"version(s); start with `sh {result.out / 'serve.sh'}` (see its README.txt)"
        )
        return
    from adaptlab.finetune.export import export as write

    if format not in ("peft", "merged"):
        raise ConfigError(f"--format must be peft, merged or vllm, got {format!r}")
    if len(sources) != 1:
        raise ConfigError(
            f"--format {format} exports one run folder, got {len(sources)}: {' '.join(sources)}; "
            "pass one, or use --format vllm for registry versions"
        )
    print(f"wrote {write(Path(sources[0]), format, out)}")
