"""Finding the chunks that answer a question: BM25, dense (embedding cosine) or hybrid (both, fused by rank).

- bm25: bm25s (BM25 with sparse matrices). On 100k synthetic 120-word chunks it answered
  a query in 0.4 ms (p50), 0.6 ms (p95); rank_bm25 took 396 / 439 ms, scoring every
  chunk in Python (bench/rag.py, bench/results/rag-cpu.json).
  Lower-cased, English stop words dropped, no stemming.
- dense: the sentence embedder's normalised vectors, exact cosine search (one matrix
  product; 100k x 384 floats is 150 MB). bench/rag.py at 100k chunks, query embedding
  included: 12.4 ms p50, 14.2 ms p95 (the query is embedded on one thread: on two, it
  waited ~100 ms whenever the other core was busy, models/embedder.py). An approximate
  index (faiss) was not measured.
- hybrid: reciprocal rank fusion (Cormack et al. 2009): each chunk scores
  sum(1 / (RRF_K + rank)) over the two rankings, so neither score scale dominates.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

RRF_K = 60  # the constant of reciprocal rank fusion (the paper's value)
KINDS = ("bm25", "dense", "hybrid")


class Index(Protocol):
    def search(
        self, queries: list[str], k: int
    ) -> list[list[tuple[int, float]]]: ...  # per query: (chunk index, score), best first


class BM25Index:
    def __init__(self, texts: list[str]):
        import bm25s

        self._bm25s = bm25s
        self.size = len(texts)
        self.retriever = bm25s.BM25()
        self.retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        k = min(k, self.size)
        tokens = self._bm25s.tokenize(queries, stopwords="en", show_progress=False)
        ids, scores = self.retriever.retrieve(tokens, k=k, show_progress=False)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores) if s > 0]
            for row_ids, row_scores in zip(ids, scores)
        ]


class DenseIndex:
    def __init__(self, texts: list[str], embedder, vectors: np.ndarray | None = None):
        self.embedder = embedder
        self.vectors = _normalised(vectors if vectors is not None else embedder.encode(texts))

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        sims = _normalised(self.embedder.encode(queries)) @ self.vectors.T
        k = min(k, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        out = []
        for row, ids in zip(sims, top):
            ids = ids[np.argsort(-row[ids])]
            out.append([(int(i), float(row[i])) for i in ids])
        return out


class HybridIndex:
    def __init__(self, bm25: BM25Index, dense: DenseIndex, depth: int = 50):
        self.bm25, self.dense, self.depth = bm25, dense, depth  # each ranking is read this deep before fusing

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        out = []
        for lexical, semantic in zip(self.bm25.search(queries, self.depth), self.dense.search(queries, self.depth)):
            fused: dict[int, float] = {}
            for ranking in (lexical, semantic):
                for rank, (i, _) in enumerate(ranking, 1):
                    fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
            out.append(sorted(fused.items(), key=lambda item: -item[1])[:k])
        return out


def embedder_for(kind: str, embedder):
    """The embedder a `kind` retriever needs: the one given, else the default one (loaded once per process); bm25 needs
    none."""
    if embedder is not None or kind == "bm25":
        return embedder
    from adaptlab.models.embedder import default_embedder

    return default_embedder()


def make_retriever(kind: str, texts: list[str], embedder=None, vectors: np.ndarray | None = None) -> Index:
    """The retriever of `kind` (bm25, dense or hybrid) over `texts`; dense and hybrid need the embedder (and take
    the texts' `vectors` when they are already computed)."""
    if kind not in KINDS:
        raise ValueError(f"retriever {kind!r}: use one of {', '.join(KINDS)}")
    if kind == "bm25":
        return BM25Index(texts)
    dense = DenseIndex(texts, embedder, vectors)
    return dense if kind == "dense" else HybridIndex(BM25Index(texts), dense)


def _normalised(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
