"""Example selectors: which training examples ride along with each query."""

from __future__ import annotations

import random

from adaptlab.data import Example


class RandomSelector:
    """The same k examples, drawn once with a seed, for every query."""

    def __init__(self, pool: list[Example], k: int, seed: int):
        self.k = min(k, len(pool))
        self.seed = seed
        self.chosen = random.Random(seed).sample(pool, self.k)

    def select(self, queries: list[str]) -> list[list[Example]]:
        return [list(self.chosen) for _ in queries]

    def describe(self) -> dict:
        return {"selector": "random", "k": self.k, "seed": self.seed, "lines": [e.line for e in self.chosen]}


class SimilarSelector:
    """The k pool examples nearest each query by sentence embedding (cosine), nearest first.

    A prompt that runs out of room drops shots from the end, so the least similar go first.
    """

    def __init__(self, pool: list[Example], k: int, embedder):
        self.pool = pool
        self.k = min(k, len(pool))
        self.embedder = embedder
        self.vectors = embedder.encode([e.input for e in pool])  # computed once per fit

    def select(self, queries: list[str]) -> list[list[Example]]:
        import numpy as np

        sims = self.embedder.encode(queries) @ self.vectors.T
        order = np.argsort(-sims, axis=1, kind="stable")[:, : self.k]
        return [[self.pool[i] for i in row] for row in order]

    def describe(self) -> dict:
        return {"selector": "similar", "k": self.k, "pool_size": len(self.pool)}
