"""Judged measures: how often people would prefer each contender's answers, estimated from a few people's ratings
and a cheap proxy on every row (a judge model's verdicts, or chrF turned into a preference), by prediction-powered
inference (PPI++, `ppi_py.ppi_mean_ci`): the proxy's mean over every row, corrected by how far it missed people on
the rows they rated. The interval stays valid however wrong the proxy is (a useless proxy gets weight 0 and the
interval is people's own); a good proxy narrows it. bench/judged.py measures both on planted data.

A preference is a number from a's side: a preferred 1.0, b preferred 0.0, tie or both bad 0.5. A pair is always
reported in the order of `contenders` (a before b); ratings given the other way round are flipped (1 - value).

Every function is pure and seeded: the same ratings give the same figures.

    >>> proxy = {(r, "x", "y"): 0.0 if r % 4 == 0 else 1.0 for r in range(60)}  # the judge prefers x on 3 rows of 4
    >>> people = [(r, "x", "y", 0.0 if r % 4 == 0 or r == 6 else 1.0) for r in range(0, 60, 3)]  # 20 rated rows
    >>> pair = judged_measures(["x", "y"], range(60), people, proxy, "judge").pairs[0]
    >>> pair.source, round(pair.estimate, 2), [round(x, 2) for x in pair.ci], [round(x, 2) for x in pair.people_ci]
    ('people+judge', 0.7, [0.55, 0.84], [0.48, 0.88])
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from adaptlab.results import ContenderJudged, JudgedMeasures, PairJudged, ScoreJudged

Key = tuple[int, str, str]  # (row, a, b)
Z95 = 1.959964  # scipy.stats.norm.ppf(0.975): a 95% interval is the estimate +- Z95 standard errors
P_BEST_DRAWS = 4000


def trivial_reference(results) -> str | None:
    """The run's trivial reference contender (its task kind's first reference, e.g. `constant`), or None."""
    from adaptlab.errors import AdaptlabError
    from adaptlab.tasks import task_kind

    try:
        trivial = task_kind(results.task.kind).references[0]
    except (AdaptlabError, IndexError):  # a kind this install does not know, or one without references
        return None
    return next((s.name for s in results.strategies if (s.traits.get("kind") or s.name) == trivial), None)


def pairs_worth_comparing(results) -> list[tuple[str, str]]:
    """Every two contenders of `results` (a CompareResults), in their order, less those where the trivial reference
    loses clearly: the headline's paired interval lies beyond the tolerance in the other's favour (recommendation's
    tolerance, else the metric's default). People need not read answers to know that.

    E.g. bank-assistant: constant vs lora, chrF difference -27.8 [-34.9, -20.6], tolerance 2: left out.
    """
    from adaptlab.tasks import default_tolerance, task_kind

    names = [s.name for s in results.strategies]
    trivial = trivial_reference(results)
    metric = results.task.metric
    tolerance = results.recommendation.tolerance
    tolerance = default_tolerance(metric) if tolerance is None else tolerance
    try:
        sign = 1.0 if task_kind(results.task.kind).metric(metric).higher_is_better else -1.0
    except Exception:  # an unknown kind: higher is better, as for every built-in metric
        sign = 1.0
    clear = set()
    for pair in results.pairwise:
        if trivial not in (pair.a, pair.b):
            continue
        low, high = (sign * x for x in pair.ci95)
        low, high = min(low, high), max(low, high)  # a - b, higher for a
        if (pair.a == trivial and high < -tolerance) or (pair.b == trivial and low > tolerance):
            clear.add(frozenset((pair.a, pair.b)))
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if frozenset((a, b)) not in clear]


def proxy_from_scores(
    per_row_scores_a: Sequence[float], per_row_scores_b: Sequence[float], scale: float, margin: float | None = None
) -> list[float]:
    """A per-row preference for a from two per-row scores (chrF, token F1): 0.5 + 0.5 * (a - b) / margin, within
    [0, 1]; a gap of `margin` or more (default a tenth of `scale`: 10 chrF) reads as a clear preference.

    >>> proxy_from_scores([40, 30, 50], [20, 30, 53], scale=100)
    [1.0, 0.5, 0.35]
    """
    margin = 0.1 * scale if margin is None else margin
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    gap = (np.asarray(per_row_scores_a, dtype=float) - np.asarray(per_row_scores_b, dtype=float)) / margin
    return [round(float(v), 12) for v in 0.5 + 0.5 * np.clip(gap, -1.0, 1.0)]


def _oriented(order: Mapping[str, int], a: str, b: str, value: float) -> tuple[str, str, float] | None:
    """(a, b, value) with a before b in the contenders' order (value flipped when swapped); None: unknown contender."""
    if a not in order or b not in order or a == b:
        return None
    return (a, b, value) if order[a] < order[b] else (b, a, 1.0 - value)


def _tables(
    contenders: Sequence[str], people: Iterable[tuple], proxy: Mapping[Key, float], notes: list[str]
) -> tuple[dict, dict]:
    """people averaged per row and the proxy, both as {(a, b): {row: value}} in the contenders' order."""
    order = {c: i for i, c in enumerate(contenders)}
    rated: dict = defaultdict(lambda: defaultdict(list))
    unknown = 0
    for row, a, b, value in people:
        got = _oriented(order, a, b, float(value))
        if got is None:
            unknown += 1
            continue
        rated[got[:2]][int(row)].append(got[2])
    proxied: dict = defaultdict(dict)
    for (row, a, b), value in proxy.items():
        got = _oriented(order, a, b, float(value))
        if got is None:
            unknown += 1
            continue
        proxied[got[:2]][int(row)] = got[2]
    if unknown:
        notes.append(f"{unknown} rating(s) or verdict(s) name a contender not compared here (or one against itself)")
    return {k: {r: float(np.mean(v)) for r, v in rows.items()} for k, rows in rated.items()}, dict(proxied)


def _normal_ci(estimate: float, se: float, lo: float = 0.0, hi: float = 1.0, z: float = Z95) -> list[float]:
    return [float(max(lo, estimate - z * se)), float(min(hi, estimate + z * se))]


def _ppi(
    y: np.ndarray, yhat: np.ndarray, yhat_unrated: np.ndarray, alpha: float, bounds: tuple[float, float]
) -> tuple[float, float | None, list[float] | None]:
    """PPI++ (ppi_py, power-tuned) mean of y: (estimate, standard error, interval). The interval is ppi_py's on the
    rated rows with `_doubt`'s two pseudo-ratings, at Student's t quantile (`_small_sample`); the estimate is from
    the rated rows alone; the standard error is the interval's half-width / z, so that intervals combine in
    `_contenders`. The caller makes sure that y has 2+ rows, the unrated rows 2+, and the proxy some spread (ppi_py
    divides by its variance)."""
    from ppi_py import ppi_mean_ci, ppi_mean_pointestimate  # type: ignore[import-untyped]

    more_y, more_yhat = _doubt(bounds)
    with np.errstate(all="ignore"):
        estimate = float(np.asarray(ppi_mean_pointestimate(y, yhat, yhat_unrated)).ravel()[0])
        lo, hi = (
            float(np.asarray(x).ravel()[0])
            for x in ppi_mean_ci(
                np.r_[y, more_y], np.r_[yhat, more_yhat], yhat_unrated, alpha=_small_sample(alpha, len(y))
            )
        )
    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(estimate)) or hi <= lo:
        return float(np.mean(y)), None, None
    return estimate, (hi - lo) / (2 * _z(alpha)), [max(bounds[0], lo), min(bounds[1], hi)]


