"""`nearest`: each input answered with the output of the most similar training input (generate tasks).

A lookup, not a model: when it answers as well as an LLM, the task may be a matter of
remembering the training rows. Fitting is indexing the training inputs (BM25 or the
sentence embedder); the training pairs are its whole state, kept as JSON in solver.json
(dense vectors are computed again on load, from the embeddings cache when it has them).

    >>> from adaptlab.data import Example
    >>> train = Dataset([Example("a table for four", "people: four"), Example("at 7:45 please", "time: 7:45")])
    >>> Nearest("bm25").fit(Task("t", "Slots.", "generate"), train).predict(["could we come at 7:45"])[0].output
    'time: 7:45'
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from adaptlab.config import StrategyConfig
from adaptlab.data import Dataset
from adaptlab.kinds import Kind
from adaptlab.kinds.majority import majority_label
from adaptlab.solver import Prediction, Progress, read_solver_json, timed_batches, write_solver_json
from adaptlab.task import Task

NAME = "nearest"
RULE = "the output of the most similar training input"


class NearestConfig(StrategyConfig):
    """Reference: the output of the most similar training input (generate tasks)."""

    name: Literal["nearest"]
    retriever: Literal["bm25", "dense"] = Field(
        "dense",
        description="How similar inputs are found. dense: the sentence embedder's cosine; bm25: word overlap "
        "(bm25s), 0.1-0.2 ms a query where dense takes 12-160 (2-core CPU). Dense scored higher chrF "
        "on 4 of 4 generate slices, by 0.3-6.0 points (bench/results/references-cpu.json).",
    )


def input_index(kind: str, inputs: list[str], embedder=None):
    """A retriever over the training inputs: bm25, or dense (vectors from the embeddings cache when it has them)."""
    from adaptlab.knowledge.retrieval import BM25Index, DenseIndex

    if kind == "bm25":
        return BM25Index(inputs)
    from adaptlab.models.embedder import default_embedder, encode_cached

    embedder = embedder or default_embedder()
    return DenseIndex(inputs, embedder, encode_cached(embedder, inputs))


class NearestSolver:
    """Answers with the output of the training input the retriever ranks first."""

    strategy = NAME

    def __init__(
        self,
        task: Task,
        inputs: list[str],
        outputs: list[str],
        retriever: str,
        embedder=None,
        details: dict | None = None,
    ):
        self.task, self.inputs, self.outputs, self.retriever = task, inputs, outputs, retriever
        self.index = input_index(retriever, inputs, embedder)
        self.fallback = majority_label(outputs)  # bm25 finds nothing for a query sharing no word with any input
        self.details = details or {}

    def predict(self, inputs: list[str], progress: Progress | None = None) -> list[Prediction]:
        return timed_batches(
            inputs,
            lambda batch: [
                Prediction(self.outputs[found[0][0]] if found else self.fallback, 0, 0, 0.0)
                for found in self.index.search(batch, 1)
            ],
            progress,
        )

    def describe(self) -> dict:
        return {
            "strategy": self.strategy,
            "rule": RULE,
            "retriever": self.retriever,
            "train_rows": len(self.inputs),
            "no_match": "the most frequent training output",
            **self.details,
        }

    def save(self, folder: Path) -> None:
        write_solver_json(folder, self, self.task, pairs=[[i, o] for i, o in zip(self.inputs, self.outputs)])

    @classmethod
    def load(cls, folder: Path, context=None) -> NearestSolver:
        """Rebuild a saved nearest solver from its solver.json (dense: the embedder from `context`, else the default
        one)."""
        info = read_solver_json(folder, NAME)
        inputs, outputs = [p[0] for p in info["pairs"]], [p[1] for p in info["pairs"]]
        details = {k: v for k, v in info.items() if k in ("train_hash", "index_seconds")}
        return cls(
            Task.from_dict(info["task"]),
            inputs,
            outputs,
            info["retriever"],
            getattr(context, "embedder", None),
            details,
        )


class Nearest:
    """Index the training inputs; answer each query with the output of the nearest one."""

    name = NAME

    def __init__(self, retriever: str = "dense", embedder=None):
        self.retriever, self.embedder = retriever, embedder

    def fit(
        self, task: Task, train: Dataset, dev: Dataset | None = None, progress: Progress | None = None
    ) -> NearestSolver:
        clock = time.perf_counter()
        solver = NearestSolver(task, train.inputs, train.outputs, self.retriever, self.embedder)
        solver.details = {"train_hash": train.content_hash, "index_seconds": round(time.perf_counter() - clock, 3)}
        if progress:
            progress(len(train))
        return solver


def build(config: NearestConfig, ctx) -> Nearest:
    return Nearest(config.retriever, ctx.embedder)


KIND = Kind(
    NAME,
    "baseline",
    NearestConfig,
    build=build,
    load=NearestSolver.load,
    tier=1,
    llm=False,
    tasks=("generate",),
    summary=RULE,
)
