"""Paired statistics over the same test rows: the difference of two contenders with its interval, its test
(exact McNemar or a paired permutation test, from scipy), Holm's correction, what the test split could
detect (power), whether two contenders are shown equivalent within a tolerance (two one-sided tests), and
each contender's probability of being best.

Every function is pure and seeded: the same scores give the same figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adaptlab.metrics import binary

ALPHA = 0.05  # two-sided level of every test
# z_.975 + z_.8 = 1.959964 + 0.841621: a two-sided 5% test has 80% power against a difference this many
# standard errors away (scipy.stats.norm.ppf; written out so that importing this module does not load scipy)
Z_POWER = 2.801585
# z_.95 + z_.8 = 1.644854 + 0.841621: each one-sided 5% test of an equivalence (TOST) has 80% power
Z_EQUIVALENCE = 2.486475
P_BEST_RESAMPLES = 1000
MCNEMAR = "McNemar exact"
PERMUTATION = "paired permutation"


def paired_difference(
    a: list[float], b: list[float], resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of a - b over the same rows, with its 95% paired-bootstrap (percentile) interval."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return (float(diff.mean()), *paired_interval(a, b, 0.95, resamples, seed))


def paired_interval(a: list[float], b: list[float], level: float, resamples: int = 2000, seed: int = 0) -> tuple:
    """The `level` paired-bootstrap (percentile) interval of mean(a - b) over the same rows."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    means = diff[np.random.default_rng(seed).integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


@dataclass(frozen=True)
class Equivalence:
    """Whether a cheaper contender is shown to score within `tolerance` of a better-scoring one (TOST).

    Two one-sided tests at 5% each: the 90% paired interval of mean(better - cheaper) lies inside
    (-tolerance, +tolerance). `rows_to_show` is the test rows at which the observed gap, with the observed spread
    of per-row differences, would be shown equivalent with 80% power: ceil(((z_.95 + z_.8) * s / (tolerance -
    |gap|))^2); None when the gap is at or beyond the tolerance (no number of rows would show it), or the rows
    give no spread (then `shown` decides alone).

    >>> e = equivalence([1, 0, 1, 1] * 10, [1, 0, 1, 0] * 10, tolerance=0.02)
    >>> e.shown, round(e.difference, 2), e.rows_to_show
    (False, 0.25, None)
    >>> equivalence([0.50, 0.51] * 200, [0.50, 0.50] * 200, tolerance=0.02).shown
    True
    """

    difference: float  # mean(better - cheaper)
    low: float  # its 90% paired interval
    high: float
    tolerance: float
    shown: bool
    rows_to_show: int | None


def equivalence(better: list[float], cheaper: list[float], tolerance: float, seed: int = 0) -> Equivalence:
    """`cheaper` against `better` on the same rows: are they shown within `tolerance` (TOST at 5%)? See
    `Equivalence`."""
    d = np.asarray(better, dtype=float) - np.asarray(cheaper, dtype=float)
    gap = float(d.mean()) if len(d) else 0.0
    low, high = paired_interval(better, cheaper, 0.90, seed=seed) if len(d) else (gap, gap)
    shown = -tolerance < low and high < tolerance
    spread = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    rows = None
    if spread > 0 and abs(gap) < tolerance:
        rows = math.ceil((Z_EQUIVALENCE * spread / (tolerance - abs(gap))) ** 2)
    return Equivalence(gap, low, high, tolerance, bool(shown), rows)


