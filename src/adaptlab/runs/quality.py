"""Judged quality of a finished run: people's ratings (RUN/ratings/, `adaptlab review`) and a judge's verdicts
(RUN/judge.json, `adaptlab judge`) combined into results.json's `judged`, the recommendation's reasons brought up to
date, and report.html written again.

    judged = conclude_judged(run_dir)   # after `adaptlab judge RUN`, `adaptlab review RUN --import F`, or a compare

With a judge, its verdicts are the proxy people's ratings correct (prediction-powered inference, decide.judged);
without one, the headline metric's per-row scores are (a chrF gap of 10 reads as a clear preference). With no
ratings the figures are the proxy's own, marked uncalibrated, and nothing rests on them (decide.judgement).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from adaptlab.decide.agreement import Agreement, agreement
from adaptlab.decide.judged import (
    JudgedMeasures,
    judged_measures,
    pairs_worth_comparing,
    proxy_from_scores,
    trivial_reference,
)
from adaptlab.decide.judgement import HEADLINE, judgement
from adaptlab.judges.verdicts import JudgeRecord
from adaptlab.results import CompareResults, Judged, load_results, write_results
from adaptlab.reviews.ratings import PREFERENCE_VALUE, Rating, load_ratings
from adaptlab.tasks import task_kind

JUDGED_MARK = "judged: "  # the recommendation's reasons and warnings this step adds begin with it


def conclude_judged(run_dir: Path, record: JudgeRecord | None = None) -> Judged | None:
    """Combine the run's ratings and judge verdicts into results.json (and report.html); None when there is neither
    (nothing to write). `record`: the judge.json just written (else read from the folder)."""
    run_dir = Path(run_dir)
    results = load_results(run_dir / "results.json")
    if record is None and (run_dir / "judge.json").is_file():
        record = JudgeRecord.model_validate_json((run_dir / "judge.json").read_text(encoding="utf-8"))
    ratings = load_ratings(run_dir)
    if record is None and not ratings:
        return None
    judged = judged_of(results, record, ratings, headline=recorded_headline(run_dir) == HEADLINE)
    results = with_judgement(results, judged)
    write_results(run_dir / "results.json", results)
    from adaptlab.report import write_report

    write_report(run_dir)
    return results.judged


def recorded_headline(run_dir: Path) -> str:
    """task.headline as the run's experiment.yaml recorded it ("metric" when it did not)."""
    path = Path(run_dir) / "experiment.yaml"
    recorded = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    return str(((recorded or {}).get("task") or {}).get("headline") or "metric")


def judged_of(
    results: CompareResults, record: JudgeRecord | None, ratings: list[Rating], headline: bool = False
) -> Judged:
    """The judged figures of one run: the judge's verdicts (or the headline metric) as the proxy, people's ratings
    correcting it, and the judge's agreement with them.

    What is estimated: among the rows where two contenders' answers differ (the review plan never shows identical
    ones, so people's ratings cannot correct the proxy there), how often people prefer one. Pairs with the trivial
    reference are estimated but count in no win rate: every win rate is then an average over the same opponents.
    A judge that is not trusted keeps its own figures in `judge_measures`; `measures` then use the headline metric as
    the proxy, so people's ratings still speak."""
    trivial = trivial_reference(results)
    names = [s.name for s in results.strategies]
    left_out = (trivial,) if trivial else ()
    same = _identical(results)
    rated = [r for r in ratings if (r.row, *sorted((r.a, r.b))) not in same]
    people = [(r.row, r.a, r.b, PREFERENCE_VALUE[r.preference]) for r in rated]
    people_scores = [(r.row, n, s) for r in rated for n, s in ((r.a, r.score_a), (r.b, r.score_b)) if s is not None]
    rows = list(range(len(results.strategies[0].predictions)))
    found: Agreement | None = None
    shown: JudgedMeasures | None = None
    if record is not None:
        proxy = {(v.row, v.a, v.b): PREFERENCE_VALUE[v.preference] for v in record.verdicts if not v.identical}
        judge_scores = {(s.row, s.contender): float(s.score) for s in record.scores if s.score is not None}
        measures = judged_measures(
            names,
            rows,
            people,
            proxy,
            "judge",
            people_scores or None,
            judge_scores or None,
            seed=results.seed,
            left_out=left_out,
        )
        found = agreement(
            ratings,
            [v if not v.identical else _unasked(v) for v in record.verdicts],
            lengths=_lengths(results),
            judge_scores=judge_scores or None,
            threshold=record.trust_threshold,
            seed=results.seed,
        )
        if not found.trusted and ratings:  # shown, not used: people's ratings speak through the metric instead
            shown, measures = measures, metric_measures(results, people, names, same, left_out)
    else:
        measures = metric_measures(results, people, names, same, left_out)
    return Judged(
        judge=record.judge if record is not None else None,
        ratings=len(ratings),
        reviewers=sorted({r.reviewer for r in ratings}),
        measures=measures,
        judge_measures=shown,
        agreement=found,
        headline=headline,
    )


