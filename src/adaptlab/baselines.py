"""The two honest anchors beside every LLM strategy on a classify task.

- `majority`: always the most frequent training label. An LLM strategy that does
  not beat it significantly has learned nothing usable.
- `embed_classifier`: logistic regression on all-MiniLM-L6-v2 sentence vectors.
  It fits in about a second and answers in milliseconds; when it is as good as the
  best LLM strategy, the task may not need an LLM at all.

Both keep the Solver contract; their state is JSON (never pickle).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from adaptlab.data import Dataset
from adaptlab.errors import AdaptlabError
from adaptlab.solver import Prediction, Progress, write_solver_json
from adaptlab.task import Task

BATCH = 8  # queries per timed batch; each query is charged its batch's wall time / size


def majority_label(outputs: list[str]) -> str:
    """The most frequent label; a tie goes to the label that sorts first."""
    counts = Counter(outputs)
    top = max(counts.values())
    return min(label for label, n in counts.items() if n == top)


class MajoritySolver:
    strategy = "majority"

    def __init__(self, task: Task, label: str, counts: dict[str, int]):
        self.task, self.label, self.counts = task, label, counts

    def predict(self, inputs: list[str], progress: Progress | None = None) -> list[Prediction]:
        out = []
        for start in range(0, len(inputs), BATCH):
            clock = time.perf_counter()
            batch = [self.label for _ in inputs[start : start + BATCH]]
            each = (time.perf_counter() - clock) / max(1, len(batch))
            out += [Prediction(label, 0, 0, each) for label in batch]
            if progress:
                progress(len(batch))
        return out

    def describe(self) -> dict:
        return {"strategy": self.strategy, "label": self.label, "train_label_counts": self.counts, "tie_rule": "most frequent; ties go to the label that sorts first"}

    def save(self, folder: Path) -> None:
        write_solver_json(folder, self, self.task)

    @classmethod
    def load(cls, folder: Path) -> "MajoritySolver":
        """Rebuild a saved majority solver from its solver.json."""
        info = _read_solver(folder, cls.strategy)
        return cls(Task.from_dict(info["task"]), info["label"], info.get("train_label_counts", {}))


class Majority:
    """Always the most frequent training label."""

    name = "majority"

    def fit(self, task: Task, train: Dataset, progress: Progress | None = None) -> MajoritySolver:
        return MajoritySolver(task, majority_label(train.outputs), dict(sorted(train.label_counts().items())))


class EmbedClassifierSolver:
    strategy = "embed_classifier"

    def __init__(self, task: Task, classes: list[str], coef: np.ndarray, intercept: np.ndarray, embedder, details: dict | None = None):
        self.task, self.classes, self.coef, self.intercept = task, classes, coef, intercept
        self.embedder = embedder
        self.details = details or {}

    def predict(self, inputs: list[str], progress: Progress | None = None) -> list[Prediction]:
        out = []
        for start in range(0, len(inputs), BATCH):
            batch = inputs[start : start + BATCH]
            clock = time.perf_counter()
            logits = self.embedder.encode(batch) @ self.coef.T + self.intercept
            labels = [self.classes[i] for i in np.asarray(logits).argmax(axis=1)]
            each = (time.perf_counter() - clock) / len(batch)
            out += [Prediction(label, 0, 0, each) for label in labels]
            if progress:
                progress(len(batch))
        return out

    def describe(self) -> dict:
        return {"strategy": self.strategy, "embedder": "all-MiniLM-L6-v2", "classifier": "logistic regression (scikit-learn, L2, C=1)", **self.details}

    def save(self, folder: Path) -> None:
        write_solver_json(folder, self, self.task, classes=self.classes, coef=self.coef.tolist(), intercept=self.intercept.tolist())

    @classmethod
    def load(cls, folder: Path, embedder=None) -> "EmbedClassifierSolver":
        """Rebuild a saved classifier from its solver.json."""
        info = _read_solver(folder, cls.strategy)
        task = Task.from_dict(info["task"])
        if embedder is None:
            from adaptlab.models.embedder import default_embedder

            embedder = default_embedder()
        return cls(task, info["classes"], np.array(info["coef"], dtype=np.float32), np.array(info["intercept"], dtype=np.float32), embedder)


class EmbedClassifier:
    """Logistic regression on sentence embeddings of the inputs."""

    name = "embed_classifier"

    def __init__(self, embedder=None, seed: int = 0):
        self.embedder, self.seed = embedder, seed

    def fit(self, task: Task, train: Dataset, progress: Progress | None = None) -> EmbedClassifierSolver:
        from sklearn.linear_model import LogisticRegression

        if self.embedder is None:
            from adaptlab.models.embedder import default_embedder

            self.embedder = default_embedder()
        from adaptlab.models.embedder import encode_cached

        vectors = encode_cached(self.embedder, train.inputs)  # the audit has usually embedded them already
        model = LogisticRegression(C=1.0, max_iter=2000, random_state=self.seed).fit(vectors, train.outputs)
        coef, intercept = model.coef_, model.intercept_
        classes = [str(c) for c in model.classes_]
        if len(classes) == 2:  # scikit-learn keeps one row for two classes: logit(b) - logit(a)
            coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
            intercept = np.array([0.0, intercept[0]])
        return EmbedClassifierSolver(task, classes, coef.astype(np.float32), intercept.astype(np.float32), self.embedder, {"train_hash": train.content_hash})


def _read_solver(folder: Path, strategy: str) -> dict:
    info = json.loads((Path(folder) / "solver.json").read_text(encoding="utf-8"))
    if info.get("strategy") != strategy:
        raise AdaptlabError(f"{folder}: not a {strategy} solver (strategy {info.get('strategy')!r})")
    return info
