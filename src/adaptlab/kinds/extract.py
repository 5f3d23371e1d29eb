"""`extract`: answers quoted from the documents, without a language model (qa tasks).

For each question: the k passages rag would retrieve, cut into sentences; each sentence
scored by the sentence embedder's cosine with the question; the answer is the best
sentences, best first. Where the best one scores below a threshold it answers the task's
abstain answer instead. How many sentences (1 to 5, unless `sentences` says) and the
threshold are fitted on the training questions only: the pair whose answers score best
on them (`fit_answers`, `fit_threshold`). A contender that does not beat a quote from the
right page has not earned its LLM.

Saved as rag saves its index: chunks.json (+ vectors.npy) beside solver.json, which holds
the threshold and what fitting measured.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from adaptlab.config import StrategyConfig
from adaptlab.data import Dataset
from adaptlab.errors import ConfigError
from adaptlab.kinds import Kind
from adaptlab.solver import Prediction, Progress, read_solver_json, timed_batches, write_solver_json
from adaptlab.task import Task

NAME = "extract"
MIN_WORDS = 3  # shorter pieces (a heading, a page number, a cut-off fragment) are no answer
MAX_SENTENCES = 5  # fitted answer lengths run 1..5 sentences (northwind's reference answers hold 1-4)
BELOW_ANY, ABOVE_ANY = -1.5, 1.5  # cosines lie in [-1, 1]: thresholds that mean never / always abstain
RULE = (
    "the passage sentences most similar to the question (embedder cosine); the abstain answer below the "
    "fitted threshold"
)


class ExtractConfig(StrategyConfig):
    """Reference: the document sentences that best match the question, or the abstain answer (qa tasks)."""

    name: Literal["extract"]
    k: int = Field(
        4,
        gt=0,
        le=50,
        description="Passages retrieved per question; their sentences are the candidate answers (as rag's k).",
    )
    retriever: Literal["bm25", "dense", "hybrid"] = Field(
        "hybrid",
        description="bm25: word overlap (bm25s); dense: the sentence embedder's cosine; hybrid: both, fused by "
        "reciprocal rank (as rag's).",
    )
    sentences: int | None = Field(
        None,
        gt=0,
        le=10,
        description="Sentences in each answer, best first; left out, fitted on the training questions with the "
        "threshold (1 to 5: the count whose answers score best there). On northwind-benefits 1, 2, 3 "
        "sentences scored qa_score 0.39, 0.46, 0.48 on test, the fitted 4 scored 0.47 "
        "(bench/results/references-cpu.json).",
    )


def sentences(text: str) -> list[str]:
    """A passage's sentences: blocks split at blank lines and Markdown headings, then after . ! ? and a space;
    single line breaks joined (PDF text breaks lines mid-sentence); pieces under MIN_WORDS words dropped.

    >>> sentences("# Leave\\nEmployees get 25 days a\\nyear. Unused days carry over.\\n\\nPage 3")
    ['Employees get 25 days a year.', 'Unused days carry over.']
    """
    blocks: list[str] = []
    lines: list[str] = []
    for line in text.splitlines() + [""]:
        if not line.strip() or line.lstrip().startswith("#"):
            blocks.append(" ".join(lines))
            lines = []
        else:
            lines.append(line.strip())
    pieces = (p.strip() for block in blocks for p in re.split(r"(?<=[.!?])\s+", block))
    return [p for p in pieces if len(p.split()) >= MIN_WORDS]


def fit_threshold(scores: np.ndarray, if_answered: np.ndarray, if_abstained: np.ndarray) -> tuple[float, float]:
    """The threshold (abstain below it) whose per-row scores have the highest mean, and that mean.

    Row i scores `if_answered[i]` when `scores[i]` >= the threshold, else `if_abstained[i]`. Candidates:
    BELOW_ANY (never abstain), midway between each two neighbouring scores, ABOVE_ANY (always abstain);
    a tie goes to the lowest (abstaining least). n rows: n x n comparisons (2,000 rows: 4M, milliseconds).

    >>> fit_threshold(np.array([0.2, 0.9]), np.array([0.0, 0.8]), np.array([1.0, 0.0]))
    (0.55, 0.9)
    """
    found = np.unique(scores[np.isfinite(scores)])
    candidates = np.concatenate([[BELOW_ANY], (found[:-1] + found[1:]) / 2, [ABOVE_ANY]])
    means = np.where(scores[None, :] >= candidates[:, None], if_answered, if_abstained).mean(axis=1)
    best = int(np.argmax(means))  # the first of equal means: the lowest threshold
    return round(float(candidates[best]), 6), round(float(means[best]), 6)


class ExtractSolver:
    """Retrieve, split into sentences, answer with the best ones or abstain below `threshold`."""

    strategy = NAME

    def __init__(
        self, task: Task, index, k: int, n: int, embedder, threshold: float = BELOW_ANY, fitted: dict | None = None
    ):
        self.task, self.index, self.k, self.n, self.embedder = task, index, k, n, embedder
        self.threshold, self.fitted = threshold, fitted or {}
        self._vectors: dict[str, np.ndarray] = {}  # sentence -> unit vector: passages recur across questions

    def candidates(self, questions: list[str]) -> list[tuple[list[str], float, list]]:
        """Per question: its `n` best sentences (best first), the best one's cosine (-inf: no sentence found), the
        passages."""
        hits = self.index.search(questions, self.k)
        pools = [list(dict.fromkeys(s for chunk, _ in found for s in sentences(chunk.text))) for found in hits]
        self._embed([s for pool in pools for s in pool])
        out: list[tuple[list[str], float, list]] = []
        for q, pool, found in zip(_unit(self.embedder.encode(questions)), pools, hits):
            if not pool:
                out.append(([], float("-inf"), found))
                continue
            scores = np.stack([self._vectors[s] for s in pool]) @ q
            order = np.argsort(-scores, kind="stable")[: self.n]
            out.append(([pool[i] for i in order], float(scores[order[0]]), found))
        return out

    def _embed(self, texts: list[str]) -> None:
        """Embed the sentences not seen before, all in one call (the embedder batches 64 at a time)."""
        missing = list(dict.fromkeys(s for s in texts if s not in self._vectors))
        if missing:
            self._vectors.update(zip(missing, _unit(self.embedder.encode(missing))))

    def predict(self, inputs: list[str], progress: Progress | None = None) -> list[Prediction]:
        def answer(batch: list[str]) -> list[Prediction]:
            return [
                Prediction(
                    " ".join(best) if best and score >= self.threshold else self.task.abstain,
                    0,
                    0,
                    0.0,
                    passages=tuple(
                        {"source": c.source, "id": c.id, "score": round(s, 4), "text": c.text} for c, s in hits
                    ),
                )
                for best, score, hits in self.candidates(batch)
            ]

        return timed_batches(inputs, answer, progress)

    def reindexed(self, index) -> ExtractSolver:
        """The same solver reading another index (the documents after a change): the threshold stays."""
        solver = ExtractSolver(self.task, index, self.k, self.n, self.embedder, self.threshold, self.fitted)
        solver._vectors = self._vectors  # unchanged pages keep their sentences
        return solver

    def describe(self) -> dict:
        retrieval = {
            "retriever": self.index.kind,
            "k": self.k,
            "chunks": len(self.index.chunks),
            "documents": len(self.index.files),
        }
        return {
            "strategy": self.strategy,
            "rule": RULE,
            "scorer": "all-MiniLM-L6-v2 cosine of question and sentence",
            "sentences": self.n,
            "threshold": self.threshold,
            "retrieval": retrieval,
            "train": self.fitted,
        }

    def save(self, folder: Path) -> None:
        """solver.json with the threshold, and the index as rag saves it: chunks.json (+ vectors.npy)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_solver_json(folder, self, self.task, retrieval={"k": self.k, **self.index.save(folder)})