def paired_test(a: list[float], b: list[float], resamples: int = 9999, seed: int = 0) -> tuple[str, float]:
    """The two-sided test of "a and b score the same on average" over the same rows: (its name, p-value).

    0/1 scores: exact McNemar, a binomial test (p = 1/2) on the discordant rows: of the rows where exactly one
    is right, how many went to a. Otherwise a paired permutation test of the mean difference: each row's two
    scores are swapped or not (exact over all 2^n swaps when 2^n <= `resamples`, else `resamples` seeded draws).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if binary(x) and binary(y):
        from scipy.stats import binomtest

        a_only, b_only = int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum())
        return MCNEMAR, 1.0 if a_only + b_only == 0 else float(binomtest(a_only, a_only + b_only, 0.5).pvalue)
    if not (x - y).any():  # the same score on every row: nothing to test
        return PERMUTATION, 1.0
    from scipy.stats import permutation_test

    result = permutation_test(
        (x, y),
        lambda u, v, axis: np.mean(u - v, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return PERMUTATION, float(min(1.0, result.pvalue))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment, in the input order: the i-th smallest of m p-values is multiplied by
    m - i + 1 (i from 1), then made non-decreasing in that order, and capped at 1.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def power(a: list[float], b: list[float]) -> dict:
    """What this test split can detect for the pair (80% power, two-sided 5% level), by the normal approximation.

    detectable_difference = (z_.975 + z_.8) * s / sqrt(n), and rows_to_settle = ceil(((z_.975 + z_.8) * s / gap)^2)
    for the observed gap = mean(a - b), where s is, per row d = a - b:
    - continuous scores: the standard deviation of d (n - 1 in the denominator);
    - 0/1 scores: sqrt(discordant share), the root mean square of d (d is -1, 0 or +1): McNemar's variance under
      "no difference" (Connor 1987, with the alternative's variance p_disc - gap^2 taken as p_disc: slightly
      conservative, and rows_to_settle is n when the gap equals the detectable difference).
    Both are None when s is 0 (the two scored alike on every row, or differ by a constant): the rows give no spread
    to size a test by; rows_to_settle is None when the gap is 0.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    if n < 2:
        return {"detectable_difference": None, "rows_to_settle": None}
    spread = math.sqrt(float((d != 0).mean())) if binary(a) and binary(b) else float(d.std(ddof=1))
    if spread == 0:
        return {"detectable_difference": None, "rows_to_settle": None}
    gap = float(d.mean())
    return {
        "detectable_difference": Z_POWER * spread / math.sqrt(n),
        "rows_to_settle": math.ceil((Z_POWER * spread / abs(gap)) ** 2) if gap else None,
    }


def p_best(scores: dict[str, list[float]], resamples: int = P_BEST_RESAMPLES, seed: int = 0) -> dict[str, float]:
    """Each contender's probability of being best: the share of bootstrap resamples of the test rows (the same
    rows for every contender) in which its mean score is the highest; a tie splits that resample evenly."""
    names = list(scores)
    if not names:
        return {}
    table = np.array([scores[name] for name in names], dtype=float)  # contenders x rows
    n = table.shape[1]
    if n == 0:
        return {name: 1 / len(names) for name in names}
    rng = np.random.default_rng(seed)
    counts = np.stack(
        [np.bincount(row, minlength=n) for row in rng.integers(0, n, size=(resamples, n))]
    )  # resample x row: times drawn
    means = counts @ table.T / n  # resample x contender
    top = np.isclose(means, means.max(axis=1, keepdims=True), rtol=1e-12, atol=1e-12)
    share = (top / top.sum(axis=1, keepdims=True)).mean(axis=0)
    return {name: float(s) for name, s in zip(names, share)}


def pairwise(evaluations: list, resamples: int = 2000, seed: int = 0) -> list[dict]:
    """Every two contenders on the same test rows: mean difference of the headline score (a - b) with its 95%
    paired-bootstrap interval; the paired test (`test`: McNemar exact for 0/1 scores, else paired permutation),
    its two-sided `p_value` and `p_holm` (Holm across all pairs); and the split's power for the pair
    (`detectable_difference`, `rows_to_settle`: see `power`)."""
    out = []
    for i, a in enumerate(evaluations):
        for b in evaluations[i + 1 :]:
            diff, lo, hi = paired_difference(a.scores, b.scores, resamples, seed)
            test, p_value = paired_test(a.scores, b.scores, seed=seed)
            out.append(
                {"a": a.name, "b": b.name, "difference": diff, "ci95": [lo, hi], "test": test, "p_value": p_value}
                | power(a.scores, b.scores)
            )
    for row, adjusted in zip(out, holm([r["p_value"] for r in out])):
        row["p_holm"] = adjusted
    return out


def top_two(evaluations: list, metric: str) -> tuple | None:
    """The best contender by `metric` and the runner-up (ties: the cheaper tier, then the faster, first), or None with
    fewer than two."""
    if len(evaluations) < 2:
        return None
    ranked = sorted(evaluations, key=lambda e: (-e.metrics[metric], e.tier, e.latency_ms_mean))
    return ranked[0], ranked[1]


def power_summary(evaluations: list, metric: str) -> dict | None:
    """results.json's "power": what the test split can detect between the top two contenders, and the rows that would
    settle their gap."""
    pair = top_two(evaluations, metric)
    if pair is None:
        return None
    best, runner_up = pair
    return {
        "metric": metric,
        "rows": len(best.scores),
        "between": [best.name, runner_up.name],
        "difference": float(np.mean(best.scores) - np.mean(runner_up.scores)),
    } | power(best.scores, runner_up.scores)
