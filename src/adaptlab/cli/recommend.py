"""`adaptlab recommend --questionnaire`: advice before any data exists, and the experiment that would settle it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from adaptlab.cli import app


def task_kind_question() -> tuple[str, tuple[str, ...]]:
    """The task kind question and its answers, from the task kinds' table (read when asked: `--help` loads no table)."""
    from adaptlab.tasks import task_kinds

    every = task_kinds()
    return "What kind of task is it (" + "; ".join(f"{t.name}: {t.summary}" for t in every) + ")?", tuple(
        t.name for t in every
    )


# key, question, type, default, answers (None: any); a callable gives the question and its answers when asked
QUESTIONS: list[tuple[str, str, type, str, tuple[str, ...] | Callable[[], tuple[str, tuple[str, ...]]] | None]] = [
    ("labeled_examples", "How many labeled examples do you have?", int, "0", None),
    ("task_kind", "", str, "classify", task_kind_question),
    ("queries_per_month", "Expected queries per month (blank: unknown)?", int, "", None),
    ("latency_target_ms", "Latency target per query in ms (blank: none)?", float, "", None),
    ("training_hardware", "Hardware to train on?", str, "cpu", ("none", "cpu", "gpu")),
    (
        "data_changes",
        "How often does the labeled data change?",
        str,
        "rarely",
        ("rarely", "monthly", "weekly", "daily"),
    ),
    ("domain", "How specialised is the domain?", str, "general", ("general", "specialised")),
    ("format_control", "How strictly must outputs follow a format?", str, "loose", ("loose", "strict")),
    ("one_model_many_tasks", "Must one model serve many tasks?", str, "no", ("yes", "no")),
]


@app.command()
def recommend(
    questionnaire: bool = typer.Option(
        False,
        "--questionnaire",
        help="Answer a few questions (or pass --answers) for advice before any data is measured.",
    ),
    answers: Path = typer.Option(
        None, "--answers", help="A YAML file with the answers (keys: " + ", ".join(q[0] for q in QUESTIONS) + ")."
    ),
) -> None:
    """Advice on prompting vs fine-tuning before measuring; after measuring, `adaptlab compare` recommends from the
    evidence."""
    import yaml

    from adaptlab.config import ConstraintsConfig
    from adaptlab.decide.advice import advise
    from adaptlab.errors import ConfigError

    if not questionnaire:
        raise ConfigError(
            "pass --questionnaire (with --answers FILE to skip the questions); with data, run "
            "`adaptlab compare EXPERIMENT.yaml`, which recommends from measurements"
        )
    if answers:
        given = yaml.safe_load(answers.read_text(encoding="utf-8")) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{answers}: expected a mapping of answers")
    else:
        given = {}
        for key, text, kind, default, choices in QUESTIONS:
            if callable(choices):
                text, choices = choices()
            while True:
                raw = typer.prompt(
                    text + (f" [{'/'.join(choices)}]" if choices else ""), default=default, show_default=bool(default)
                ).strip()
                if not raw:
                    break
                if choices and raw not in choices:
                    typer.echo(f"  answer one of {', '.join(choices)}")
                    continue
                try:
                    given[key] = kind(raw)
                    break
                except ValueError:
                    typer.echo("  answer with a number")
    unknown = set(given) - {q[0] for q in QUESTIONS}
    if unknown:
        raise ConfigError(f"unknown answer {sorted(unknown)[0]!r}; the keys are " + ", ".join(q[0] for q in QUESTIONS))
    if isinstance(given.get("one_model_many_tasks"), str):
        given["one_model_many_tasks"] = given["one_model_many_tasks"] == "yes"
    examples, kind = int(given.pop("labeled_examples", 0) or 0), given.pop("task_kind", "classify")
    try:
        constraints = ConstraintsConfig(**{k: v for k, v in given.items() if v not in ("", None)})
    except Exception as exc:  # pydantic's message names the field and the value
        raise ConfigError(f"invalid answer: {exc}") from None
    decision = advise(examples, kind, constraints)
    print(f"Leaning: {decision.choice}")
    for reason in decision.reasons:
        print(f"  - {reason}")