class Extract:
    """Fitting: index the documents, then pick the answer length and the abstain threshold on the training questions."""

    name = NAME

    def __init__(self, documents, k: int, retriever: str, n: int | None = None, embedder=None):
        self.documents, self.k, self.retriever, self.n, self.embedder = documents, k, retriever, n, embedder

    def fit(
        self, task: Task, train: Dataset, dev: Dataset | None = None, progress: Progress | None = None
    ) -> ExtractSolver:
        from adaptlab.knowledge.retrieval import embedder_for

        solver = ExtractSolver(
            task,
            self.documents.index(self.retriever),
            self.k,
            self.n or MAX_SENTENCES,
            embedder_for("dense", self.embedder),
        )
        counts = [self.n] if self.n else list(range(1, MAX_SENTENCES + 1))
        solver.n, solver.threshold, solver.fitted = fit_answers(task, train, solver.candidates(train.inputs), counts)
        solver.fitted |= {
            "index_seconds": round(self.documents.seconds.get(self.retriever, 0.0), 3),
            "documents_rebuilt": list(solver.index.rebuilt),
        }
        if progress:
            progress(len(train))
        return solver


def fit_answers(task: Task, train: Dataset, found: list, counts: list[int]) -> tuple[int, float, dict]:
    """The answer length (of `counts`, in sentences) and abstain threshold whose answers to the training questions
    (`found`: ExtractSolver.candidates) have the best mean task score; a tie goes to fewer sentences. Also what fitting
    measured."""
    from adaptlab.knowledge.measures import is_abstention
    from adaptlab.metrics import row_scores

    scores = np.array([score for _, score, _ in found])
    if_abstained = row_scores(task.spec, train.outputs, [task.abstain] * len(train), task.scoring)
    by_count = {}
    for n in counts:
        if_answered = row_scores(
            task.spec, train.outputs, [" ".join(best[:n]) or task.abstain for best, _, _ in found], task.scoring
        )
        by_count[n] = (*fit_threshold(scores, if_answered, if_abstained), round(float(if_answered.mean()), 6))
    n = max(counts, key=lambda c: (by_count[c][1], -c))
    threshold, mean, never = by_count[n]
    return (
        n,
        threshold,
        {
            "rows": len(train),
            "answerable_rows": sum(not is_abstention(o, task.abstain) for o in train.outputs),
            "score": mean,
            "score_never_abstaining": never,
            "abstained": round(float((scores < threshold).mean()), 6),
            "score_by_sentences": {str(c): by_count[c][1] for c in counts},
        },
    )


