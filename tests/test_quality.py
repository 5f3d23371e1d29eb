"""Judged quality of a run (issue 38, item 5): ratings and a judge's verdicts into results.json, the recommendation's
reasons, task.headline: judged, and the report's section (adaptlab.runs.quality, adaptlab.review, decide.judgement)."""

import json
from pathlib import Path

import pytest
import yaml

import adaptlab
from adaptlab.integrations.mlflow_summary import judged_tags
from adaptlab.judges.verdicts import JudgeCounts, JudgeRecord, Verdict
from adaptlab.results import load_results, write_results
from adaptlab.runs.quality import JUDGED_MARK, conclude_judged

ROWS = 40


def _contender(name: str, answers: list[str], chrf: float) -> dict:
    return {
        "name": name,
        "metrics": {"chrf": chrf},
        "ci": {"chrf": [chrf - 5, chrf + 5]},
        "latency_ms_mean": 1.0,
        "latency_ms_p95": 1.0,
        "prompt_tokens_mean": 0.0,
        "completion_tokens_mean": 0.0,
        "fit_seconds": 0.0,
        "peak_rss_mb": 0.0,
        "predictions": [
            {"input": f"Question {r}?", "expected": f"The balance is {r} dollars.", "predicted": a}
            for r, a in enumerate(answers)
        ],
        "traits": {"kind": name},
    }


def _run(tmp_path: Path, headline: str = "metric") -> Path:
    """copier echoes the reference (high chrF) but on every fourth row; helper answers in other words (low chrF);
    nearest, in between."""
    run = tmp_path / "run"
    run.mkdir()
    copier = [f"The balance is {r} dollars." if r % 4 else "Sorry, I cannot say." for r in range(ROWS)]
    helper = [f"You have ${r} in that account; anything else?" for r in range(ROWS)]
    nearest = [f"The balance is {r + 1} dollars." for r in range(ROWS)]
    write_results(
        run / "results.json",
        {
            "task": {"name": "bank", "instruction": "Help.", "kind": "generate", "metric": "chrf"},
            "base_model": "m",
            "data": {},
            "seed": 0,
            "environment": {},
            "strategies": [
                _contender("copier", copier, 90.0),
                _contender("nearest", nearest, 70.0),
                _contender("helper", helper, 30.0),
            ],
            "recommendation": {"choice": "copier", "reasons": ["copier scored the highest chrf"], "tolerance": 2.0},
            "cost_assumptions": {},
            "audit": {},
        },
    )
    (run / "experiment.yaml").write_text(yaml.safe_dump({"task": {"name": "bank", "headline": headline}}))
    return run


def _ratings(tmp_path: Path, rows=range(25)) -> Path:
    """People prefer helper over copier on every row they rated, and copier over nearest."""
    path = tmp_path / "ratings.jsonl"
    lines = [{"row": r, "a": "copier", "b": "helper", "preference": "b", "reviewer": "ann"} for r in rows]
    lines += [{"row": r, "a": "copier", "b": "nearest", "preference": "a", "reviewer": "ann"} for r in rows]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_no_ratings_and_no_judge_leave_the_run_as_it_was(tmp_path):
    run = _run(tmp_path)
    before = (run / "results.json").read_text()
    assert adaptlab.review(run) is None
    assert (run / "results.json").read_text() == before


def test_people_who_disagree_with_the_metric_are_heard_in_the_reasons_and_the_choice_stays(tmp_path):
    run = _run(tmp_path)
    judged = adaptlab.review(run, _ratings(tmp_path))
    assert judged is not None and not judged.measures.calibrated  # nobody rated nearest against helper
    rated = [p for p in judged.measures.pairs if "helper" in (p.a, p.b) and "copier" in (p.a, p.b)]
    assert rated[0].calibrated and rated[0].source == "people+chrF" and rated[0].n_rated == 25
    assert judged.ratings == 50 and judged.reviewers == ["ann"]
    results = load_results(run / "results.json")
    assert results.judged == judged and results.recommendation.choice == "copier"
    said = [r for r in results.recommendation.reasons if r.startswith(JUDGED_MARK)]
    assert len(said) == 1 and "people disagree with chrf" in said[0] and "helper preferred over copier" in said[0]
    assert "copier scored the highest chrf" in results.recommendation.reasons
    page = (run / "report.html").read_text()
    assert "Judged quality: people and a judge" in page and "preferred over &rarr;" in page
    again = conclude_judged(run)  # idempotent: the judged reasons are replaced, not added again
    assert again == judged and load_results(run / "results.json").recommendation == results.recommendation


