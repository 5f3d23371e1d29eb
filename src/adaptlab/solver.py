"""The one contract every way of adapting a model implements.

    solver = strategy.fit(task, train)       # zero_shot, few_shot, lora, ...
    predictions = solver.predict(["my card hasn't arrived"])
    solver.save(folder)

Evaluation, comparison and (later) the registry and server only see this contract.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from adaptlab.data import Dataset
from adaptlab.task import Task

# Called after each finished query (or batch) with the number just finished.
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Prediction:
    """One answer with its accounting: tokens in and out, and the wall time it took."""

    output: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    shots: int = 0  # examples placed in this query's prompt
    alternatives: dict[str, str] | None = None  # other choice rules' answers, e.g. {"length_normalised": ...}
    cut: bool = False  # generate: stopped at max_new_tokens, not by the model (the answer may be incomplete)
    looped: bool = False  # generate: ended where it began repeating itself (task.stop_loops)
    passages: tuple[dict, ...] = ()  # rag: the passages placed in its prompt, best first ({"source", "score", "text"})


class Solver(Protocol):
    """A fitted strategy: answers queries for one task."""

    strategy: str

    def predict(self, inputs: list[str], progress: Progress | None = None) -> list[Prediction]: ...

    def save(self, folder: Path) -> None: ...

    def describe(self) -> dict: ...


class DocumentReader(Solver, Protocol):
    """The solver of a kind that `reads_documents` (adaptlab.kinds.Kind): it answers from an index of the documents,
    read at query time, so a document change reaches it by re-indexing, with no retraining (evaluation.freshness)."""

    index: Any  # knowledge.index: the index it reads; `.kind` names its retriever

    def reindexed(
        self, index: Any
    ) -> DocumentReader: ...  # the same solver reading another index (the documents after a change)


class Strategy(Protocol):
    """A way of adapting a base model to a task; `fit` does the adapting.

    `dev` is a separate dev split (a fine-tune stops early and keeps its best checkpoint by it); None: a strategy that
    needs one uses the one it was built with or holds out part of `train`; one that needs none ignores it.
    """

    name: str

    def fit(
        self, task: Task, train: Dataset, dev: Dataset | None = None, progress: Progress | None = None
    ) -> Solver: ...


BATCH = 8  # timed_batches: queries per timed batch; each query is charged its batch's wall time / size


def timed_batches(
    inputs: list[str], answer: Callable[[list[str]], list[Prediction]], progress: Progress | None = None
) -> list[Prediction]:
    """Answers for `inputs` from `answer` (one Prediction per query of a batch), BATCH queries at a time, each charged
    its batch's wall time / size: the non-LLM solvers' predict."""
    out = []
    for start in range(0, len(inputs), BATCH):
        batch = inputs[start : start + BATCH]
        clock = time.perf_counter()
        answers = answer(batch)
        each = (time.perf_counter() - clock) / max(1, len(batch))
        out += [replace(p, seconds=each) for p in answers]
        if progress:
            progress(len(batch))
    return out


def write_solver_json(folder: Path, solver: Solver, task: Task, files: dict[str, dict] | None = None, **extra) -> None:
    """folder/solver.json: the task, the solver's description, and anything it needs to be loaded again;
    `files`: further JSON files to write beside it (e.g. a few-shot example pool)."""
    from adaptlab.files import write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        write_json(folder / name, content)
    write_json(folder / "solver.json", {"task": task.to_dict(), **solver.describe(), **extra})


def read_solver_json(folder: Path, kind: str) -> dict:
    """folder/solver.json, checked to be a `kind` solver's."""
    import json

    from adaptlab.errors import AdaptlabError

    path = Path(folder) / "solver.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdaptlabError(f"{path}: cannot read the saved solver ({type(exc).__name__})") from None
    if info.get("strategy") != kind:
        raise AdaptlabError(f"{folder}: not a {kind} solver (strategy {info.get('strategy')!r})")
    return info
