"""`classify`: the answer is one label of the set the training outputs use.

Labels are scored, not generated (the engine ranks every label by log-likelihood); dev
splits are stratified by label; accuracy ranks the contenders. References: `majority`
(always the most frequent training label) and `embed_classifier` (logistic regression on
sentence embeddings: when it is as good, the task may not need an LLM).
"""

from __future__ import annotations

import numpy as np

from adaptlab.metrics import label_f1, label_ids, macro
from adaptlab.tasks import Metric, TaskKind
from adaptlab.tasks.degenerate import same_answer

METRICS = (
    Metric("accuracy", "accuracy", "the share of test rows answered with the expected label"),
    Metric(
        "macro_f1",
        "macro-F1",
        "the unweighted mean of per-label F1 over the labels that occur (expected or predicted)",
        column="macro_f1",
    ),
)


def rows(
    expected: list[str], predicted: list[str], labels: list[str], context: dict | None = None
) -> dict[str, np.ndarray]:
    """Per row: 1/0 correct, and each answer's label id (for macro-F1 over any resample)."""
    return {
        "exact": np.array([float(e == p) for e, p in zip(expected, predicted)]),
        "expected_ids": label_ids(expected, labels),
        "predicted_ids": label_ids(predicted, labels),
        "n_labels": np.array([len(labels)]),
    }


def resample(rows: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy and macro-F1 for each row of `idx` (resamples x rows of indices), all resamples at once."""
    n_labels = int(rows["n_labels"][0])
    return {
        "accuracy": rows["exact"][idx].mean(axis=1),
        "macro_f1": macro(*label_f1(rows["expected_ids"][idx], rows["predicted_ids"][idx], n_labels)),
    }


def aggregate(rows: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, float]:
    return {k: float(v[0]) for k, v in resample(rows, np.asarray(idx)[None, :]).items()}


def checks(expected: list[str], predicted: list[str], cut: list[bool], abstain: str = "") -> list[str]:
    """One label for (nearly) every row: the exact label, as labels come from a set ("1 star" and "2 stars" differ
    only in a number, and are different answers)."""
    return same_answer(predicted, "label", near=False)


KIND = TaskKind(
    "classify",
    "a label from the set the training outputs use",
    headline="accuracy",
    row_key="exact",
    metrics=METRICS,
    rows=rows,
    aggregate=aggregate,
    resample=resample,
    references=("majority", "embed_classifier"),
    trivial_words="always answering the most frequent training label",
    remedy="collect more (or cleaner) labeled data before choosing, or try a bigger or remote model",
    checks=checks,
    labelled=True,
)