def _classical(y: np.ndarray, alpha: float, bounds: tuple[float, float]) -> list[float] | None:
    """People-only interval, for comparison: PPI's without a proxy (ppi_py.classical_mean_ci), on the same rows with
    the same pseudo-ratings and t quantile; None with fewer than 2 rows."""
    from ppi_py import classical_mean_ci

    if len(y) < 2:
        return None
    lo, hi = (
        float(np.asarray(x).ravel()[0])
        for x in classical_mean_ci(np.r_[y, _doubt(bounds)[0]], alpha=_small_sample(alpha, len(y)))
    )
    return [max(bounds[0], lo), min(bounds[1], hi)]


def _doubt(bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Two pseudo-ratings that join the rated rows when an interval's width is computed (as Agresti and Coull add two
    successes and two failures): a quarter of the range either side of its middle (0.75 and 0.25 for a preference,
    4 and 2 for a 1-5 score), the proxy at the middle on both. Without them 10 rated rows that the proxy matched
    on every one (a proxy agreeing 85% of the time does so one time in five) show no disagreement at all and give a
    far too narrow interval: on planted data like bench/judged.py's, 10 ratings of a pair preferred 76% of the
    time, a proxy agreeing 85%, covered 86% for a nominal 95%; with them 96%, at about the same mean width (0.31,
    0.32); from 50 ratings on they change the width by under 5%. bench/judged.py: 94-97% in every setting."""
    low, high = bounds
    middle, quarter = (low + high) / 2, (high - low) / 4
    return np.array([middle + quarter, middle - quarter]), np.array([middle, middle])


def _small_sample(alpha: float, n: int) -> float:
    """The error level whose normal quantile is Student's t quantile at n - 1 degrees of freedom: ppi_py's intervals
    are normal approximations, which cover too rarely on few rated rows (on planted data like bench/judged.py's,
    10 ratings per pair: 88.7% for a nominal 95% with z, 91.0% with t; 15: 91.7% and 93.2%).

    >>> round(_small_sample(0.05, 15), 4), round(_small_sample(0.05, 10_000), 4)
    (0.032, 0.05)
    """
    from scipy.stats import norm, t

    return float(2 * norm.sf(t.ppf(1 - alpha / 2, n - 1)))


def _z(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))


def _estimate(
    y: dict[int, float],
    yhat: dict[int, float],
    alpha: float,
    seed: int,
    proxy_name: str,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> dict:
    """One mean (a pair's preference, a contender's score) from people `y` and proxy `yhat`, both {row: value}:
    the fields PairJudged and ScoreJudged share, plus `se` (None without an interval).

    Calibrated by PPI where people rated 2+ rows the proxy judged, the proxy judged 2+ rows nobody rated, and the
    proxy's values vary; otherwise people's own figures (the proxy cannot help: `ci_reason` says why where that
    leaves no interval); with no ratings, the proxy's own mean with the house bootstrap interval, uncalibrated."""
    lo_bound, hi_bound = bounds
    z = _z(alpha)
    people = float(np.mean(list(y.values()))) if y else None
    out: dict[str, Any] = {"people": people, "n_rated": len(y), "n_proxied": len(yhat), "ci_reason": None}
    out["proxy"] = float(np.mean(list(yhat.values()))) if yhat else None
    out["people_ci"] = _classical(np.array(list(y.values())), alpha, bounds)
    labelled, unrated = sorted(set(y) & set(yhat)), sorted(set(yhat) - set(y))
    varied = len({yhat[r] for r in labelled + unrated}) > 1
    if len(labelled) >= 2 and len(unrated) >= 2 and varied:
        estimate, se, out["ci"] = _ppi(
            np.array([y[r] for r in labelled]),
            np.array([yhat[r] for r in labelled]),
            np.array([yhat[r] for r in unrated]),
            alpha,
            bounds,
        )
        out |= {"estimate": estimate, "se": se, "ci_reason": None if se else "PPI gave no interval on these rows"}
        out |= {"source": f"people+{proxy_name}", "calibrated": True}
    elif len(y) >= 2:  # people's own mean with the house interval (Wilson's where every rating agrees)
        out |= _house(np.array(list(y.values())), "people only", True, seed, alpha, bounds)
    elif y:
        reason = "only 1 rated row: an interval needs at least 2; rate more rows"
        out |= {"estimate": people, "se": None, "source": "people only", "calibrated": True, "ci_reason": reason}
    else:
        out |= _house(np.array(list(yhat.values())), f"{proxy_name} only (uncalibrated)", False, seed, alpha, bounds)
    if "ci" not in out:
        out["ci"] = _normal_ci(out["estimate"], out["se"], lo_bound, hi_bound, z) if out["se"] is not None else None
    out["estimate"] = float(np.clip(out["estimate"], lo_bound, hi_bound))
    return out


