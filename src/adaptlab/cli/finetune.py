"""`adaptlab finetune EXPERIMENT.yaml`: train one fine-tuned strategy, checkpointed and resumable."""

from __future__ import annotations

from pathlib import Path

import typer

from adaptlab.cli import app, err


@app.command()
def finetune(
    experiment: Path = typer.Argument(
        None, help="Experiment YAML with a fine-tuned strategy (a kind that trains); leave out with --resume."
    ),
    strategy: str = typer.Option(
        None, "--strategy", help="Which strategy (its id) to train when the experiment lists several fine-tuned ones."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="Run folder to write; default $ADAPTLAB_HOME/runs/<time>-<task>-<strategy>-<6 hex digits>, a "
        "new folder each run.",
    ),
    resume: Path = typer.Option(None, "--resume", help="Continue this run folder from its last complete checkpoint."),
    checkpoint_every: int = typer.Option(
        50, "--checkpoint-every", min=0, help="Write a checkpoint every N optimizer steps (0: only on SIGTERM)."
    ),
    model: str = typer.Option(
        None,
        "--model",
        help="Base model instead of the experiment's (and the strategy's own `model`): "
        "'smollm2-135m-instruct', a local Hugging Face folder, or a .gguf file; not with --resume.",
    ),
    merge: bool = typer.Option(
        False, "--merge", help="lora: also write base + adapter merged into one safetensors model (merged/)."
    ),
) -> None:
    """Fine-tune with the experiment's fine-tuned strategy: progress, checkpoints, an adapter with its lineage.

    SIGTERM finishes the current step, writes a checkpoint and exits with code 143;
    `adaptlab finetune --resume RUN` continues exactly where it stopped (also after kill -9,
    from the last checkpoint). Under `accelerate launch` it trains on every process (DDP).
    """
    from adaptlab.cli.events import RichEvents
    from adaptlab.runs.finetune import run_finetune

    lineage, run_dir = run_finetune(
        experiment, strategy, out, resume, checkpoint_every, merge, events=RichEvents(err), model=model
    )
    if not lineage:  # not rank 0
        return
    test = lineage["metrics"]["test"]
    metric = lineage["task"]["metric"]
    lo, hi = lineage["metrics"]["test_ci95"][metric]
    training = lineage["training"]
    best = lineage["metrics"]["best_dev_score"]
    print(
        f"{lineage['strategy']}: test {metric} {test[metric]:.3f} (95% CI {lo:.3f}-{hi:.3f})"
        + (f"; best dev {best:.3f} at step {training['best_step']}" if best is not None else "")
    )
    print(
        f"trained {training['steps']} steps, {training['tokens']} tokens, "
        f"{training['tokens_per_second'] or 0:.0f} tok/s" + ("; stopped early" if training["stopped_early"] else "")
    )
    print(f"output: {run_dir / lineage['output']}" + (f"\nmerged: {run_dir / 'merged'}" if lineage["merged"] else ""))
    print(f"lineage: {run_dir / 'lineage.json'}")
