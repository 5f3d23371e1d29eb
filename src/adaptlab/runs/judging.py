"""`judge_run`: a judge model on a finished compare run's answers, after the fact; nothing is re-run but the judge.

    outcome = judge_run(run_dir)                      # the run's own `judge:`, else a ConfigError
    outcome = judge_run(run_dir, JudgeConfig(model="smollm2-135m-instruct", rows=40))

Which pairs of contenders are compared comes from `decide.judged.pairs_worth_comparing`
(every pair but those a trivial reference clearly loses); which rows, from `judge.rows` (a seeded
choice, the same on every re-run, so a new contender adds only its own pairs). Answers
that are the same after folding case and spacing are a tie without asking. The judge is
asked only what its cache lacks. RUN/judge.json gets the verdicts, the scores, the
judge's identity and the counts; then `runs.quality.conclude_judged` combines them with
people's ratings (RUN/ratings/) into results.json's `judged` (judged measures by
prediction-powered inference, the judge's agreement with people) and rewrites the report.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from adaptlab.config import JudgeConfig
from adaptlab.errors import ConfigError
from adaptlab.files import write_json
from adaptlab.judges.judge import Answer, Judge, Pair, folded
from adaptlab.judges.rubrics import rubric_for
from adaptlab.judges.verdicts import JudgeCounts, JudgeRecord
from adaptlab.results import CompareResults, Judged, PredictionRow, load_results
from adaptlab.runs.events import Events


@dataclass
class JudgeOutcome:
    """What `judge_run` did: the record it wrote (RUN/judge.json) and the judged figures it added to results.json (the
    verdicts calibrated by the run's ratings where there are any, and the judge's agreement with them)."""

    record: JudgeRecord
    path: Path
    judged: Judged | None = None

    def summary(self) -> str:
        """One line: how many verdicts, how many asked and cached, how many survived the swap."""
        c = self.record.counts
        asked_verdicts = c.verdicts - c.identical
        return (
            f"{c.verdicts} verdicts on {len(self.record.rows)} rows x {len(self.record.pairs)} pairs: "
            f"{c.asked} requests asked, {c.cached} cached, {c.identical} pairs of identical answers not asked; "
            f"{c.consistent} of {asked_verdicts} survived the swap of order, {c.unparsed} replies held no verdict"
        )


def run_judge_config(run_dir: Path) -> JudgeConfig | None:
    """The `judge:` a compare run recorded (its experiment.yaml), or None."""
    path = Path(run_dir) / "experiment.yaml"
    recorded = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    judge = (recorded or {}).get("judge")
    if judge is None:
        return None
    try:
        return JudgeConfig.model_validate(judge)
    except ValueError as exc:
        raise ConfigError(f"{path}: judge: {exc}; fix the recorded judge or pass --judge") from None


def judge_run(
    run_dir: Path, config: JudgeConfig | None = None, events: Events | None = None, judge: Judge | None = None
) -> JudgeOutcome:
    """Judge a finished compare run's answers (see the module's docstring); `config` replaces the run's own `judge:`,
    `judge` a ready Judge (tests pass one with a scripted endpoint)."""
    run_dir, events = Path(run_dir), events or Events()
    if not (run_dir / "results.json").is_file():
        raise ConfigError(f"{run_dir}: no results.json; pass a folder `adaptlab compare` finished")
    results = load_results(run_dir / "results.json")
    config = config or (judge.config if judge is not None else None) or run_judge_config(run_dir)
    if config is None:
        raise ConfigError(
            f"{run_dir}: its experiment has no `judge:`; pass one with --judge MODEL (a model name, folder or "
            "an endpoint's URL)"
        )
    judge = judge or Judge(config, rubric_for(config, results.task.kind), results.task.instruction)
    rows = chosen_rows(len(results.strategies[0].predictions), config.rows, results.seed)
    pairs = contender_pairs(results)
    by_name = {s.name: s.predictions for s in results.strategies}
    try:
        with events.bars():
            record = _judge(judge, results, rows, pairs, by_name, events)
    finally:
        judge.close()
    write_json(run_dir / "judge.json", record.model_dump(mode="json"))
    outcome = JudgeOutcome(record, run_dir / "judge.json")
    events.message(f"judge: {outcome.summary()}; wrote {outcome.path}")
    from adaptlab.runs.quality import conclude_judged

    outcome.judged = conclude_judged(run_dir, record)  # with the run's ratings, into results.json and the report
    events.message(f"judged measures: wrote {run_dir / 'results.json'} and {run_dir / 'report.html'}")
    return outcome


def _judge(judge: Judge, results: CompareResults, rows, pairs, by_name, events: Events) -> JudgeRecord:
    """Every pair on every chosen row (and every answer scored, pointwise), through the cache."""
    items = [_pair(row, a, b, by_name[a][row], by_name[b][row]) for row in rows for a, b in pairs]
    bar = events.bar("judging pairs (both orders)", 2 * sum(folded(p.answer_a) != folded(p.answer_b) for p in items))
    verdicts = judge.compare(items, bar.advance)
    scores = []
    if judge.config.pointwise:
        named = list(dict.fromkeys(n for pair in pairs for n in pair))
        answers = [_answer(row, n, by_name[n][row]) for row in rows for n in named]
        scores = judge.score(answers, events.bar("judging answers (1-5)", len(answers)).advance)
    counts = JudgeCounts(
        verdicts=len(verdicts),
        scores=len(scores),
        asked=judge.asked,
        cached=judge.cached,
        identical=sum(v.identical for v in verdicts),
        unparsed=judge.unparsed,
        too_long=judge.too_long,
        consistent=sum(v.consistent and not v.identical for v in verdicts),
        seconds=round(judge.seconds, 3),
    )
    return JudgeRecord(
        judge=judge.identity(),
        rows=rows,
        pairs=pairs,
        verdicts=verdicts,
        scores=scores,
        counts=counts,
        trust_threshold=judge.config.trust_threshold,
    )


def chosen_rows(n: int, limit: int | None, seed: int) -> list[int]:
    """The test rows to judge: all of them, or `limit` chosen with `seed` (the same choice every time), in order.

    >>> chosen_rows(5, None, 0), chosen_rows(100, 3, 0) == chosen_rows(100, 3, 0)
    ([0, 1, 2, 3, 4], True)
    """
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))


def contender_pairs(results: CompareResults) -> list[tuple[str, str]]:
    """The pairs of contenders worth a judge's time (decide.judged: every pair but those a trivial reference clearly
    loses)."""
    from adaptlab.decide.judged import pairs_worth_comparing

    return [(str(a), str(b)) for a, b in pairs_worth_comparing(results)]


def _passages(row: PredictionRow) -> list[str]:
    return [str(p.get("text", "")) for p in row.passages or [] if p.get("text")]


def _pair(row: int, a: str, b: str, left: PredictionRow, right: PredictionRow) -> Pair:
    """The pair of answers to one row; the passages both contenders were given go along (a qa judge checks against
    them)."""
    shared = [t for t in _passages(left) if t in set(_passages(right))]
    return Pair(
        row=row,
        a=a,
        b=b,
        input=left.input,
        answer_a=left.predicted,
        answer_b=right.predicted,
        reference=left.expected,
        passages="\n---\n".join(shared) or None,
    )


def _answer(row: int, contender: str, prediction: PredictionRow) -> Answer:
    return Answer(
        row=row,
        contender=contender,
        input=prediction.input,
        answer=prediction.predicted,
        reference=prediction.expected,
        passages="\n---\n".join(_passages(prediction)) or None,
    )


def judge_after_compare(run_dir: Path, config: JudgeConfig, events: Events) -> dict | None:
    """`compare`'s last step with a `judge:`: judge_run, then results.json as it now stands (with `judged`); its
    failure (an endpoint down) is a warning, not the run's: the measurements are saved and `adaptlab judge RUN`
    retries, asking only what was not cached."""
    from adaptlab.errors import AdaptlabError

    try:
        judge_run(run_dir, config, events)
        return json.loads((Path(run_dir) / "results.json").read_text(encoding="utf-8"))
    except AdaptlabError as exc:
        events.message(
            f"the judge failed ({exc}); the results are saved: retry with `adaptlab judge {run_dir}`", "warning"
        )
        return None
