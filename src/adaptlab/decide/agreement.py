"""How far a judge agrees with people: on the (row, a, b) both rated, raw agreement and Cohen's kappa over the verdicts
a, b and tie; for 1-5 scores a quadratic weighted kappa and Kendall's tau; how often its verdicts survive swapping the
order of the two answers; how often the longer answer wins by the judge against by people; and, where two reviewers
rated the same pair, their own kappa (the most a judge can be expected to reach). A judge is trusted when the lower
bound of its kappa's 95% interval reaches a threshold (0.4 by default: "moderate" agreement on the usual reading of
kappa).

Every interval resamples the rated (row, a, b) with replacement (seeded), all ratings of one kept together, so that
several reviewers on one row do not count as independent evidence.

    >>> from types import SimpleNamespace as R
    >>> people = [R(row=i, a="x", b="y", preference="ab"[i % 2]) for i in range(12)]
    >>> judge = [R(row=i, a="y", b="x", preference="ba"[i % 2]) for i in range(12)]  # the same verdicts, swapped
    >>> found = agreement(people, judge)
    >>> found.raw.value, found.kappa.value, found.trusted
    (1.0, 1.0, True)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any, Protocol

import numpy as np

from adaptlab.results import Agreement, Disagreement, Figure

VERDICTS = ("a", "tie", "b")  # kappa's categories, in order; "both_bad" counts as "tie"
MIN_COMMON = 10  # fewer (row, a, b) rated by both: no verdict on trust
RESAMPLES = 2000


class Rated(Protocol):
    """A verdict on one row's pair: people's rating (review.ratings.Rating) or the judge's (judge.verdicts.Verdict)."""

    @property
    def row(self) -> int: ...
    @property
    def a(self) -> str: ...
    @property
    def b(self) -> str: ...
    @property
    def preference(self) -> str: ...


class Judged(Rated, Protocol):
    """The judge's verdict: `first` with a shown first, `second` with b shown first (both from a's side);
    `consistent`: they agree (a verdict that flips counts as a tie)."""

    @property
    def consistent(self) -> bool: ...


def _key(r: Any) -> tuple[tuple[int, str, str], int]:
    """(row, first name, second name) sorted, and the verdict's index in VERDICTS from the first name's side."""
    pref = "tie" if r.preference in ("tie", "both_bad") else r.preference
    if pref not in VERDICTS:
        raise ValueError(f"row {r.row}: preference must be a, b, tie or both_bad, got {r.preference!r}")
    if r.a <= r.b:
        return (int(r.row), r.a, r.b), VERDICTS.index(pref)
    return (int(r.row), r.b, r.a), VERDICTS.index({"a": "b", "b": "a"}.get(pref, pref))


