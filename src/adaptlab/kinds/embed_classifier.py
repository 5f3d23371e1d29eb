"""`embed_classifier`: logistic regression on all-MiniLM-L6-v2 sentence vectors. It fits in about
a second and answers in milliseconds; when it is as good as the best LLM strategy, the task
may not need an LLM at all. Its state is JSON (never pickle)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from adaptlab.config import StrategyConfig
from adaptlab.data import Dataset
from adaptlab.kinds import Kind
from adaptlab.solver import Prediction, Progress, read_solver_json, timed_batches, write_solver_json
from adaptlab.task import Task

NAME = "embed_classifier"
HEAD = "logistic regression (scikit-learn, L2, C=1)"


class EmbedClassifierConfig(StrategyConfig):
    """Baseline: logistic regression on sentence embeddings (classify tasks)."""

    name: Literal["embed_classifier"]


class EmbedClassifierSolver:
    strategy = NAME

    def __init__(
        self,
        task: Task,
        classes: list[str],
        coef: np.ndarray,
        intercept: np.ndarray,
        embedder,
        details: dict | None = None,
    ):
        self.task, self.classes, self.coef, self.intercept = task, classes, coef, intercept
        self.embedder = embedder
        self.details = details or {}

    def predict(self, inputs: list[str], progress: Progress | None = None) -> list[Prediction]:
        def answer(batch: list[str]) -> list[Prediction]:
            logits = self.embedder.encode(batch) @ self.coef.T + self.intercept
            return [Prediction(self.classes[i], 0, 0, 0.0) for i in np.asarray(logits).argmax(axis=1)]

        return timed_batches(inputs, answer, progress)

    def describe(self) -> dict:
        return {"strategy": self.strategy, "embedder": "all-MiniLM-L6-v2", "classifier": HEAD, **self.details}

    def save(self, folder: Path) -> None:
        write_solver_json(
            folder, self, self.task, classes=self.classes, coef=self.coef.tolist(), intercept=self.intercept.tolist()
        )

    @classmethod
    def load(cls, folder: Path, context=None) -> EmbedClassifierSolver:
        """Rebuild a saved classifier from its solver.json (the embedder from `context`, else the default one)."""
        info = read_solver_json(folder, NAME)
        embedder = getattr(context, "embedder", None)
        if embedder is None:
            from adaptlab.models.embedder import default_embedder

            embedder = default_embedder()
        return cls.from_saved(info, embedder)

    @classmethod
    def from_saved(cls, info: dict, embedder, details: dict | None = None):
        """The solver a solver.json describes (its task, classes and head), answering through `embedder`."""
        return cls(
            Task.from_dict(info["task"]),
            info["classes"],
            np.array(info["coef"], dtype=np.float32),
            np.array(info["intercept"], dtype=np.float32),
            embedder,
            details,
        )


def fit_head(vectors: np.ndarray, outputs: list[str], seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Logistic regression on sentence vectors: the classes, and one float32 coefficient row and intercept per class."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(vectors, outputs)
    coef, intercept = model.coef_, model.intercept_
    classes = [str(c) for c in model.classes_]
    if len(classes) == 2:  # scikit-learn keeps one row for two classes: logit(b) - logit(a)
        coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
        intercept = np.array([0.0, intercept[0]])
    return classes, coef.astype(np.float32), intercept.astype(np.float32)


class EmbedClassifier:
    """Logistic regression on sentence embeddings of the inputs."""

    name = NAME

    def __init__(self, embedder=None, seed: int = 0):
        self.embedder, self.seed = embedder, seed

    def fit(
        self, task: Task, train: Dataset, dev: Dataset | None = None, progress: Progress | None = None
    ) -> EmbedClassifierSolver:
        from adaptlab.models.embedder import default_embedder, encode_cached

        self.embedder = self.embedder or default_embedder()
        vectors = encode_cached(self.embedder, train.inputs)  # the audit has usually embedded them already
        classes, coef, intercept = fit_head(vectors, train.outputs, self.seed)
        if progress:
            progress(len(train))
        return EmbedClassifierSolver(task, classes, coef, intercept, self.embedder, {"train_hash": train.content_hash})


KIND = Kind(
    NAME,
    "baseline",
    EmbedClassifierConfig,
    build=lambda config, ctx: EmbedClassifier(ctx.embedder, seed=ctx.seed),
    load=EmbedClassifierSolver.load,
    tier=1,
    llm=False,
    tasks=("classify",),
    summary="logistic regression on sentence embeddings",
)
