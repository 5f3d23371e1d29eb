"""Metrics and the recommendation, on hand-built numbers: no model involved."""

import numpy as np
import pytest

from adaptlab.decide import paired_difference, recommend
from adaptlab.evaluation import Evaluation
from adaptlab.evaluation.metrics import bootstrap_ci, chrf, macro_f1, task_metrics


def test_chrf_bounds_and_order():
    assert chrf("the cat sat", "the cat sat") == pytest.approx(100.0)
    assert chrf("xyz", "abc") == 0.0
    assert chrf("the cat sat", "the cat sat on the mat") > chrf("a dog", "the cat sat on the mat")


def test_macro_f1_by_hand():
    # label a: tp=1 fp=1 fn=0 -> 2/3; label b: tp=0 fp=0 fn=1 -> 0
    assert macro_f1(["a", "b"], ["a", "a"], ["a", "b"]) == pytest.approx(1 / 3)
    assert task_metrics("classify", ["a", "b"], ["a", "a"], ["a", "b"])["accuracy"] == 0.5


def test_bootstrap_interval_brackets_the_mean():
    scores = np.array([1.0] * 30 + [0.0] * 10)
    lo, hi = bootstrap_ci(scores)
    assert lo < 0.75 < hi and hi - lo < 0.35


def evaluation(name, correct, n=40, fit=0.0, latency=100.0, labels=8, top=0.2):
    scores = [1.0] * correct + [0.0] * (n - correct)
    return Evaluation(name, {"accuracy": correct / n}, {"accuracy": bootstrap_ci(np.array(scores))}, latency, latency, 50, 3, fit, 1000, scores, [], labels, top)


def test_cheaper_strategy_wins_when_the_difference_is_not_significant():
    decision = recommend([evaluation("few_shot", 30, latency=700), evaluation("lora", 31, fit=120, latency=90)], "accuracy", 8)
    assert decision.choice == "few_shot"
    assert "not significantly worse" in decision.reasons[1] and "no training" in decision.reasons[1]


def test_significantly_better_strategy_wins_and_reasons_cite_figures():
    decision = recommend([evaluation("zero_shot", 10, latency=80), evaluation("lora", 36, fit=120, latency=90)], "accuracy", 8)
    assert decision.choice == "lora"
    assert "0.900" in decision.reasons[0] and "beats the cheaper zero_shot by +0.650" in decision.reasons[1]
    assert "120 s to train" in decision.reasons[-1]


def test_collapse_is_warned():
    decision = recommend([evaluation("zero_shot", 10, labels=2, top=0.7)], "accuracy", 8)
    assert any("only 2 of 8 labels" in w for w in decision.warnings)
    assert any("70%" in w for w in decision.warnings)


def test_paired_difference_is_zero_for_identical_scores():
    mean, lo, hi = paired_difference([1, 0, 1, 1], [1, 0, 1, 1])
    assert mean == lo == hi == 0.0
