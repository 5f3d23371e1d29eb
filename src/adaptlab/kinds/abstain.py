"""`abstain`: always the task's abstain answer ("I don't know"; qa tasks). Its qa_score is the share of
unanswerable test questions, the floor a knowledge contender must beat: below it, answering does harm.

    >>> from adaptlab.data import Example
    >>> train = Dataset([Example("What is the deductible?", "$500.")])
    >>> Abstain().fit(Task("t", "Answer.", "qa"), train).predict(["Who won in 1998?"])[0].output
    "I don't know"
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from adaptlab.config import StrategyConfig
from adaptlab.data import Dataset
from adaptlab.kinds import Kind
from adaptlab.kinds.constant import ConstantSolver
from adaptlab.solver import Progress
from adaptlab.task import Task

NAME = "abstain"


class AbstainConfig(StrategyConfig):
    """Reference: always the task's abstain answer (qa tasks)."""

    name: Literal["abstain"]


class Abstain:
    """Always the task's abstain answer, whatever the training rows say."""

    name = NAME

    def fit(
        self, task: Task, train: Dataset, dev: Dataset | None = None, progress: Progress | None = None
    ) -> ConstantSolver:
        if progress:
            progress(len(train))
        return ConstantSolver(NAME, task, task.abstain, {"rule": "always the task's abstain answer"})


def load(folder: Path, context=None) -> ConstantSolver:
    """A saved abstain solver (it needs no model)."""
    return ConstantSolver.load_as(NAME, folder)


KIND = Kind(
    NAME,
    "baseline",
    AbstainConfig,
    build=lambda config, ctx: Abstain(),
    load=load,
    tier=0,
    llm=False,
    constant=True,
    tasks=("qa",),
    summary="always the abstain answer",
)
