"""`Rag` and `RagSolver`: retrieval-augmented prompting. Fitting is indexing the documents.

Each query's prompt carries the k passages the retriever ranks first, labelled with
their source, before the question:

    [employee_handbook.pdf#page=3]
    <the passage's text>

    [PerksPlus.pdf#page=2]
    ...

    Question: <the query>

The instruction (system turn) is the task's, as for every other strategy; the model
may cite a passage by its label. Answers go through the model's own prompted solver
(the one engine locally, HTTP for an endpoint), and each Prediction keeps the
passages it was given.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from adaptlab.data import Dataset
from adaptlab.data.conversation import History
from adaptlab.icl.strategies import prompted_solver
from adaptlab.solver import Prediction, Progress
from adaptlab.task import Task


def with_passages(query: str, hits) -> str:
    """The user turn: each retrieved passage under its source label, then the question (a conversation's last turn).

    >>> from adaptlab.knowledge.documents import Chunk
    >>> print(with_passages("How many days?", [(Chunk("hb.pdf", 3, 0, 0, 9, "Ten days."), 1.0)]))
    [hb.pdf#page=3]
    Ten days.
    <BLANKLINE>
    Question: How many days?
    """
    blocks = [f"[{chunk.source}]\n{chunk.text.strip()}" for chunk, _ in hits]
    if isinstance(
        query, History
    ):  # a conversation: the passages ride in its last user turn, the turns before stay turns
        return query.asking("\n\n".join(blocks + [f"Question: {query.turns[-1].content}"]))
    return "\n\n".join(blocks + [f"Question: {query}"])


class Rag:
    """Retrieve k passages from the documents for every query and answer with them in the prompt."""

    def __init__(self, base, name: str, documents, k: int, retriever: str):
        self.base, self.name, self.documents, self.k, self.retriever = base, name, documents, k, retriever

    def fit(
        self, task: Task, train: Dataset, dev: Dataset | None = None, progress: Progress | None = None
    ) -> RagSolver:
        index = self.documents.index(self.retriever)
        details = {
            "index_seconds": round(self.documents.seconds[self.retriever], 3),
            "chunk_tokens": self.documents.size,
            "chunk_overlap": self.documents.overlap,
            "documents_rebuilt": list(index.rebuilt),
        }
        return RagSolver(prompted_solver(self.name, self.base, task), index, self.k, details)


class RagSolver:
    """A prompted solver whose every query carries its retrieved passages (a `solver.DocumentReader`)."""

    def __init__(self, inner, index, k: int, details: dict | None = None):
        self.inner, self.index, self.k = inner, index, k
        self.strategy = inner.strategy
        self.task = inner.task
        self.details = details or {}
        self.retrieval_seconds = 0.0

    @property
    def streams(self) -> bool:
        return getattr(self.inner, "streams", False)

    def predict(self, inputs: list[str], progress: Progress | None = None, sinks=None) -> list[Prediction]:
        start = time.perf_counter()
        hits = self.index.search(inputs, self.k)
        searched = (time.perf_counter() - start) / max(
            len(inputs), 1
        )  # retrieval runs as one batch: its time shared per query
        self.retrieval_seconds += searched * len(inputs)
        queries = [with_passages(q, h) for q, h in zip(inputs, hits)]
        answers = (
            self.inner.predict(queries, progress, sinks=sinks)
            if sinks is not None
            else self.inner.predict(queries, progress)
        )
        return [
            replace(
                p,
                seconds=p.seconds + searched,
                passages=tuple({"source": c.source, "id": c.id, "score": round(s, 4), "text": c.text} for c, s in h),
            )
            for p, h in zip(answers, hits)
        ]

    def reindexed(self, index) -> RagSolver:
        """The same solver reading another index (the documents after a change): nothing retrains."""
        return RagSolver(self.inner, index, self.k, self.details)

    def describe(self) -> dict:
        return self.inner.describe() | {
            "retrieval": {
                "retriever": self.index.kind,
                "k": self.k,
                "chunks": len(self.index.chunks),
                "documents": len(self.index.files),
                "seconds": round(self.retrieval_seconds, 3),
                **self.details,
            }
        }

    def save(self, folder: Path) -> None:
        """The prompted solver's files, with the index: chunks.json (+ vectors.npy) and the documents' hashes in
        solver.json."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.inner.save(folder, retrieval={"k": self.k, **self.index.save(folder)})
