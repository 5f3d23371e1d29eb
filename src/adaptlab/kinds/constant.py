"""`constant`: always the most frequent training output (generate tasks). The floor of a generate
comparison: an LLM that does not beat one fixed answer has learned nothing usable. Its state is JSON.

    >>> from adaptlab.data import Example
    >>> train = Dataset([Example("a", "yes"), Example("b", "yes"), Example("c", "no")])
    >>> Constant().fit(Task("t", "Answer.", "generate"), train).predict(["anything"])[0].output
    'yes'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from adaptlab.config import StrategyConfig
from adaptlab.data import Dataset
from adaptlab.kinds import Kind
from adaptlab.kinds.majority import majority_label
from adaptlab.solver import Prediction, Progress, read_solver_json, timed_batches, write_solver_json
from adaptlab.task import Task

NAME = "constant"
TIE_RULE = "most frequent; ties go to the output that sorts first"


class ConstantConfig(StrategyConfig):
    """Reference: always the most frequent training output (generate tasks)."""

    name: Literal["constant"]


class ConstantSolver:
    """Gives one fixed answer to every input; `strategy` names the kind that fitted it (constant, abstain)."""

    def __init__(self, strategy: str, task: Task, answer: str, details: dict | None = None):
        self.strategy, self.task, self.answer = strategy, task, answer
        self.details = details or {}

    def predict(self, inputs: list[str], progress: Progress | None = None) -> list[Prediction]:
        return timed_batches(inputs, lambda batch: [Prediction(self.answer, 0, 0, 0.0) for _ in batch], progress)

    def describe(self) -> dict:
        return {"strategy": self.strategy, "answer": self.answer, **self.details}

    def save(self, folder: Path) -> None:
        write_solver_json(folder, self, self.task)

    @classmethod
    def load_as(cls, strategy: str, folder: Path) -> ConstantSolver:
        """Rebuild a saved fixed-answer solver of kind `strategy` from its solver.json."""
        info = read_solver_json(folder, strategy)
        details = {k: v for k, v in info.items() if k not in ("task", "strategy", "answer")}
        return cls(strategy, Task.from_dict(info["task"]), info["answer"], details)


class Constant:
    """Always the most frequent training output."""

    name = NAME

    def fit(
        self, task: Task, train: Dataset, dev: Dataset | None = None, progress: Progress | None = None
    ) -> ConstantSolver:
        answer = majority_label(train.outputs)
        if progress:
            progress(len(train))
        return ConstantSolver(
            NAME,
            task,
            answer,
            {"train_count": train.outputs.count(answer), "train_rows": len(train), "tie_rule": TIE_RULE},
        )


def load(folder: Path, context=None) -> ConstantSolver:
    """A saved constant solver (it needs no model)."""
    return ConstantSolver.load_as(NAME, folder)


KIND = Kind(
    NAME,
    "baseline",
    ConstantConfig,
    build=lambda config, ctx: Constant(),
    load=load,
    tier=0,
    llm=False,
    constant=True,
    tasks=("generate",),
    summary="always the most frequent training output",
)
