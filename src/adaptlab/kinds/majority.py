"""`majority`: always the most frequent training label. An LLM strategy that does not beat it
significantly has learned nothing usable. Its state is JSON (never pickle)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

from adaptlab.config import StrategyConfig
from adaptlab.data import Dataset
from adaptlab.kinds import Kind
from adaptlab.solver import Prediction, Progress, read_solver_json, timed_batches, write_solver_json
from adaptlab.task import Task

NAME = "majority"


class MajorityConfig(StrategyConfig):
    """Baseline: always the most frequent training label (classify tasks)."""

    name: Literal["majority"]


def majority_label(outputs: list[str]) -> str:
    """The most frequent label; a tie goes to the label that sorts first."""
    counts = Counter(outputs)
    top = max(counts.values())
    return min(label for label, n in counts.items() if n == top)


class MajoritySolver:
    strategy = NAME

    def __init__(self, task: Task, label: str, counts: dict[str, int]):
        self.task, self.label, self.counts = task, label, counts

    def predict(self, inputs: list[str], progress: Progress | None = None) -> list[Prediction]:
        return timed_batches(inputs, lambda batch: [Prediction(self.label, 0, 0, 0.0) for _ in batch], progress)

    def describe(self) -> dict:
        return {
            "strategy": self.strategy,
            "label": self.label,
            "train_label_counts": self.counts,
            "tie_rule": "most frequent; ties go to the label that sorts first",
        }

    def save(self, folder: Path) -> None:
        write_solver_json(folder, self, self.task)

    @classmethod
    def load(cls, folder: Path, context=None) -> MajoritySolver:
        """Rebuild a saved majority solver from its solver.json."""
        info = read_solver_json(folder, NAME)
        return cls(Task.from_dict(info["task"]), info["label"], info.get("train_label_counts", {}))


class Majority:
    """Always the most frequent training label."""

    name = NAME

    def fit(
        self, task: Task, train: Dataset, dev: Dataset | None = None, progress: Progress | None = None
    ) -> MajoritySolver:
        return MajoritySolver(task, majority_label(train.outputs), dict(sorted(train.label_counts().items())))


KIND = Kind(
    NAME,
    "baseline",
    MajorityConfig,
    build=lambda config, ctx: Majority(),
    load=MajoritySolver.load,
    tier=0,
    llm=False,
    constant=True,
    tasks=("classify",),
    summary="always the most frequent training label",
)
