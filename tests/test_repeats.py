"""Repeats (issue 17, item 1): a seed-dependent contender fitted several times, combined, and read by the
recommendation."""

import json

import numpy as np

from adaptlab.decide import recommend
from adaptlab.evaluation import Evaluation
from adaptlab.evaluation.repeats import combine, two_level_ci
from adaptlab.metrics import bootstrap_ci


def evaluation(name, scores, fit=0.0):
    scores = [float(s) for s in scores]
    return Evaluation(
        name,
        {"accuracy": float(np.mean(scores))},
        {"accuracy": bootstrap_ci(np.array(scores))},
        100,
        100,
        50,
        3,
        fit,
        1000,
        scores,
        [],
        8,
        0.2,
    )


def test_repeats_average_per_row_and_the_interval_counts_the_seed():
    rows = 40
    lucky, unlucky = [1.0] * 34 + [0.0] * 6, [1.0] * 26 + [0.0] * 14  # 0.85 and 0.65: the same contender, two seeds
    one = combine([evaluation("lora", lucky)], "accuracy", [0])
    assert one.repeats is None and one.scores == lucky
    both = combine([evaluation("lora", lucky, fit=100), evaluation("lora", unlucky, fit=120)], "accuracy", [0, 1])
    assert both.repeats == [0.85, 0.65] and both.repeat_seeds == [0, 1] and both.metrics["accuracy"] == 0.75
    assert both.scores[0] == 1.0 and both.scores[30] == 0.5 and len(both.scores) == rows and both.fit_seconds == 110
    lo, hi = both.ci["accuracy"]
    pooled = bootstrap_ci(np.array(both.scores))  # rows only, on the averaged scores
    assert lo < 0.75 < hi and (hi - lo) > (pooled[1] - pooled[0])  # the seed widens it


def test_two_level_interval_of_identical_repeats_is_the_rows_interval():
    scores = np.array([1.0] * 30 + [0.0] * 10)
    lo, hi = two_level_ci(np.vstack([scores, scores, scores]))
    assert 0.6 < lo < 0.75 < hi < 0.9


def test_the_recommendation_quotes_the_spread_and_calls_a_gap_inside_it_a_seed_effect():
    few = evaluation("few_shot", [1.0] * 31 + [0.0] * 9)
    lora = combine(
        [evaluation("lora", [1.0] * 34 + [0.0] * 6, fit=100), evaluation("lora", [1.0] * 28 + [0.0] * 12, fit=100)],
        "accuracy",
        [0, 1],
    )
    decision = recommend([few, lora], "accuracy", 8)
    assert any(
        "lora's 2 repeats (seeds 0-1) scored 0.850, 0.700 accuracy: a spread of 0.150" in r for r in decision.reasons
    )
    assert any("is within the spread of lora's repeats (0.150): it may be a seed effect" in r for r in decision.reasons)
    once = recommend([few, evaluation("lora", [1.0] * 34 + [0.0] * 6, fit=100)], "accuracy", 8)
    assert any(r.startswith("lora was trained once (repeats: 1)") for r in once.reasons)
    assert not any("trained once" in r for r in decision.reasons)


def test_compare_repeats_only_the_contenders_whose_seed_matters(card_experiment, tmp_path):
    from typer.testing import CliRunner

    from adaptlab.cli import app

    text = card_experiment.read_text(encoding="utf-8").replace(
        "strategies:\n", "repeats: 2\nbaselines: false\nstrategies:\n"
    )
    card_experiment.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["compare", str(card_experiment), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    by_name = {s["name"]: s for s in results["strategies"]}
    assert by_name["zero_shot"]["repeats"] is None  # nothing to draw: one run
    assert len(by_name["few_shot"]["repeats"]) == 2 and len(by_name["lora"]["repeats"]) == 2  # random shots; training
    assert by_name["lora"]["repeat_seeds"] == [0, 1] and results["repeats"] == 2
    assert "repeats" in result.stdout and "repeats (seeds 0-1)" in " ".join(results["recommendation"]["reasons"])
