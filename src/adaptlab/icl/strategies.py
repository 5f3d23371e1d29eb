"""`ZeroShot` and `FewShot`: fitting is choosing what goes in the prompt."""

from __future__ import annotations

from adaptlab.data import Dataset
from adaptlab.engine.lm_solver import LMSolver
from adaptlab.icl.selectors import EMBEDDING_SELECTORS, FixedSelector, RandomSelector
from adaptlab.models import BaseModel
from adaptlab.solver import Progress
from adaptlab.task import Task


class ZeroShot:
    """The instruction only."""

    name = "zero_shot"

    def __init__(self, base):
        self.base = base  # a local BaseModel, or a remote ChatClient

    def fit(self, task: Task, train: Dataset, progress: Progress | None = None):
        return prompted_solver(self.name, self.base, task)


class FewShot:
    """k training examples as user/assistant turns before each query."""

    name = "few_shot"

    def __init__(self, base, k: int, selector: str, seed: int = 0, embedder=None, lines: list[int] | None = None, exact_k: bool = False):
        self.base, self.k, self.selector, self.seed, self.embedder = base, k, selector, seed, embedder
        self.lines, self.exact_k = lines, exact_k

    def fit(self, task: Task, train: Dataset, progress: Progress | None = None):
        if self.selector == "random":
            shots = RandomSelector(train.examples, self.k, self.seed)
        elif self.selector == "fixed":
            shots = FixedSelector(train.examples, self.lines or [], train.source)
        else:
            from adaptlab.models.embedder import default_embedder

            shots = EMBEDDING_SELECTORS[self.selector](train.examples, self.k, self.embedder or default_embedder())
        return prompted_solver(self.name, self.base, task, shots, self.exact_k)


def prompted_solver(name: str, model, task: Task, shots=None, exact_k: bool = False):
    """The solver for a prompt: the engine on a local model, or HTTP requests to a remote one."""
    if isinstance(model, BaseModel):
        return LMSolver(name, model, task, shots=shots, exact_shots=exact_k)
    from adaptlab.remote import RemoteSolver

    return RemoteSolver(name, model, task, shots)
