"""Example selectors: which training examples ride along with each query, most useful first.

A prompt that runs out of room drops shots from the end of the list, so order matters.
"""

from __future__ import annotations

import random

import numpy as np

from adaptlab.data import Example
from adaptlab.errors import ConfigError
from adaptlab.models.embedder import encode_cached


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


class FixedSelector:
    """Hand-picked examples, named by their 1-based line numbers in the training file, in the order given."""

    def __init__(self, pool: list[Example], lines: list[int], source: str = "train"):
        by_line = {e.line: e for e in pool}
        missing = [n for n in lines if n not in by_line]
        if missing:
            raise ConfigError(
                f"few_shot.lines: line {missing[0]} of {source} holds no example; use line numbers "
                "of non-blank lines (1-based)"
            )
        self.chosen = [by_line[n] for n in lines]
        self.k = len(self.chosen)

    def select(self, queries: list[str]) -> list[list[Example]]:
        return [list(self.chosen) for _ in queries]

    def describe(self) -> dict:
        return {"selector": "fixed", "k": self.k, "lines": [e.line for e in self.chosen]}


class _EmbeddingSelector:
    """Shared by the selectors that compare the query with the pool in embedding space."""

    name = ""

    def __init__(self, pool: list[Example], k: int, embedder):
        self.pool = pool
        self.k = min(k, len(pool))
        self.embedder = embedder
        self.vectors = encode_cached(embedder, [e.input for e in pool])  # once per pool: the audit may have done it

    def select(self, queries: list[str]) -> list[list[Example]]:
        sims = self.embedder.encode(queries) @ self.vectors.T
        return [[self.pool[i] for i in self._pick(row)] for row in sims]

    def _pick(self, sims: np.ndarray) -> list[int]:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"selector": self.name, "k": self.k, "pool_size": len(self.pool)}


class SimilarSelector(_EmbeddingSelector):
    """The k pool examples nearest the query (cosine), nearest first."""

    name = "similar"

    def _pick(self, sims):
        return list(np.argsort(-sims, kind="stable")[: self.k])


class DiverseSelector(_EmbeddingSelector):
    """Maximal marginal relevance: relevant to the query, unlike the shots already chosen.

    Each step takes argmax of  lam * sim(query, x) - (1 - lam) * max sim(x, chosen).
    """

    name = "diverse"

    def __init__(self, pool, k, embedder, lam: float = 0.5):
        super().__init__(pool, k, embedder)
        self.lam = lam
        self.pairwise = self.vectors @ self.vectors.T

    def _pick(self, sims):
        chosen: list[int] = []
        redundancy = np.full(len(self.pool), -np.inf)
        for _ in range(self.k):
            score = self.lam * sims - (1 - self.lam) * np.where(np.isinf(redundancy), 0.0, redundancy)
            score[chosen] = -np.inf
            best = int(np.argmax(score))
            chosen.append(best)
            redundancy = np.maximum(redundancy, self.pairwise[best])
        return chosen

    def describe(self) -> dict:
        return {**super().describe(), "lambda": self.lam}


class BalancedSelector(_EmbeddingSelector):
    """Round robin over labels, each label's most similar examples first.

    Labels take turns in the order of their best match to the query, so the first
    shots (the last to be dropped) cover as many labels as possible.
    """

    name = "balanced"

    def __init__(self, pool, k, embedder):
        super().__init__(pool, k, embedder)
        self.by_label: dict[str, list[int]] = {}
        for i, e in enumerate(pool):
            self.by_label.setdefault(e.output, []).append(i)

    def _pick(self, sims):
        queues = {label: sorted(idx, key=lambda i: -sims[i]) for label, idx in self.by_label.items()}
        order = sorted(queues, key=lambda label: -sims[queues[label][0]])
        chosen: list[int] = []
        while len(chosen) < self.k:
            for label in order:
                if queues[label] and len(chosen) < self.k:
                    chosen.append(queues[label].pop(0))
        return chosen


EMBEDDING_SELECTORS = {"similar": SimilarSelector, "diverse": DiverseSelector, "balanced": BalancedSelector}
