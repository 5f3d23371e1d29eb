"""`combine`: one contender measured several times with different seeds, as one Evaluation.

A fine-tuned model trained once carries the luck of its seed (data order, initial
weights), which intervals over test rows alone do not show. With `repeats`, each
test row's score is the mean over the repeats, every metric is the mean of the
repeats' metrics, and the headline metric's 95% interval comes from a two-level
bootstrap: resample the repeats, then the rows (the same rows for every repeat drawn),
so both the seed and the test sample count. The repeats' own headline scores are kept
(`repeats`) so the spread is visible.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from adaptlab.evaluation.evaluate import Evaluation

RESAMPLES = 1000


def two_level_ci(matrix: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of a (repeats x rows) score matrix, resampling repeats, then rows.

    >>> lo, hi = two_level_ci(np.array([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]]))
    >>> 0.25 <= lo <= 0.75 <= hi <= 1.0
    True
    """
    rng = np.random.default_rng(seed)
    repeats, rows = matrix.shape
    which = rng.integers(0, repeats, size=(resamples, repeats))
    idx = rng.integers(0, rows, size=(resamples, rows))
    means = np.array([matrix[which[b]][:, idx[b]].mean() for b in range(resamples)])
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def combine(runs: list[Evaluation], metric: str, seeds: list[int]) -> Evaluation:
    """The repeats of one contender as one Evaluation (the first repeat's predictions and solver kept)."""
    if len(runs) == 1:
        return runs[0]
    first = runs[0]
    matrix = np.array([r.scores for r in runs], dtype=float)
    metrics = {k: float(np.mean([r.metrics[k] for r in runs if k in r.metrics])) for k in first.metrics}
    ci = dict(first.ci) | {metric: two_level_ci(matrix)}  # the other metrics keep the first repeat's interval over rows
    return replace(
        first,
        metrics=metrics,
        ci=ci,
        scores=matrix.mean(axis=0).tolist(),
        latency_ms_mean=float(np.mean([r.latency_ms_mean for r in runs])),
        latency_ms_p95=float(np.mean([r.latency_ms_p95 for r in runs])),
        latency_ms_p50=None
        if any(r.latency_ms_p50 is None for r in runs)
        else float(np.mean([r.latency_ms_p50 for r in runs])),
        fit_seconds=float(np.mean([r.fit_seconds for r in runs])),
        peak_rss_mb=float(max(r.peak_rss_mb for r in runs)),
        repeats=[r.metrics[metric] for r in runs],
        repeat_seeds=list(seeds),
    )
