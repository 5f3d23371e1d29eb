"""`adaptlab init DATA`: a labeled data file in, train.jsonl, test.jsonl and a commented experiment.yaml out."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from adaptlab.cli import app

LABELS_SHOWN = 12


@app.command()
def init(
    data: Path = typer.Argument(
        ...,
        help="Labeled data: JSONL ({text, label}, {input, output}, {prompt, completion} or OpenAI chat "
        "lines), CSV with a header, Parquet, or a datasets folder.",
    ),
    docs: Path = typer.Option(
        None,
        "--docs",
        help="The documents the answers come from (a folder of .pdf .md .txt .html files, or a .jsonl): "
        "makes it a knowledge (qa) task.",
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="Folder to write into; default a new folder named after DATA beside it. It must be new or empty.",
    ),
    test_fraction: float = typer.Option(
        0.3, "--test-fraction", help="Share of the rows held out as the test split (at least 8 rows)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, written into the experiment."),
    name: str = typer.Option(
        None, "--name", help="Task name (lower-case letters, digits, . _ -); default from DATA's file name."
    ),
    input_col: str = typer.Option(
        None,
        "--input-col",
        help="The column (JSONL field) holding the input; default guessed from its name (text, input, "
        "question, prompt, sentence, utterance, ...).",
    ),
    output_col: str = typer.Option(
        None,
        "--output-col",
        help="The column (JSONL field) holding the output; default guessed (label, output, answer, "
        "completion, intent, ...).",
    ),
) -> None:
    """Split DATA into train and test and write an experiment that `adaptlab compare` runs as is."""
    from adaptlab.runs.init import init_experiment

    made = init_experiment(
        data,
        docs=docs,
        out=out,
        test_fraction=test_fraction,
        seed=seed,
        name=name,
        input_col=input_col,
        output_col=output_col,
    )
    console = Console() if sys.stdout.isatty() else Console(width=120)

    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    say(f"[bold]read[/] {escape(str(made.data))}: {made.rows} rows; columns {escape(', '.join(made.found) or '-')}")
    if made.columns:
        say(
            f"[bold]input[/] {escape(repr(made.columns[0]))}, [bold]output[/] "
            f"{escape(repr(made.columns[1]))} ({escape(made.columns_from)})"
        )
    else:
        say(f"[bold]input and output[/]: {escape(made.columns_from)}")
    say(f"[bold]kind[/] {made.kind}: {escape(made.kind_reason)}")
    if made.labels:
        shown = list(made.labels.items())[:LABELS_SHOWN]
        say(
            "[bold]labels[/] (train/test): "
            + ", ".join(f"{escape(label)} {a}/{b}" for label, (a, b) in shown)
            + (f", ... {len(made.labels) - LABELS_SHOWN} more" if len(made.labels) > LABELS_SHOWN else "")
        )
    if made.answer_words:
        low, mid, high = made.answer_words
        say(
            f"[bold]answers[/]: {low}-{high} words, median {mid}"
            + (f"; {made.unanswerable} not answered by the documents (output null)" if made.unanswerable else "")
        )
    say(f"[bold]split[/] ({escape(made.split)}): {made.train} train, {made.test} test")
    for warning in made.warnings:
        say(f"[yellow]warning:[/] {escape(warning)}")
    say("[bold]wrote[/]")
    for path in made.files:
        say(f"  {escape(str(path))}")
    say(f"  contenders: {', '.join(made.contenders)}; references: {', '.join(made.references)}")
    say(f"\nnext: edit task.instruction in {escape(str(made.files[-1]))}, then run\n  {escape(made.command)}")
