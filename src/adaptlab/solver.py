"""The one contract every way of adapting a model implements.

    solver = strategy.fit(task, train)       # zero_shot, few_shot, lora, ...
    predictions = solver.predict(["my card hasn't arrived"])
    solver.save(folder)

Evaluation, comparison and (later) the registry and server only see this contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

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
    passages: tuple[dict, ...] = ()  # rag: the passages placed in its prompt, best first ({"source", "score", "text"})


class Solver(Protocol):
    """A fitted strategy: answers queries for one task."""

    strategy: str

    def predict(self, inputs: list[str], progress: Progress | None = None) -> list[Prediction]: ...

    def save(self, folder: Path) -> None: ...

    def describe(self) -> dict: ...


class Strategy(Protocol):
    """A way of adapting a base model to a task; `fit` does the adapting."""

    name: str

    def fit(self, task: Task, train: Dataset, progress: Progress | None = None) -> Solver: ...


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