def test_under_headline_judged_the_people_preferred_contender_is_chosen_and_the_metric_pick_is_kept(tmp_path):
    run = _run(tmp_path, headline="judged")
    adaptlab.review(run, _ratings(tmp_path))
    results = load_results(run / "results.json")
    rec = results.recommendation
    assert rec.choice == "helper" and rec.headline == "judged" and results.judged.metric_choice == "copier"
    assert any("by chrf alone the choice would be copier" in r for r in rec.reasons)
    conclude_judged(run)  # a second pass starts from the metric's pick, not its own
    assert load_results(run / "results.json").recommendation == rec


def test_too_few_ratings_to_separate_the_top_two_say_so_under_headline_judged(tmp_path):
    run = _run(tmp_path, headline="judged")
    adaptlab.review(run, _ratings(tmp_path, rows=range(3)))
    rec = load_results(run / "results.json").recommendation
    assert any("not separated from" in r and "more ratings would settle it" in r for r in rec.reasons)


def _judge_record(says: str, rows=range(ROWS)) -> JudgeRecord:
    """A scripted judge: "first" prefers whichever answer is shown first (every verdict flips with the order: a tie);
    "contrary" prefers copier, consistently, on three rows of four (the opposite of people), the other answer else."""
    verdicts = []
    for r in rows:
        for a, b in (("copier", "nearest"), ("copier", "helper"), ("nearest", "helper")):
            if says == "first":
                verdicts.append(
                    Verdict(row=r, a=a, b=b, preference="tie", first="a", second="b", consistent=False, longer="b")
                )
            else:
                side = "a" if (a == "copier") == bool(r % 4) else "b"
                verdicts.append(
                    Verdict(row=r, a=a, b=b, preference=side, first=side, second=side, consistent=True, longer="b")
                )
    counts = JudgeCounts(
        verdicts=len(verdicts), asked=2 * len(verdicts), cached=0, identical=0, unparsed=0, consistent=0, seconds=1.0
    )
    return JudgeRecord(
        judge={"model": "scripted", "rubric_sha256": "0" * 64, "template_sha256": "1" * 64},
        rows=list(rows),
        pairs=[("copier", "nearest"), ("copier", "helper"), ("nearest", "helper")],
        verdicts=verdicts,
        counts=counts,
        trust_threshold=0.4,
    )


@pytest.mark.parametrize("with_ratings", [False, True])
def test_a_judge_nobody_checked_or_one_people_disagree_with_decides_nothing(tmp_path, with_ratings):
    """Unchecked, the judge's figures are uncalibrated and decide nothing; checked and found wanting, they are shown
    apart, and people's ratings decide through the headline metric instead."""
    run = _run(tmp_path, headline="judged")
    if with_ratings:
        adaptlab.review(run, _ratings(tmp_path))
    judged = conclude_judged(run, _judge_record("contrary"))
    results = load_results(run / "results.json")
    assert results.judged is not None and results.judged.judge["model"] == "scripted"
    choice = ("helper", "judged") if with_ratings else ("copier", None)
    assert (results.recommendation.choice, results.recommendation.headline) == choice
    warnings = [w for w in results.recommendation.warnings if w.startswith(JUDGED_MARK)]
    tags = judged_tags(results)  # what MLflow's parent run is tagged with
    assert tags["judge_model"] == "scripted" and tags["judge_rubric_sha256"] == "0" * 64
    assert set(tags) >= {"judged_win_rate.copier", "judged_win_rate.helper", "judged_source"}
    if with_ratings:
        assert tags["judge_trusted"] == "false"
        assert judged.agreement is not None and not judged.agreement.trusted
        assert judged.judge_measures is not None and judged.judge_measures.proxy == "judge"
        assert judged.measures.proxy == "chrF" and "the judge is not trusted" in warnings[0]
        assert "The judge against people" in (run / "report.html").read_text()
    else:
        assert not judged.measures.calibrated and "uncalibrated" in warnings[0]


def test_a_judge_whose_verdicts_carry_nothing_leaves_the_decision_to_people(tmp_path):
    """Every verdict a tie (position bias): not trusted, so people's ratings decide, with chrF as the proxy."""
    run = _run(tmp_path, headline="judged")
    adaptlab.review(run, _ratings(tmp_path))
    judged = conclude_judged(run, _judge_record("first"))
    assert judged.agreement is not None and not judged.agreement.trusted
    rated = [p for p in judged.measures.pairs if p.calibrated]
    assert rated and all(p.source == "people+chrF" for p in rated)
    assert load_results(run / "results.json").recommendation.choice == "helper"
