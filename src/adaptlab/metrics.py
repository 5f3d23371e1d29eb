"""Task metrics: per-row scores (for confidence intervals and paired tests) and aggregates."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from adaptlab.task import DEFAULT_ABSTAIN


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


def row_scores(kind: str, expected: list[str], predicted: list[str], abstain: str | None = None) -> np.ndarray:
    """The headline metric per test row: 1/0 correct (classify), sentence chrF (generate), or the qa score
    (token F1 on answerable rows, 0 when it abstained; 1/0 for abstaining on unanswerable ones)."""
    if kind == "classify":
        return np.array([float(e == p) for e, p in zip(expected, predicted)])
    if kind == "qa":
        from adaptlab.knowledge.measures import qa_rows

        return qa_rows(expected, predicted, abstain or DEFAULT_ABSTAIN)["qa_score"]
    return np.array([chrf(p, e) for e, p in zip(expected, predicted)])


def token_f1(hypothesis: str, reference: str) -> float:
    """SQuAD-style token overlap F1 (0-1) on lower-cased whitespace tokens."""
    hyp, ref = hypothesis.lower().split(), reference.lower().split()
    if not hyp or not ref:
        return float(hyp == ref)
    overlap = sum((Counter(hyp) & Counter(ref)).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / len(hyp), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def json_fields(text: str) -> dict | None:
    """A JSON object's leaf fields as {"a.b[0]": value}, or None when `text` is not a JSON object."""
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return None
    if not isinstance(value, dict):
        return None
    out: dict = {}

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
        else:
            out[path] = node

    walk(value, "")
    return out


def row_table(kind: str, expected: list[str], predicted: list[str], qa: dict | None = None) -> dict[str, np.ndarray]:
    """Per-row values every metric is built from, so bootstrap resamples only re-aggregate.

    generate: exact, token_f1, chrf per row, and, when every expected output is a JSON
    object, json_valid and the field counts (true positives, predicted, expected).
    qa: knowledge.measures.qa_rows, given `qa` (abstain, and what the rows were given and retrieved).
    """
    if kind == "qa":
        from adaptlab.knowledge.measures import qa_rows

        return qa_rows(expected, predicted, **({"abstain": DEFAULT_ABSTAIN} | (qa or {})))
    rows = {"exact": np.array([float(e == p) for e, p in zip(expected, predicted)])}
    if kind == "classify":
        return rows
    rows["token_f1"] = np.array([token_f1(p, e) for e, p in zip(expected, predicted)])
    rows["chrf"] = np.array([chrf(p, e) for e, p in zip(expected, predicted)])
    references = [json_fields(e) for e in expected]
    if expected and all(r is not None for r in references):
        hypotheses = [json_fields(p) for p in predicted]
        rows["json_valid"] = np.array([float(h is not None) for h in hypotheses])
        rows["field_tp"] = np.array([sum(1 for k, v in (h or {}).items() if k in r and r[k] == v) for h, r in zip(hypotheses, references)], dtype=float)
        rows["field_pred"] = np.array([len(h or {}) for h in hypotheses], dtype=float)
        rows["field_ref"] = np.array([len(r) for r in references], dtype=float)
    return rows


def _aggregate(kind: str, rows: dict[str, np.ndarray], idx: np.ndarray, expected_ids: np.ndarray | None = None, predicted_ids: np.ndarray | None = None, n_labels: int = 0) -> dict[str, float]:
    """The scalar metrics over the rows `idx` (a bootstrap resample, or every row)."""
    if kind == "qa":
        from adaptlab.knowledge.measures import qa_aggregate

        return qa_aggregate(rows, idx)
    if kind == "classify":
        e, p = expected_ids[idx], predicted_ids[idx]
        tp = np.bincount(e[e == p], minlength=n_labels + 1)[:n_labels]
        fp = np.bincount(p[e != p], minlength=n_labels + 1)[:n_labels]
        fn = np.bincount(e[e != p], minlength=n_labels + 1)[:n_labels]
        present = (tp + fp + fn) > 0
        f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        return {"accuracy": float(rows["exact"][idx].mean()), "macro_f1": float(f1[present].mean()) if present.any() else 0.0}
    out = {"exact_match": float(rows["exact"][idx].mean()), "token_f1": float(rows["token_f1"][idx].mean()), "chrf": float(rows["chrf"][idx].mean())}
    if "json_valid" in rows:
        tp, pred, ref = rows["field_tp"][idx].sum(), rows["field_pred"][idx].sum(), rows["field_ref"][idx].sum()
        precision, recall = (tp / pred if pred else 0.0), (tp / ref if ref else 0.0)
        out |= {"json_valid": float(rows["json_valid"][idx].mean()), "field_precision": float(precision), "field_recall": float(recall), "field_f1": float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0}
    return out


def task_metrics(kind: str, expected: list[str], predicted: list[str], labels: list[str], resamples: int = 0, seed: int = 0, qa: dict | None = None) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Every scalar metric of the task, and (with `resamples`) its 95% percentile-bootstrap interval.

    classify: accuracy, macro_f1 (over labels that occur in expected or predicted);
    generate: exact_match, token_f1, chrf (0-100), plus json_valid and field
    precision/recall/F1 (micro over fields) when every expected output is a JSON object;
    qa: knowledge.measures.qa_aggregate (qa_score, token_f1, rouge_l, abstention and hallucination
    rates, unsupported figures, retrieval recall@k and MRR). A rate a resample has no rows for (no
    unanswerable question drawn) is left out of that resample's interval.
    """
    if not expected:
        return {}, {}
    rows = row_table(kind, expected, predicted, qa)
    ids = {label: i for i, label in enumerate(labels)}
    extra = {}
    if kind == "classify":  # an answer outside the label set gets its own id (never a true positive)
        extra = {"expected_ids": np.array([ids.get(x, len(labels)) for x in expected]), "predicted_ids": np.array([ids.get(x, len(labels)) for x in predicted]), "n_labels": len(labels)}
    every = np.arange(len(expected))
    metrics = {k: v for k, v in _aggregate(kind, rows, every, **extra).items() if not np.isnan(v)}  # a rate with no rows (nothing answered) is left out
    if not resamples:
        return metrics, {}
    rng = np.random.default_rng(seed)
    draws = [_aggregate(kind, rows, rng.integers(0, len(expected), len(expected)), **extra) for _ in range(resamples)]
    return metrics, {k: (float(np.nanpercentile([d.get(k, np.nan) for d in draws], 2.5)), float(np.nanpercentile([d.get(k, np.nan) for d in draws], 97.5))) for k in metrics if not np.isnan(metrics[k])}


def per_label(expected: list[str], predicted: list[str], labels: list[str]) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """Per-label F1 and the confusion matrix {expected: {predicted: count}} (answers outside the labels as "(other)")."""
    f1 = {}
    for lab in labels:
        tp = sum(e == lab and p == lab for e, p in zip(expected, predicted))
        fp = sum(e != lab and p == lab for e, p in zip(expected, predicted))
        fn = sum(e == lab and p != lab for e, p in zip(expected, predicted))
        f1[lab] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    columns = list(labels) + ["(other)"]
    confusion = {e: {c: 0 for c in columns} for e in labels}
    for e, p in zip(expected, predicted):
        if e in confusion:
            confusion[e][p if p in labels else "(other)"] += 1
    return f1, confusion


def bootstrap_ci(scores: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of per-row scores."""
    if len(scores) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, len(scores), size=(resamples, len(scores)))].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))
