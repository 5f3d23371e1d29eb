"""`adaptlab audit TRAIN`: the five-criteria audit of a training set, before anything is trained."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table

from adaptlab.cli import app, err
from adaptlab.errors import DataError
from adaptlab.models.embedded import EMBEDDED_NAME

SHOWN_PER_CRITERION = 8


@app.command()
def audit(
    train: Path = typer.Argument(..., help="Training data (JSONL or CSV)."),
    test: Path = typer.Option(
        None, "--test", help="Test data or a sample of production inputs, for coverage and leakage."
    ),
    instruction: str = typer.Option(None, "--instruction", help="The task's instruction, for relevance."),
    model: str = typer.Option(EMBEDDED_NAME, "--model", help="Whose tokenizer counts the tokens."),
    as_json: bool = typer.Option(False, "--json", help="Print the report (or the data problems) as JSON."),
    input_col: str = typer.Option("input", "--input-col", help="CSV: the input column."),
    output_col: str = typer.Option("output", "--output-col", help="CSV: the output column."),
) -> None:
    """Score TRAIN on the five criteria (representative, diverse, balanced, consistent, relevant), with the rows that
    cost points."""
    from adaptlab.audit import audit as run_audit
    from adaptlab.data import load_dataset
    from adaptlab.engine.prompt import encode_text
    from adaptlab.task import infer_kind

    try:
        train_set = load_dataset(train, min_examples=2, input_col=input_col, output_col=output_col)
        test_set = load_dataset(test, input_col=input_col, output_col=output_col) if test else None
    except DataError as exc:
        if not as_json:
            raise
        print(json.dumps([p.to_dict() for p in exc.problems], indent=2, ensure_ascii=False))
        raise typer.Exit(2) from None
    with err.status("embedding the inputs and loading the tokenizer"):
        from adaptlab.models.base import load_tokenizer

        tokenizer, context = load_tokenizer(model)  # the weights are not needed to count tokens
        report = run_audit(
            train_set,
            test_set,
            kind=infer_kind(train_set),
            instruction=instruction,
            count_tokens=lambda t: len(encode_text(tokenizer, t)),
            context_length=context,
        )
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    console = Console() if sys.stdout.isatty() else Console(width=120)
    console.print(audit_table(report.to_dict(), str(train)))
    for name, criterion in report.to_dict()["criteria"].items():
        flags = criterion["flagged"]
        if flags:
            console.print(
                f"\n[bold]{name}[/]: {len(flags)} rows; {escape(criterion['hint'])}", highlight=False, soft_wrap=True
            )
            for f in flags[:SHOWN_PER_CRITERION]:
                console.print(
                    f"  {escape(f['file'])} line {f['line']}: {escape(f['reason'])}", highlight=False, soft_wrap=True
                )
            if len(flags) > SHOWN_PER_CRITERION:
                console.print(f"  ... and {len(flags) - SHOWN_PER_CRITERION} more (--json lists them all)")
    _print_leakage(console, report.leakage)
    if report.tokens:
        _print_tokens(console, report.tokens)


def _print_leakage(console: Console, leakage: list[dict]) -> None:
    """The test conversations (or rows) also in the training data, the first ten of them."""
    if leakage and "test_conversation" in leakage[0]:
        console.print(
            f"\n[bold red]leakage[/]: {len(leakage)} test conversations also in train: "
            + ", ".join(
                escape(
                    f"{p['test_conversation']} (test {p['test_line']}) ~ {p['train_conversation']} "
                    f"(train {p['train_line']}, {p['kind']})"
                )
                for p in leakage[:10]
            ),
            highlight=False,
            soft_wrap=True,
        )
    elif leakage:
        console.print(
            f"\n[bold red]leakage[/]: {len(leakage)} test rows also in train: "
            + ", ".join(f"test {p['test_line']} ~ train {p['train_line']}" for p in leakage[:10]),
            highlight=False,
            soft_wrap=True,
        )


def _print_tokens(console: Console, t: dict) -> None:
    """The token counts: inputs, outputs and shots, conversations, and the rows longer than the context."""
    console.print(
        f"\ntokens: input mean {t['input_mean']} (max {t['input_max']}), output mean "
        f"{t['output_mean']} (max {t['output_max']}); about "
        f"{t['training_tokens_per_epoch_excluding_prompt_template']} training tokens per epoch "
        f"before the prompt template; {t['prompt_tokens_added_by_k_shots']['k']} shots add about "
        f"{t['prompt_tokens_added_by_k_shots']['tokens']} prompt tokens per query",
        highlight=False,
        soft_wrap=True,
    )
    if "conversations" in t:
        c = t["conversations"]
        console.print(
            f"conversations: {c['count']}, {c['turns_mean']} turns on average (max "
            f"{c['turns_max']}), {c['answers_mean']} answers learned each; "
            f"{c['tokens_mean']} tokens on average (max {c['tokens_max']}) before the chat template",
            highlight=False,
            soft_wrap=True,
        )
        if c["longer_than_context"]:
            console.print(
                f"[bold red]conversations longer than the {t['context_length']}-token "
                f"context[/]: lines {', '.join(map(str, c['longer_than_context'][:20]))}",
                highlight=False,
                soft_wrap=True,
            )
    if t["longer_than_context"]:
        console.print(
            f"[bold red]longer than the {t['context_length']}-token context[/]: lines "
            f"{', '.join(map(str, t['longer_than_context'][:20]))}",
            highlight=False,
            soft_wrap=True,
        )


def audit_table(report: dict, title: str) -> Table:
    """One row per criterion: score, rows flagged, what to do."""
    table = Table(title=f"audit of {escape(title)}")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("criterion", "left"),
        ("score", "right"),
        ("rows flagged", "right"),
        ("what to do", "left"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for name, c in report["criteria"].items():
        table.add_row(
            name, "n/a" if c["score"] is None else f"{c['score']:.0f}", str(len(c["flagged"])), escape(c["hint"])
        )
    return table
