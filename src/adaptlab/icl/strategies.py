"""`ZeroShot` and `FewShot`: fitting is choosing what goes in the prompt."""

from __future__ import annotations

from adaptlab.data import Dataset
from adaptlab.engine.lm_solver import LMSolver
from adaptlab.icl.selectors import RandomSelector, SimilarSelector
from adaptlab.models import BaseModel
from adaptlab.solver import Progress
from adaptlab.task import Task


class ZeroShot:
    """The instruction only."""

    name = "zero_shot"

    def __init__(self, base: BaseModel):
        self.base = base

    def fit(self, task: Task, train: Dataset, progress: Progress | None = None) -> LMSolver:
        return LMSolver(self.name, self.base, task)


class FewShot:
    """k training examples as user/assistant turns before each query."""

    name = "few_shot"

    def __init__(self, base: BaseModel, k: int = 8, selector: str = "similar", seed: int = 0, embedder=None):
        self.base, self.k, self.selector, self.seed, self.embedder = base, k, selector, seed, embedder

    def fit(self, task: Task, train: Dataset, progress: Progress | None = None) -> LMSolver:
        if self.selector == "random":
            shots = RandomSelector(train.examples, self.k, self.seed)
        else:
            from adaptlab.models.embedder import default_embedder

            shots = SimilarSelector(train.examples, self.k, self.embedder or default_embedder())
        return LMSolver(self.name, self.base, task, shots=shots)