def _kappa(conf: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each confusion matrix in `conf` (..., k, k): 1 - sum(w * observed) / sum(w * chance), w the
    disagreement weights (1 - identity: Cohen's; (i - j)^2: quadratic). nan where chance disagreement is 0."""
    total = conf.sum(axis=(-2, -1), keepdims=True)
    observed = conf / np.where(total == 0, 1, total)
    chance = observed.sum(axis=-1, keepdims=True) * observed.sum(axis=-2, keepdims=True)
    expected = (weights * chance).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, 1 - (weights * observed).sum(axis=(-2, -1)) / expected, np.nan)


def _measure(units: np.ndarray, codes: np.ndarray, k: int, weights: np.ndarray | None, seed: int, what: str) -> Figure:
    """Kappa (weights given) or raw agreement (None) of the pairs `codes` (first * k + second), with a 95% interval
    resampling `units` (each pair's cluster: its (row, a, b)).

    Raw agreement and Cohen's kappa take the wider of that interval and Wilson's for the share that agrees (per
    unit, at the effective sample size: adaptlab.metrics.wilson), turned into kappa at the observed chance
    agreement pe as (share - pe) / (1 - pe): where every rating agrees, the bootstrap has no width at all (12 of
    12 would give kappa's lower bound 1.0); Wilson's gives 0.76, kappa 0.64 at pe = 1/3."""
    from adaptlab.metrics import wilson

    n_units = int(units.max()) + 1 if len(units) else 0
    if not n_units:
        return Figure(value=None, ci=None, n=0, note=f"no {what} to compare")
    onehot = np.zeros((len(codes), k * k))
    onehot[np.arange(len(codes)), codes] = 1
    rng = np.random.default_rng(seed)
    drawn = np.stack([np.bincount(d, minlength=n_units) for d in rng.integers(0, n_units, (RESAMPLES, n_units))])
    confs = np.vstack([onehot.sum(axis=0, keepdims=True), drawn[:, units] @ onehot]).reshape(-1, k, k)
    values = np.trace(confs, axis1=1, axis2=2) / confs.sum(axis=(1, 2)) if weights is None else _kappa(confs, weights)
    point, spread = values[0], values[1:][np.isfinite(values[1:])]
    if not np.isfinite(point):
        note = "people and the judge gave one and the same verdict on every rated pair: kappa is undefined"
        return Figure(value=None, ci=None, n=len(codes), note=note)
    if not len(spread):
        return Figure(value=float(point), ci=None, n=len(codes))
    low, high = float(np.percentile(spread, 2.5)), float(np.percentile(spread, 97.5))
    if weights is None or np.array_equal(weights, 1 - np.eye(k)):
        agrees = np.bincount(units, weights=(codes // k == codes % k).astype(float)) / np.bincount(units)
        w_low, w_high = wilson(agrees)
        observed = confs[0] / confs[0].sum()
        chance = 0.0 if weights is None else float(observed.sum(axis=1) @ observed.sum(axis=0))
        low, high = min(low, (w_low - chance) / (1 - chance)), max(high, (w_high - chance) / (1 - chance))
    return Figure(value=float(point), ci=[low, high], n=len(codes))


def _share(hits: Sequence[bool]) -> Figure | None:
    """A share with Wilson's 95% interval (adaptlab.metrics.wilson); None with nothing to count."""
    from adaptlab.metrics import wilson

    if not hits:
        return None
    values = np.asarray(hits, dtype=float)
    return Figure(value=float(values.mean()), ci=list(wilson(values)), n=len(values))


def _scores(source: Any) -> dict[tuple[int, str], list[float]]:
    """{(row, contender): [scores]} from a mapping {(row, contender): score} or objects with row, contender, score."""
    out: dict[tuple[int, str], list[float]] = defaultdict(list)
    items = source.items() if isinstance(source, Mapping) else (((s.row, s.contender), s.score) for s in source)
    for (row, name), score in items:
        if score is not None:
            out[(int(row), name)].append(float(score))
    return out


def _people_scores(people: Sequence[Any], people_scores: Any) -> dict[tuple[int, str], list[float]]:
    """People's 1-5 scores: `people_scores` when given, else the ratings' own score_a and score_b."""
    if people_scores is not None:
        return _scores(people_scores)
    out: dict[tuple[int, str], list[float]] = defaultdict(list)
    for r in people:
        for name, score in ((r.a, getattr(r, "score_a", None)), (r.b, getattr(r, "score_b", None))):
            if score is not None:
                out[(int(r.row), name)].append(float(score))
    return out


def _score_measures(
    people: Sequence[Any], people_scores: Any, judge_scores: Any, seed: int
) -> tuple[Figure | None, Figure | None]:
    """(quadratic weighted kappa, Kendall's tau) of people's 1-5 scores against the judge's, or (None, None)."""
    if judge_scores is None:
        return None, None
    mine, theirs = _people_scores(people, people_scores), _scores(judge_scores)
    common = sorted(set(mine) & set(theirs))
    if not common:
        return None, None
    units, codes = [], []
    for u, key in enumerate(common):
        judged = int(round(theirs[key][-1])) - 1
        for score in mine[key]:
            units.append(u)
            codes.append((int(round(score)) - 1) * 5 + judged)
    quadratic = np.subtract.outer(np.arange(5), np.arange(5)) ** 2 / 16
    weighted = _measure(np.array(units), np.array(codes), 5, quadratic, seed, "scores")
    return weighted, _kendall([float(np.mean(mine[k])) for k in common], [theirs[k][-1] for k in common], seed)


def _kendall(x: list[float], y: list[float], seed: int) -> Figure | None:
    """Kendall's tau-b (scipy) with a 95% bootstrap interval (1,000 resamples; a resample without spread is skipped)."""
    from scipy.stats import kendalltau

    if len(x) < 3:
        return Figure(value=None, ci=None, n=len(x), note="fewer than 3 scored answers in common")
    a, b = np.asarray(x), np.asarray(y)
    tau = float(kendalltau(a, b).statistic)
    rng, draws = np.random.default_rng(seed), []
    for idx in rng.integers(0, len(a), (1000, len(a))):
        got = kendalltau(a[idx], b[idx]).statistic
        if np.isfinite(got):
            draws.append(got)
    if not np.isfinite(tau):
        return Figure(value=None, ci=None, n=len(a), note="one side gave every answer the same score")
    ci = [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))] if draws else None
    return Figure(value=tau, ci=ci, n=len(a))


def _length_bias(
    people: Sequence[Any], judge: Sequence[Any], lengths: Mapping[tuple[int, str], int] | None
) -> tuple[Figure | None, Figure | None]:
    """How often the longer answer wins, by the judge and by people, over verdicts for a or b where the lengths
    differ; the lengths come from `lengths` {(row, contender): characters}, else from the judge's `longer`."""
    longer_by_judge = {}
    for v in judge:
        side = getattr(v, "longer", None)
        if side in ("a", "b"):
            longer_by_judge[_key(v)[0]] = v.a if side == "a" else v.b

    def longer(r: Any) -> str | None:
        if lengths is not None:
            la, lb = lengths.get((int(r.row), r.a)), lengths.get((int(r.row), r.b))
            return None if la is None or lb is None or la == lb else (r.a if la > lb else r.b)
        return longer_by_judge.get(_key(r)[0])

    def wins(ratings: Sequence[Any]) -> list[bool]:
        out = []
        for r in ratings:
            side = longer(r)
            if r.preference in ("a", "b") and side is not None:
                out.append((r.a if r.preference == "a" else r.b) == side)
        return out

    return _share(wins(judge)), _share(wins(people))


def _reviewers(people: Sequence[Any], seed: int) -> Figure | None:
    """Cohen's kappa between reviewers: every two reviewers (by name) on the same (row, a, b)."""
    by_key: dict[tuple, dict[str, int]] = defaultdict(dict)
    for r in people:
        key, verdict = _key(r)
        by_key[key][getattr(r, "reviewer", "anonymous")] = verdict  # the latest rating of a reviewer wins
    units, codes = [], []
    for u, verdicts in enumerate(v for v in by_key.values() if len(v) > 1):
        for first, second in combinations(sorted(verdicts), 2):
            units.append(u)
            codes.append(verdicts[first] * 3 + verdicts[second])
    if not units:
        return None
    return _measure(np.array(units), np.array(codes), 3, 1 - np.eye(3), seed, "reviewer pairs")


def agreement(
    people: Sequence[Rated],
    judge: Sequence[Judged],
    lengths: Mapping[tuple[int, str], int] | None = None,
    people_scores: Any = None,
    judge_scores: Any = None,
    threshold: float = 0.4,
    seed: int = 0,
) -> Agreement:
    """The judge's verdicts `judge` against people's ratings `people` (objects with row, a, b, preference; people's
    may carry reviewer, score_a, score_b; the judge's first, second, consistent, longer). `lengths` {(row,
    contender): characters} measure length bias (default: the judge verdicts' `longer`); `people_scores` and
    `judge_scores` ({(row, contender): 1-5}, or objects with row, contender, score) give the weighted kappa and
    Kendall's tau (people's default: their ratings' score_a and score_b)."""
    verdict_of = dict(_key(v) for v in judge)  # the latest verdict on a (row, a, b) wins
    latest = {(getattr(r, "reviewer", "anonymous"), _key(r)[0]): r for r in people}
    unit_of: dict[tuple, int] = {}
    units, codes, disagreements = [], [], []
    for (reviewer, key), r in latest.items():
        if key not in verdict_of:
            continue
        mine = _key(r)[1]
        units.append(unit_of.setdefault(key, len(unit_of)))
        codes.append(mine * 3 + verdict_of[key])
        if mine != verdict_of[key]:
            row, a, b = key
            disagreements.append(
                Disagreement(
                    row=row, a=a, b=b, people=VERDICTS[mine], judge=VERDICTS[verdict_of[key]], reviewer=reviewer
                )
            )
    u, c = np.array(units, dtype=int), np.array(codes, dtype=int)
    raw = _measure(u, c, 3, None, seed, "ratings")
    kappa = _measure(u, c, 3, 1 - np.eye(3), seed, "ratings")
    weighted, tau = _score_measures(list(latest.values()), people_scores, judge_scores, seed)
    judged_both = [c for c in (_consistent(v) for v in judge) if c is not None]
    by_judge, by_people = _length_bias(list(latest.values()), judge, lengths)
    reviewers = _reviewers(list(latest.values()), seed)
    trusted = len(unit_of) >= MIN_COMMON and kappa.ci is not None and kappa.ci[0] >= threshold
    to_trust = _ratings_to_trust(kappa, len(unit_of), threshold) if not trusted else None
    found = Agreement(
        common=len(unit_of),
        compared=len(codes),
        raw=raw,
        kappa=kappa,
        weighted_kappa=weighted,
        kendall_tau=tau,
        position_consistency=_share(judged_both),
        longer_wins_judge=by_judge,
        longer_wins_people=by_people,
        reviewers_kappa=reviewers,
        threshold=threshold,
        trusted=trusted,
        ratings_to_trust=to_trust,
        reasons=[],
        disagreements=sorted(disagreements, key=lambda d: (d.row, d.a, d.b, d.reviewer)),
    )
    found.reasons = reasons(found)
    return found


def _consistent(v: Any) -> bool | None:
    """Whether a judge verdict survived the swap: its `consistent` (None: never asked both ways, say for two identical
    answers; it does not count), else first == second where an object has no `consistent` but both of those."""
    if hasattr(v, "consistent"):
        return None if v.consistent is None else bool(v.consistent)
    first, second = getattr(v, "first", None), getattr(v, "second", None)
    return None if first is None or second is None else first == second


def _ratings_to_trust(kappa: Figure, common: int, threshold: float) -> int | None:
    """Rated pairs at which kappa's lower bound would reach `threshold` if kappa held: the interval narrows as
    1/sqrt(n), so n * ((kappa - low) / (kappa - threshold))^2 (at least MIN_COMMON)."""
    if kappa.value is None or kappa.ci is None or kappa.value <= threshold:
        return None
    return max(MIN_COMMON, math.ceil(common * ((kappa.value - kappa.ci[0]) / (kappa.value - threshold)) ** 2))


def _fig(f: Figure | None, percent: bool = False) -> str:
    """A figure in words: 0.62 (95% interval 0.45 to 0.77), or as a share 78% (95% interval 67% to 87%)."""
    if f is None or f.value is None:
        return "undefined"
    show = (lambda x: f"{x:.0%}") if percent else (lambda x: f"{x:.2f}")
    return show(f.value) + (f" (95% interval {show(f.ci[0])} to {show(f.ci[1])})" if f.ci else "")


def reasons(found: Agreement) -> list[str]:
    """Why the judge is trusted or not, with the figures, in words a team lead reads."""
    out = []
    if found.common < MIN_COMMON:
        more = MIN_COMMON - found.common
        out.append(
            f"not trusted: people rated only {found.common} of the pairs the judge judged; at least {MIN_COMMON} are "
            f"needed to say anything ({more} more), and usually 50 or more to trust a judge"
        )
    elif found.trusted:
        out.append(
            f"trusted: the judge agrees with people beyond chance, kappa {_fig(found.kappa)}, on {found.common} rated "
            f"pairs; its lower bound reaches the {found.threshold:.2f} threshold"
        )
    elif found.kappa.value is None:
        out.append(
            f"not trusted: {found.kappa.note}, so agreement beyond chance cannot be measured; rate pairs whose "
            "answers differ more"
        )
    elif found.ratings_to_trust is not None:
        out.append(
            f"not trusted yet: kappa {_fig(found.kappa)} on {found.common} rated pairs; its lower bound is under the "
            f"{found.threshold:.2f} threshold. If kappa held, about {found.ratings_to_trust} rated pairs would "
            "settle it"
        )
    else:
        out.append(
            f"not trusted: kappa {_fig(found.kappa)} on {found.common} rated pairs is at or under the "
            f"{found.threshold:.2f} threshold: more ratings will not make this judge trusted; try another judge or "
            "rubric"
        )
    if found.raw.value is not None:
        out.append(f"the judge gave the same verdict as people on {_fig(found.raw, True)} of {found.compared} ratings")
    if found.reviewers_kappa is not None and found.reviewers_kappa.value is not None:
        out.append(
            f"reviewers agree with each other at kappa {_fig(found.reviewers_kappa)} ({found.reviewers_kappa.n} "
            "double-rated pairs): the most a judge can be expected to reach"
        )
    if found.position_consistency is not None and found.position_consistency.value is not None:
        out.append(
            f"{_fig(found.position_consistency, True)} of the judge's verdicts stay the same when the answers swap "
            "places; the others count as ties"
        )
    judge_bias, people_bias = found.longer_wins_judge, found.longer_wins_people
    if judge_bias is not None and people_bias is not None and judge_bias.value is not None:
        out.append(
            f"the longer answer wins {_fig(judge_bias, True)} of the judge's decided verdicts against "
            f"{_fig(people_bias, True)} of people's"
        )
    return out