def build(config: ExtractConfig, ctx) -> Extract:
    if ctx.documents is None:
        raise ConfigError(
            f"strategy {config.key!r} (extract) quotes the documents: set data.docs in the "
            "experiment to a folder of .pdf .md .txt .html files"
        )
    return Extract(ctx.documents, config.k, config.retriever, config.sentences, ctx.embedder)


def load(folder: Path, ctx=None) -> ExtractSolver:
    """The saved index and threshold; scoring uses the embedder of `ctx`, else the default one."""
    from adaptlab.knowledge.index import load_index
    from adaptlab.knowledge.retrieval import embedder_for

    info = read_solver_json(folder, NAME)
    embedder = embedder_for("dense", getattr(ctx, "embedder", None))
    index = load_index(Path(folder), info["retrieval"]["retriever"], embedder)
    return ExtractSolver(
        Task.from_dict(info["task"]),
        index,
        info["retrieval"]["k"],
        info["sentences"],
        embedder,
        info["threshold"],
        info.get("train", {}),
    )


def _unit(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


KIND = Kind(
    NAME,
    "baseline",
    ExtractConfig,
    build=build,
    load=load,
    tier=1,
    llm=False,
    tasks=("qa",),
    reads_documents=True,
    summary="the document sentences most similar to the question, or the abstain answer",
)
