"""Task metrics: per-row scores (for confidence intervals and paired tests) and aggregates."""

from __future__ import annotations

import json
import warnings
from functools import lru_cache

import numpy as np

from adaptlab.tasks import TaskKind, task_kind


def label_ids(values: list[str], labels: list[str]) -> np.ndarray:
    """Each value's index in `labels`; a value outside them gets len(labels) (never a true positive)."""
    ids = {label: i for i, label in enumerate(labels)}
    return np.array([ids.get(v, len(labels)) for v in values], dtype=int)


def label_f1(expected_ids: np.ndarray, predicted_ids: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-label F1 (scikit-learn) and whether each label occurs (in expected or predicted), for each row of
    (resamples, rows) id arrays (a single (rows,) array gives one row). Ids run 0..n_labels-1; n_labels is an
    answer outside the labels: a false negative for the expected label, no label of its own.

    Resample r's label l is passed to scikit-learn as class r*(n_labels+1)+l, so one call scores every resample:
    1,000 resamples of 40 rows over 8 labels take ~20 ms in one call, ~1 s in 1,000 calls (measured on 2 cores).
    """
    from sklearn.metrics import f1_score

    e, p = np.atleast_2d(expected_ids), np.atleast_2d(predicted_ids)
    resamples, width = len(e), n_labels + 1
    if not n_labels:
        return np.zeros((resamples, 0)), np.zeros((resamples, 0), dtype=bool)
    offset = np.arange(resamples)[:, None] * width
    e, p = (e + offset).ravel(), (p + offset).ravel()
    f1 = f1_score(e, p, labels=(np.arange(n_labels)[None, :] + offset).ravel(), average=None, zero_division=0).reshape(
        resamples, n_labels
    )
    occurs = np.bincount(e, minlength=resamples * width) + np.bincount(p, minlength=resamples * width)
    return f1, occurs.reshape(resamples, width)[:, :n_labels] > 0


def macro(f1: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Per row, the mean F1 over the labels present (0 when none is)."""
    return np.where(present.any(axis=1), (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1), 0.0)


def macro_f1(expected: list[str], predicted: list[str], labels: list[str]) -> float:
    """Unweighted mean of per-label F1 over the task's labels that occur in `expected` or `predicted`."""
    return float(macro(*label_f1(label_ids(expected, labels), label_ids(predicted, labels), len(labels)))[0])


@lru_cache(maxsize=1)
def _chrf_metric():
    from sacrebleu.metrics import CHRF

    return CHRF()  # chrF: character n-grams 1..6, beta 2, whitespace removed, no word n-grams (not chrF++)


def chrf(hypothesis: str, reference: str) -> float:
    """Sentence chrF (Popovic 2015) on a 0-100 scale, by sacrebleu: character n-gram F-beta, n = 1..6, beta 2, spaces
    removed.

    sacrebleu averages precision and recall over the n-gram orders that both strings are long enough for, so a
    string under 6 characters (spaces removed) is scored on fewer orders: "ab" against "abcdefgh" scores 23.4
    on orders 1-2, where adaptlab's own chrF before it averaged all six, counting the missing orders as 0 (7.8).
    Strings of 6 characters or more score the same. Two empty answers score 100 (identical), where sacrebleu says 0.
    """
    if not hypothesis.split() and not reference.split():
        return 100.0
    return float(_chrf_metric().sentence_score(hypothesis, [reference]).score)


def row_scores(
    kind: TaskKind | str, expected: list[str], predicted: list[str], scoring: dict | None = None
) -> np.ndarray:
    """The headline metric per test row, as the task kind defines it (1/0 correct, sentence chrF, the qa score or
    utility). `kind`: a task's `spec`, or a kind's name; `scoring`: the task's (`Task.scoring`: the abstain answer,
    costs)."""
    spec = _spec(kind)
    return spec.rows(expected, predicted, [], scoring)[spec.row_key]


def _spec(kind: TaskKind | str) -> TaskKind:
    """A task's spec as given (it may be priced: Task.spec), or the kind of that name."""
    return task_kind(kind) if isinstance(kind, str) else kind


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


def row_table(
    kind: TaskKind | str,
    expected: list[str],
    predicted: list[str],
    qa: dict | None = None,
    labels: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Per-row values every metric of the task kind is built from, so bootstrap resamples only re-aggregate
    (adaptlab.tasks: each kind's `rows`); `qa`: what an abstaining kind's rows read beside the answers."""
    return _spec(kind).rows(expected, predicted, labels or [], qa)


def task_metrics(
    kind: TaskKind | str,
    expected: list[str],
    predicted: list[str],
    labels: list[str],
    resamples: int = 0,
    seed: int = 0,
    qa: dict | None = None,
    rows: dict[str, np.ndarray] | None = None,
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Every scalar metric of the task, and (with `resamples`) its 95% bootstrap interval: BCa for the headline
    metric (the mean of its per-row scores, see `bootstrap_ci`), percentile for the others.

    classify: accuracy, macro_f1 (over labels that occur in expected or predicted);
    generate: exact_match, token_f1, chrf (0-100), plus json_valid and field
    precision/recall/F1 (micro over fields) when every expected output is a JSON object;
    qa: knowledge.measures.qa_aggregate (qa_score, token_f1, rouge_l, abstention and hallucination
    rates, unsupported figures, retrieval recall@k and MRR). A rate a resample has no rows for (no
    unanswerable question drawn) is left out of that resample's interval. `rows`: row_table's, when the caller has it.

    Why percentile for the others: BCa adds a jackknife, one statistic per left-out row over the other n - 1,
    so its cost grows with n^2. Measured through scipy.stats.bootstrap on this 2-core machine (1,000 resamples,
    every metric in one call): classify 0.37 s at 40 rows and 1.9 s at 2,000; generate 0.09 s and 0.83 s;
    against 0.02-0.1 s for the percentile intervals below, for every contender. And qa's rates are undefined
    (nan) in resamples without their rows, which BCa cannot place. The headline is a plain mean, whose
    jackknife is one vectorised mean: ~15 ms at 2,000 rows.
    """
    if not expected:
        return {}, {}
    spec = _spec(kind)
    rows = rows if rows is not None else row_table(spec, expected, predicted, qa, labels)
    metrics = {
        k: v for k, v in spec.aggregate(rows, np.arange(len(expected))).items() if not np.isnan(v)
    }  # a rate with no rows (nothing answered) is left out
    if not resamples:
        return metrics, {}
    draws = spec.resampled(
        rows, np.random.default_rng(seed).integers(0, len(expected), size=(resamples, len(expected)))
    )
    ci = {
        k: (float(np.nanpercentile(draws[k], 2.5)), float(np.nanpercentile(draws[k], 97.5)))
        for k in metrics
        if k in draws
    }
    if spec.headline in ci:
        ci[spec.headline] = bootstrap_ci(rows[spec.row_key], resamples, seed, spec.metric(spec.headline).scale)
    return metrics, ci


def per_label(
    expected: list[str], predicted: list[str], labels: list[str]
) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """Per-label F1 (0 for a label that never occurs) and the confusion matrix {expected: {predicted: count}} (answers
    outside the labels as "(other)")."""
    f1, _ = label_f1(label_ids(expected, labels), label_ids(predicted, labels), len(labels))
    columns = list(labels) + ["(other)"]
    confusion = {e: {c: 0 for c in columns} for e in labels}
    for e, p in zip(expected, predicted):
        if e in confusion:
            confusion[e][p if p in labels else "(other)"] += 1
    return {label: float(v) for label, v in zip(labels, f1[0])}, confusion


def bootstrap_ci(scores: np.ndarray, resamples: int = 1000, seed: int = 0, scale: float = 1.0) -> tuple[float, float]:
    """95% interval of the mean of per-row scores, built to cover on a small test split.

    - 0/1 scores: Wilson's score interval (scipy.stats.binomtest): BCa on 20 rows with 18 right covered the true
      accuracy 89% of the time, and on a sample with every row right it has no width at all;
    - other scores within [0, `scale`] (chrF per row, token F1): the wider of BCa (scipy.stats.bootstrap, seeded)
      and Wilson's interval at the effective sample size n * m(1 - m) / s^2 (m, s^2: the mean and variance of
      the scores divided by `scale`), which keeps width where a small sample sits at the bound (every answer
      exact) and BCa has none;
    - scores outside [0, `scale`] (differences, priced utilities): BCa alone.
    bench/decide.py measures the coverage (the `intervals` table: 90-98% on every task kind). Where BCa is
    undefined it falls back: every row alike gives the point itself (BCa's acceleration is 0/0); a bootstrap
    distribution BCa cannot place (scipy returns nan) gives the percentile interval of the same resamples.
    """
    scores = np.asarray(scores, dtype=float)
    if len(scores) == 0:
        return (float("nan"), float("nan"))
    bounded = bool(((scores >= 0) & (scores <= scale)).all())
    if bounded and binary(scores / scale):
        from scipy.stats import binomtest

        right = int(round(float(scores.sum() / scale)))
        lo, hi = binomtest(right, len(scores)).proportion_ci(0.95, method="wilson")
        return (float(lo) * scale, float(hi) * scale)
    lo, hi = _bca(scores, resamples, seed)
    if bounded:
        w_lo, w_hi = wilson(scores / scale)
        lo, hi = min(lo, w_lo * scale), max(hi, w_hi * scale)
    return (float(lo), float(hi))


def binary(scores) -> bool:
    """Every per-row score is 0 or 1 (classify's accuracy, or qa rows that are all or nothing)."""
    return bool(np.isin(np.asarray(scores, dtype=float), (0.0, 1.0)).all())


def wilson(shares: np.ndarray, z: float = 1.959964) -> tuple[float, float]:
    """Wilson's 95% score interval for the mean of values in [0, 1] at the effective sample size n * m(1 - m) / s^2
    (n itself for 0/1 values, and where the values give no variance); z = scipy.stats.norm.ppf(0.975).

    >>> [round(x, 4) for x in wilson(np.array([1.0] * 18 + [0.0] * 2))]
    [0.699, 0.9721]
    """
    n, m, var = len(shares), float(shares.mean()), float(shares.var())
    effective = n * m * (1 - m) / var if var > 0 and 0 < m < 1 else n
    centre, spread = m + z * z / (2 * effective), z * np.sqrt(m * (1 - m) / effective + z * z / (4 * effective**2))
    shrink = 1 + z * z / effective
    return (float(max(0.0, (centre - spread) / shrink)), float(min(1.0, (centre + spread) / shrink)))


def _bca(scores: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """The 95% BCa bootstrap interval of the mean (scipy.stats.bootstrap), with bootstrap_ci's fall-backs."""
    if np.ptp(scores) == 0:
        return (float(scores[0]), float(scores[0]))
    from scipy.stats import bootstrap

    with warnings.catch_warnings():  # a nan interval (DegenerateDataWarning) is handled below
        warnings.simplefilter("ignore")
        result = bootstrap(
            (scores,),
            np.mean,
            n_resamples=resamples,
            method="BCa",
            confidence_level=0.95,
            vectorized=True,
            rng=np.random.default_rng(seed),
        )
    lo, hi = result.confidence_interval
    if np.isfinite(lo) and np.isfinite(hi):
        return (float(lo), float(hi))
    return (
        float(np.percentile(result.bootstrap_distribution, 2.5)),
        float(np.percentile(result.bootstrap_distribution, 97.5)),
    )