def _house(values: np.ndarray, source: str, calibrated: bool, seed: int, alpha: float, bounds: tuple) -> dict:
    """A plain mean with the house interval (adaptlab.metrics.bootstrap_ci: Wilson's for 0/1 values, else the wider
    of BCa and Wilson's at the effective sample size), its standard error read back as half its width / z."""
    from adaptlab.metrics import bootstrap_ci

    lo, hi = bootstrap_ci(values, seed=seed, scale=bounds[1])
    se = (hi - lo) / (2 * Z95) if hi > lo else None
    out = {"estimate": float(values.mean()), "source": source, "calibrated": calibrated, "se": se}
    out["ci_reason"] = None if se else "every value is the same: no spread to size an interval from"
    if alpha == 0.05 and se:  # bootstrap_ci's level; another level takes the normal interval of the same spread
        out["ci"] = [float(lo), float(hi)]
    return out


def judged_measures(
    contenders: Sequence[str],
    rows: Sequence[int],
    people: Iterable[tuple[int, str, str, float]],
    proxy: Mapping[Key, float],
    proxy_name: str,
    scores_people: Iterable[tuple[int, str, float]] | None = None,
    scores_proxy: Mapping[tuple[int, str], float] | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    left_out: Sequence[str] = (),
) -> JudgedMeasures:
    """Judged measures from people's ratings `people` [(row, a, b, value from a's side)] and the proxy's values
    `proxy` {(row, a, b): value in [0, 1]} on every row of every pair judged: per pair P(a preferred over b) by PPI,
    per contender its win rate and P(best), and, given `scores_people` [(row, contender, 1-5)] and `scores_proxy`
    {(row, contender): 1-5}, each contender's mean score. Rows outside `rows` are left out (with a note). Pairs with
    a contender in `left_out` are estimated but count in no win rate (the trivial reference: a strong contender's
    easy win against it is often not judged at all, so averaging it in would compare win rates over other opponents).

    PPI (`ppi_py.ppi_mean_ci`, power-tuned): Y = people's value on the rated rows (several reviewers averaged per
    row), Yhat = the proxy on those rows, Yhat_unlabeled = the proxy on the rows nobody rated. The two sets are
    kept apart, as PPI's guarantee assumes: with the rated rows counted among the unlabeled too, 30 rated of 80 rows
    and a proxy agreeing with people 95% of the time covered 88% for a nominal 95%, 60 of 80 86%; kept apart, 92%
    and 94% (z intervals; bench/judged.py measures every setting as computed here: 93.8-96.7%). The target is people's
    preference on inputs like the test rows, as every other interval of a run. Without ratings for a pair: the
    proxy's own mean with the house bootstrap interval (`metrics.bootstrap_ci`), `calibrated: False`. Where PPI
    cannot run (fewer than 2 rated or unrated rows, a proxy without spread): people's own, source "people only".
    """
    notes: list[str] = []
    keep = set(int(r) for r in rows)
    given, judged = list(people), len(proxy)
    people = [p for p in given if int(p[0]) in keep]
    proxy = {k: v for k, v in proxy.items() if int(k[0]) in keep}
    if len(people) < len(given) or len(proxy) < judged:
        outside = len(given) - len(people) + judged - len(proxy)
        notes.append(f"{outside} rating(s) or verdict(s) name a row outside the test rows and are left out")
    rated, proxied = _tables(contenders, people, proxy, notes)
    pairs = []
    for i, a in enumerate(contenders):
        for b in contenders[i + 1 :]:
            y, yhat = rated.get((a, b), {}), proxied.get((a, b), {})
            if not y and not yhat:
                continue
            if set(y) - set(yhat) and yhat:
                notes.append(
                    f"{a} vs {b}: {len(set(y) - set(yhat))} rated row(s) have no proxy value and count in people's "
                    "own figure only"
                )
            got = _estimate(y, yhat, alpha, seed, proxy_name)
            pairs.append((got.pop("se"), PairJudged(a=a, b=b, difference=2 * got["estimate"] - 1, **got)))
    contender_figures, method = _contenders(contenders, pairs, alpha, seed, left_out)
    scores = _scores(contenders, scores_people, scores_proxy, keep, alpha, seed, proxy_name)
    every = [p for _, p in pairs] + scores
    calibrated = bool(every) and all(p.calibrated for p in every)
    sources = list(dict.fromkeys(p.source for p in every))
    return JudgedMeasures(
        proxy=proxy_name,
        source=sources[0] if len(sources) == 1 else (", ".join(sources) or "nothing rated or judged"),
        calibrated=calibrated,
        level=1 - alpha,
        pairs=[p for _, p in pairs],
        contenders=contender_figures,
        scores=scores,
        p_best_method=method,
        notes=notes,
    )


