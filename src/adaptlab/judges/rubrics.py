"""The judge's default rubric per task kind, chosen by the kind's traits (never its name).

    >>> rubric_for(None, "generate").startswith("The better answer")
    True

A classify task needs no judge: its answers are right or wrong against the label, and accuracy says so.
"""

from __future__ import annotations

from adaptlab.errors import ConfigError

ANSWERS = (
    "The better answer is the one a careful user would rather get: it does what the instruction asks, it is "
    "correct, and it helps. In a conversation it is the right next reply: it asks for what is still missing, "
    "confirms before acting, and does not repeat or contradict what was said. The reference is one good answer, "
    "not the only one: an answer worded differently that is as helpful and correct is as good; an answer that "
    "copies the reference's words but gets a fact, a name or a figure wrong is worse. Length is no merit."
)
DOCUMENTS = (
    "The better answer is faithful to the documents: every fact and figure in it is in the passages (or the "
    "reference answer, which the documents support), nothing is invented, and where the documents do not "
    "answer the question it says so instead of guessing. A shorter answer that is right beats a longer one "
    "that adds unsupported detail. The reference is one good answer; an answer worded differently that says "
    "the same is as good."
)


def default_rubric(kind: str) -> str:
    """The rubric for a task of `kind` (a task kind's name); a ConfigError for a task whose answers are labels."""
    from adaptlab.tasks import task_kind

    spec = task_kind(kind)
    if spec.labelled:
        raise ConfigError(
            f"judge: a {kind} task's answers are labels, scored right or wrong against the test file; a judge "
            "adds nothing there. Remove `judge:` from the experiment (accuracy and the per-label scores already "
            "rank the contenders)"
        )
    return DOCUMENTS if spec.documents or spec.abstains else ANSWERS


def rubric_for(config, kind: str) -> str:
    """`config.rubric` when the experiment sets one, else the kind's default; a labelled task is refused either way."""
    default = default_rubric(kind)
    return config.rubric if config is not None and config.rubric else default
