"""`Raft`: fine-tuning with retrieved passages in the prompt (RAFT, Zhang et al. 2024, arXiv 2403.10131).

Each training question is given the k passages the retriever returns for it, in the
very prompt `rag` builds at test time (`icl.rag.with_passages`), and the adapter is
trained through the one loop (`FineTune`) to answer from them. In a seeded share of
the answerable rows (`without_gold`) the gold passages (the example's `sources`) are
replaced by the next passages the retriever ranks, so the model also learns to
answer when the passages do not hold the answer, and to ignore the ones that do not
help. The solver is a `RagSolver` over the adapter: it retrieves exactly as plain
rag does, and a document update reaches it by re-indexing, with no retraining.
"""

from __future__ import annotations

import random
from dataclasses import replace

from adaptlab.data import Dataset
from adaptlab.finetune.fit import FineTune
from adaptlab.icl.rag import RagSolver, with_passages
from adaptlab.task import Task

DEPTH = 4  # search this many times k deep, to find k passages that are not gold


class Raft:
    """Retrieval for every training question, then LoRA fine-tuning on the prompts rag will send."""

    def __init__(self, name: str, tune: FineTune, documents, k: int, retriever: str, without_gold: float, seed: int):
        self.name, self.tune, self.documents, self.k, self.retriever = name, tune, documents, k, retriever
        self.without_gold, self.seed = without_gold, seed

    def fit(self, task: Task, train: Dataset, dev: Dataset | None = None, progress=None) -> RagSolver:
        index = self.documents.index(self.retriever)
        rows, dropped = self.with_retrieved(index, train, task, self.without_gold)
        dev = dev if dev is not None else self.tune.dev
        held = self.with_retrieved(index, dev, task, 0.0)[0] if dev is not None else None
        self.tune.dev = held
        solver = self.tune.fit(task, rows, held, progress)
        solver.strategy = self.name
        details = {
            "index_seconds": round(self.documents.seconds[self.retriever], 3),
            "chunk_tokens": self.documents.size,
            "chunk_overlap": self.documents.overlap,
            "documents_rebuilt": list(index.rebuilt),
        }
        solver.details["raft"] = {
            "without_gold": self.without_gold,
            "rows_without_gold": dropped,
            "rows_with_sources": sum(bool(e.sources) for e in train),
            "k": self.k,
        }
        return RagSolver(solver, index, self.k, details)

    def with_retrieved(self, index, data: Dataset, task: Task, share: float) -> tuple[Dataset, int]:
        """Each row's input as rag's prompt with its retrieved passages; in `share` of the answerable rows that
        name sources, the gold passages left out. Returns the rows and how many went without gold."""
        hits = index.search(data.inputs, self.k * DEPTH)
        answerable = [i for i, e in enumerate(data) if e.sources and e.output != task.abstain]
        rng = random.Random(self.seed)
        drop = set(rng.sample(answerable, round(share * len(answerable)))) if answerable else set()
        examples = []
        for i, (e, found) in enumerate(zip(data, hits)):
            chosen = [h for h in found if h[0].source not in e.sources][: self.k] if i in drop else found[: self.k]
            examples.append(replace(e, input=with_passages(e.input, chosen)))
        return Dataset(examples, data.source, data.instruction), len(drop)
