"""Task metrics: per-row scores (for confidence intervals and paired tests) and aggregates."""

from __future__ import annotations

from collections import Counter

import numpy as np


def macro_f1(expected: list[str], predicted: list[str], labels: list[str]) -> float:
    """Unweighted mean of per-label F1 over the task's labels that occur in `expected` or `predicted`."""
    present = [lab for lab in labels if lab in set(expected) or lab in set(predicted)]
    scores = []
    for lab in present:
        tp = sum(e == lab and p == lab for e, p in zip(expected, predicted))
        fp = sum(e != lab and p == lab for e, p in zip(expected, predicted))
        fn = sum(e == lab and p != lab for e, p in zip(expected, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def chrf(hypothesis: str, reference: str, max_n: int = 6, beta: float = 2.0) -> float:
    """Sentence chrF (Popovic 2015) on a 0-100 scale: character n-gram F-beta, n = 1..6, spaces removed."""
    hyp, ref = "".join(hypothesis.split()), "".join(reference.split())
    if not hyp and not ref:
        return 100.0
    precisions, recalls = [], []
    for n in range(1, max_n + 1):
        h = Counter(hyp[i : i + n] for i in range(len(hyp) - n + 1))
        r = Counter(ref[i : i + n] for i in range(len(ref) - n + 1))
        if not h and not r:
            continue
        overlap = sum((h & r).values())
        precisions.append(overlap / sum(h.values()) if h else 0.0)
        recalls.append(overlap / sum(r.values()) if r else 0.0)
    p, r = float(np.mean(precisions)), float(np.mean(recalls))
    if p == 0 and r == 0:
        return 0.0
    return 100 * (1 + beta**2) * p * r / (beta**2 * p + r)


def row_scores(kind: str, expected: list[str], predicted: list[str]) -> np.ndarray:
    """The headline metric per test row: 1/0 correct (classify) or sentence chrF (generate)."""
    if kind == "classify":
        return np.array([float(e == p) for e, p in zip(expected, predicted)])
    return np.array([chrf(p, e) for e, p in zip(expected, predicted)])


def task_metrics(kind: str, expected: list[str], predicted: list[str], labels: list[str]) -> dict[str, float]:
    """accuracy and macro_f1 (classify); exact_match and chrf (generate)."""
    exact = float(np.mean([e == p for e, p in zip(expected, predicted)])) if expected else 0.0
    if kind == "classify":
        return {"accuracy": exact, "macro_f1": macro_f1(expected, predicted, labels)}
    return {"exact_match": exact, "chrf": float(np.mean(row_scores(kind, expected, predicted))) if expected else 0.0}


def bootstrap_ci(scores: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of per-row scores."""
    if len(scores) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, len(scores), size=(resamples, len(scores)))].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))
