"""Freshness: each contender measured again after its documents change, without retraining.

Knowledge changes (a deductible goes up, a benefit is renamed). A contender that reads
the documents at query time (rag, and RAFT, which is rag over a trained adapter)
absorbs the change by re-indexing only the changed files; one that answers from its
weights (a closed-book fine-tune) keeps the old fact until it is retrained; a prompted
model without documents never knew either. `measure_update` measures each on the
update questions (`data.updates.test`) before and after the change: the headline
score against the new answers, and the share of answers still giving the old fact
(stale, `knowledge.measures.is_stale`), with 95% intervals, every contender asked both
times; and what absorbing the change took: the re-index seconds measured, or for a
fine-tune the retrain it needs, estimated at the fit seconds this comparison measured
(`estimate: true`), in dollars at the cost model's hourly price.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adaptlab import kinds
from adaptlab.data import Dataset, load_dataset
from adaptlab.errors import ConfigError
from adaptlab.knowledge.documents import document_files
from adaptlab.knowledge.measures import is_stale
from adaptlab.metrics import bootstrap_ci, row_scores
from adaptlab.task import Task

if TYPE_CHECKING:
    from adaptlab.knowledge.index import Documents


@dataclass(frozen=True)
class Update:
    """A change to the documents: the documents after it, the questions about it, and the files it replaced or added."""

    documents: Documents  # knowledge.index.Documents with the changed files in place
    questions: Dataset
    changed: list[str]
    added: list[str]


def load_update(config, root: Path, documents, abstain: str) -> Update:
    """data.updates read: the changed files (named against data.docs) and the update questions, every one with its old
    answer."""
    folder, questions_file = root / config.data.updates.docs, root / config.data.updates.test
    names = [name for _, name in document_files(folder)]
    known = {name for _, name in document_files(documents.path)}
    questions = load_dataset(questions_file, abstain=abstain)
    missing = [e.line for e in questions if e.old_output is None]
    if missing:
        raise ConfigError(
            f'{questions_file}: line {missing[0]} has no "old_output" ({len(missing)} lines lack '
            f'it): an update question says the answer before the change too, e.g. {{"input": ..., '
            f'"output": "The deductible is $2,500.", "old_output": "The deductible is $2,000."}}'
        )
    return Update(
        documents.updated(folder), questions, [n for n in names if n in known], [n for n in names if n not in known]
    )


def measure_update(
    solver, task: Task, update: Update, family: str, fit_seconds: float, dollars_per_hour: float, progress=None
) -> dict:
    """One contender on the update questions, before and after the change (results.json's `updates.contenders[id]`)."""
    questions = update.questions
    before = solver.predict(questions.inputs, progress)
    if kinds.kind(solver.strategy).reads_documents:  # a solver.DocumentReader: re-index the changed files, answer again
        index = update.documents.index(solver.index.kind)
        after = solver.reindexed(index).predict(questions.inputs, progress)
        seconds = update.documents.seconds[solver.index.kind]
        absorb = {
            "how": "re-index",
            "seconds": seconds,
            "files": list(index.rebuilt),
            "note": f"re-indexed {len(index.rebuilt)} changed file(s) in {seconds:.1f} s; no training",
        }
    else:  # answers from its weights: asked again all the same (nothing is copied), then what keeping it current takes
        after = solver.predict(questions.inputs, progress)
        if kinds.family_trains(family):
            seconds = fit_seconds
            absorb = {
                "how": "retrain",
                "seconds": seconds,
                "estimate": True,
                "note": "answers from weights trained before the change; absorbing it takes a retrain, "
                f"estimated at the fit this comparison measured ({seconds:.0f} s), not measured on "
                "the new documents",
            }
        else:
            seconds = 0.0
            absorb = {"how": "none", "seconds": 0.0, "note": "answers from weights no document update reaches"}
    absorb["dollars"] = seconds * dollars_per_hour / 3600
    return {"before": _side(task, questions, before), "after": _side(task, questions, after), "absorb": absorb}


def absorbed_by(absorb: dict) -> str:
    """How a contender absorbs an update, in words for tables: "re-index", "none", or "retrain (estimate)" where its
    cost was not measured."""
    return absorb["how"] + (" (estimate)" if absorb.get("estimate") else "")


def _side(task: Task, questions: Dataset, predictions) -> dict:
    """The score against the new answers and the stale share, each with its interval, and the answers themselves."""
    answers = [p.output for p in predictions]
    scores = row_scores(task.spec, questions.outputs, answers, task.scoring)
    stale = np.array([is_stale(a, e.old_output, e.output) for a, e in zip(answers, questions)], dtype=float)
    return {
        "score": float(scores.mean()),
        "score_ci": list(bootstrap_ci(scores)),
        "stale": float(stale.mean()),
        "stale_ci": list(bootstrap_ci(stale)),
        "answers": [_row(e, p, s) for e, p, s in zip(questions, predictions, stale)],
    }


def _row(example, prediction, stale: float) -> dict:
    row = {
        "input": example.input,
        "expected": example.output,
        "old": example.old_output,
        "predicted": prediction.output,
        "stale": bool(stale),
    }
    if prediction.passages:  # what a rag answer read: the old page before the update, the new one after
        row["passages"] = [{"source": p["source"], "text": p["text"]} for p in prediction.passages]
    return row