def _identical(results: CompareResults) -> set[tuple[int, str, str]]:
    """(row, a, b), a before b by name, wherever two contenders' answers are the same after folding case and
    spacing."""
    from adaptlab.judges.judge import folded

    answers = {s.name: [folded(p.predicted) for p in s.predictions] for s in results.strategies}
    names = sorted(answers)
    return {
        (r, a, b)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        for r, (x, y) in enumerate(zip(answers[a], answers[b], strict=False))
        if x == y
    }


def _unasked(verdict):
    """A pair of identical answers was never asked: it says nothing of position bias (consistent None), while its tie
    still counts against people's rating."""
    from types import SimpleNamespace

    return SimpleNamespace(**(verdict.model_dump() | {"consistent": None}))


def _lengths(results: CompareResults) -> dict[tuple[int, str], int]:
    return {(i, s.name): len(p.predicted) for s in results.strategies for i, p in enumerate(s.predictions)}


def metric_measures(
    results: CompareResults,
    people: list[tuple[int, str, str, float]],
    names: list[str],
    same: set[tuple[int, str, str]],
    left_out: tuple[str, ...] = (),
) -> JudgedMeasures:
    """Judged measures of `names` with the headline metric's per-row scores as the proxy (no judge, or one not
    trusted); rows in `same` (identical answers) are left out."""
    kind = task_kind(results.task.kind)
    spec = kind.metric(results.task.metric)
    per_row = {n: _row_scores(results, n) for n in names}
    proxy: dict[tuple[int, str, str], float] = {}
    rows = list(range(len(results.strategies[0].predictions)))
    sign = 1.0 if spec.higher_is_better else -1.0
    for a, b in pairs_worth_comparing(results):
        score_a, score_b = per_row.get(a), per_row.get(b)
        if score_a is None or score_b is None:
            continue
        values = proxy_from_scores(list(sign * score_a), list(sign * score_b), scale=spec.scale)
        proxy |= {(r, a, b): v for r, v in zip(rows, values, strict=True) if (r, *sorted((a, b))) not in same}
    return judged_measures(names, rows, people, proxy, spec.label, seed=results.seed, left_out=left_out)


def _row_scores(results: CompareResults, name: str) -> np.ndarray | None:
    """A contender's per-row headline scores (the task kind's row scorer), None where the kind needs more than the
    answers (qa's passages)."""
    kind = task_kind(results.task.kind)
    predictions = results.contender(name).predictions
    try:
        rows = kind.rows(
            [p.expected for p in predictions], [p.predicted for p in predictions], results.task.labels, None
        )
    except (TypeError, KeyError, AttributeError):
        return None
    return np.asarray(rows.get(kind.row_key), dtype=float) if kind.row_key in rows else None


def with_judgement(results: CompareResults, judged: Judged) -> CompareResults:
    """results with `judged` set and the recommendation's judged reasons replaced; under task.headline: judged, when
    the judged figures may decide, the choice is theirs and the metric's own pick is kept in `judged.metric_choice`
    (so running this again starts from the metric's pick, not from its own)."""
    metric = results.task.metric
    sign = 1.0 if task_kind(results.task.kind).metric(metric).higher_is_better else -1.0
    order = sorted(results.strategies, key=lambda s: -sign * s.metrics.get(metric, float("-inf")))
    candidates = [s.name for s in results.strategies if not s.flags]
    rec = results.recommendation
    earlier = results.judged.metric_choice if results.judged is not None else None
    metric_choice = earlier if rec.headline == HEADLINE and earlier else rec.choice
    said = judgement(
        metric_choice, [s.name for s in order], candidates, judged.measures, judged.agreement, judged.headline, metric
    )
    reasons = [JUDGED_MARK + r for r in said.reasons]
    if said.choice is not None and said.choice != metric_choice:
        reasons.append(f"{JUDGED_MARK}by {metric} alone the choice would be {metric_choice}, for the reasons below")
    reasons += [r for r in rec.reasons if not r.startswith(JUDGED_MARK)]
    warnings = [w for w in rec.warnings if not w.startswith(JUDGED_MARK)] + [JUDGED_MARK + w for w in said.warnings]
    update: dict = {"reasons": reasons, "warnings": warnings, "choice": metric_choice, "headline": None}
    if said.choice is not None:
        update |= {"choice": said.choice, "headline": HEADLINE}
    judged = judged.model_copy(update={"metric_choice": metric_choice})
    return results.model_copy(update={"judged": judged, "recommendation": rec.model_copy(update=update)})