def _contenders(
    contenders: Sequence[str],
    pairs: list[tuple[float | None, PairJudged]],
    alpha: float,
    seed: int,
    left_out: Sequence[str] = (),
) -> tuple[list[ContenderJudged], str]:
    """Each contender's win rate with its conservative interval, and P(best) from normal draws of the pairs.

    The win rate is the mean of k pair estimates that share rows (and reviewers), so they are correlated; whatever
    the correlation, sd(mean) <= mean(sd) (Cauchy-Schwarz), so estimate +- z * mean(se) covers at least at the
    nominal rate (as far as each pair's normal approximation holds). A pair without an interval enters with the
    largest standard error a value in [0, 1] can have on its rated rows, 0.5 / sqrt(n). Pairs with a contender in
    `left_out` (the trivial reference) count in no win rate: each contender is averaged over the same opponents."""
    pairs = [(s, p) for s, p in pairs if p.a not in left_out and p.b not in left_out]
    se = {(p.a, p.b): s if s is not None else 0.5 / math.sqrt(max(p.n_rated, 1)) for s, p in pairs}
    figures = {(p.a, p.b): p for _, p in pairs}
    names = [c for c in contenders if any(c in k for k in figures)]
    method = (
        f"{P_BEST_DRAWS} draws of every pair's estimate from its normal approximation (independent across pairs), "
        "the highest win rate per draw; ties split"
    )
    if not names:
        return [], method
    rng = np.random.default_rng(seed)
    keys = list(figures)
    draws = np.clip(
        rng.normal([figures[k].estimate for k in keys], [se[k] for k in keys], size=(P_BEST_DRAWS, len(keys))), 0, 1
    )
    rates = np.zeros((P_BEST_DRAWS, len(names)))
    counts = np.zeros(len(names))
    for j, (a, b) in enumerate(keys):
        ia, ib = names.index(a), names.index(b)
        rates[:, ia] += draws[:, j]
        rates[:, ib] += 1 - draws[:, j]
        counts[[ia, ib]] += 1
    rates /= counts
    top = np.isclose(rates, rates.max(axis=1, keepdims=True), rtol=0, atol=1e-12)
    chance = (top / top.sum(axis=1, keepdims=True)).mean(axis=0)
    out = []
    for i, name in enumerate(names):
        mine = [(k, figures[k]) for k in keys if name in k]
        rate = float(np.mean([p.estimate if k[0] == name else 1 - p.estimate for k, p in mine]))
        spread = float(np.mean([se[k] for k, _ in mine]))
        sources = list(dict.fromkeys(p.source for _, p in mine))
        out.append(
            ContenderJudged(
                name=name,
                win_rate=rate,
                ci=_normal_ci(rate, spread, z=_z(alpha)),
                opponents=len(mine),
                p_best=float(chance[i]),
                source=", ".join(sources),
                calibrated=all(p.calibrated for _, p in mine),
            )
        )
    return out, method


def _scores(
    contenders: Sequence[str],
    scores_people: Iterable[tuple[int, str, float]] | None,
    scores_proxy: Mapping[tuple[int, str], float] | None,
    keep: set[int],
    alpha: float,
    seed: int,
    proxy_name: str,
) -> list[ScoreJudged]:
    """Each contender's mean 1-5 score by PPI (people's scores per row averaged over reviewers)."""
    rated: dict = defaultdict(lambda: defaultdict(list))
    for row, name, score in scores_people or []:
        if int(row) in keep and score is not None:
            rated[name][int(row)].append(float(score))
    proxied: dict = defaultdict(dict)
    for (row, name), score in (scores_proxy or {}).items():
        if int(row) in keep and score is not None:
            proxied[name][int(row)] = float(score)
    out = []
    for name in contenders:
        y = {r: float(np.mean(v)) for r, v in rated.get(name, {}).items()}
        yhat = proxied.get(name, {})
        if not y and not yhat:
            continue
        got = _estimate(y, yhat, alpha, seed, proxy_name, bounds=(1.0, 5.0))
        got.pop("se")
        got.pop("people_ci")
        out.append(ScoreJudged(name=name, **got))
    return out
