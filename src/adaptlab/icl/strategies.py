"""`ZeroShot` and `FewShot`: fitting is choosing what goes in the prompt.

Both answer through the one engine on a local model, or over HTTP on a remote one. A
few-shot solver keeps its example pool and selection settings, so that, saved, it can
rebuild exactly the prompts it was measured with.
"""

from __future__ import annotations

from adaptlab.data import Dataset
from adaptlab.data.conversation import input_from_json, input_json
from adaptlab.engine.lm_solver import LMSolver, ShotSelector
from adaptlab.icl.selectors import EMBEDDING_SELECTORS, FixedSelector, RandomSelector
from adaptlab.models import BaseModel
from adaptlab.solver import Progress
from adaptlab.task import Task


class ZeroShot:
    """The instruction only."""

    def __init__(self, base, name: str):
        self.base = base  # a local BaseModel, or a remote ChatClient
        self.name = name

    def fit(self, task: Task, train: Dataset, dev: Dataset | None = None, progress: Progress | None = None):
        return prompted_solver(self.name, self.base, task)


class FewShot:
    """k training examples as user/assistant turns before each query."""

    def __init__(
        self,
        base,
        name: str,
        k: int,
        selector: str,
        seed: int = 0,
        embedder=None,
        lines: list[int] | None = None,
        exact_k: bool = False,
    ):
        self.base, self.name, self.k, self.selector, self.seed, self.embedder = base, name, k, selector, seed, embedder
        self.lines, self.exact_k = lines, exact_k

    def fit(self, task: Task, train: Dataset, dev: Dataset | None = None, progress: Progress | None = None):
        shots: ShotSelector | None
        if self.k == 0:
            shots = None  # the zero-shot prompt, kept as a few_shot solver (its pool saved as usual)
        elif self.selector == "random":
            shots = RandomSelector(train.examples, self.k, self.seed)
        elif self.selector == "fixed":
            shots = FixedSelector(train.examples, self.lines or [], train.source)
        else:
            from adaptlab.models.embedder import default_embedder

            shots = EMBEDDING_SELECTORS[self.selector](train.examples, self.k, self.embedder or default_embedder())
        selection = {
            "k": self.k,
            "selector": self.selector,
            "seed": self.seed,
            "lines": self.lines,
            "exact_k": self.exact_k,
        }
        pool = {
            "source": train.source,
            "sha256": train.content_hash,
            "examples": [{"input": input_json(e.input), "output": e.output, "line": e.line} for e in train],
        }
        return prompted_solver(
            self.name, self.base, task, shots, self.exact_k, saved={"selection": selection}, files={"pool.json": pool}
        )


def prompted_solver(
    name: str,
    model,
    task: Task,
    shots=None,
    exact_k: bool = False,
    saved: dict | None = None,
    files: dict[str, dict] | None = None,
):
    """The solver for a prompt: the engine on a local model, or HTTP requests to a remote one; `saved` (solver.json
    fields) and `files` (JSON files beside it) are what the strategy keeps to rebuild it."""
    if isinstance(model, BaseModel):
        return LMSolver(name, model, task, shots=shots, exact_shots=exact_k, saved=saved, files=files)
    from adaptlab.remote import RemoteSolver

    return RemoteSolver(name, model, task, shots, saved=saved, files=files)


def saved_pool(folder) -> Dataset:
    """The example pool a few-shot solver saved (pool.json)."""
    import json
    from pathlib import Path

    from adaptlab.data import Example

    pool = json.loads((Path(folder) / "pool.json").read_text(encoding="utf-8"))
    return Dataset(
        [Example(input_from_json(e["input"]), e["output"], e["line"]) for e in pool["examples"]],
        pool.get("source", "pool"),
    )
