"""The statistics behind the recommendation (issue 17, items 2-4), on hand-built scores: no model involved.

Library parity: chrF (sacrebleu) and F1 (scikit-learn) against the figures adaptlab's own implementations gave;
BCa intervals (scipy); exact McNemar and paired permutation tests; Holm; power; P(best); the inconclusive wording.
"""

import math

import numpy as np
import pytest

from adaptlab.decide import recommend
from adaptlab.decide.statistics import (
    MCNEMAR,
    PERMUTATION,
    Z_POWER,
    holm,
    p_best,
    paired_test,
    pairwise,
    power,
    power_summary,
)
from adaptlab.evaluation import Evaluation
from adaptlab.metrics import bootstrap_ci, chrf, label_f1, label_ids, macro_f1, per_label, task_metrics


def evaluation(name, scores, latency=100.0, fit=0.0, metric="accuracy"):
    scores = [float(s) for s in scores]
    return Evaluation(
        name,
        {metric: float(np.mean(scores))},
        {metric: bootstrap_ci(np.array(scores))},
        latency,
        latency,
        50,
        3,
        fit,
        1000,
        scores,
        [],
        8,
        0.2,
        {"label": "a"} if name == "majority" else {},
    )


# chrF: sacrebleu against adaptlab's hand-written chrF (removed), whose values on these strings were recorded before


@pytest.mark.parametrize(
    ("hypothesis", "reference", "before"),
    [
        ("the cat sat", "the cat sat", 100.0),
        ("xyz", "abc", 0.0),
        ("the cat sat", "the cat sat on the mat", 49.59348409966009),
        (
            "SELECT name FROM users WHERE id = 3",
            "SELECT name FROM users WHERE id=3",
            100.0,
        ),  # whitespace removed, as before
        ('{"city": "Paris", "people": 2}', '{"city": "Rome", "people": 4}', 63.21102874480706),
        ("Hello World", "hello world", 37.53968253968254),  # case-sensitive, as before
    ],
)
def test_chrf_from_sacrebleu_matches_the_old_figures_on_strings_of_six_characters_or_more(
    hypothesis, reference, before
):
    assert chrf(hypothesis, reference) == pytest.approx(before, abs=1e-9)


def test_chrf_documented_difference_short_strings_average_only_the_orders_they_have():
    # "ab" vs "abcdefgh": order 1 P=2/2 R=2/8, order 2 P=1/1 R=1/7; sacrebleu averages these two orders only:
    # P=1, R=(1/4+1/7)/2, F2 = 5PR/(4P+R). The old chrF also averaged orders 3-6 as P=R=0: 7.80.
    recall = (1 / 4 + 1 / 7) / 2
    assert chrf("ab", "abcdefgh") == pytest.approx(100 * 5 * recall / (4 + recall), abs=1e-9)
    assert (
        chrf("ab", "abcdefgh") == pytest.approx(23.404255319148938, abs=1e-9)
        and chrf("ab", "abcdefgh") > 7.801418439716313
    )
    assert chrf("", "") == chrf("  ", " ") == 100.0  # identical empty answers: 100 (sacrebleu alone says 0)
    assert chrf("", "abc") == chrf("abc", "") == 0.0


# F1: scikit-learn, with the semantics of adaptlab's hand-written copies (removed)


def test_per_label_and_macro_f1_keep_the_old_semantics():
    expected = ["a", "a", "b", "b", "c", "c", "a", "b"]
    predicted = [
        "a",
        "b",
        "b",
        "b",
        "c",
        "a",
        "x",
        "a",
    ]  # "x" is outside the labels: a false negative for "a", no label of its own
    # by hand: a tp=1 fp=2 fn=2 -> 2/6; b tp=2 fp=1 fn=1 -> 4/6; c tp=1 fp=0 fn=1 -> 2/3; d never occurs -> 0, not in
    # the macro
    f1, _ = per_label(expected, predicted, ["a", "b", "c", "d"])
    assert f1 == pytest.approx({"a": 2 / 6, "b": 4 / 6, "c": 2 / 3, "d": 0.0})
    assert macro_f1(expected, predicted, ["a", "b", "c", "d"]) == pytest.approx((2 / 6 + 4 / 6 + 2 / 3) / 3)
    assert task_metrics("classify", expected, predicted, ["a", "b", "c", "d"])[0]["macro_f1"] == pytest.approx(
        (2 / 6 + 4 / 6 + 2 / 3) / 3
    )
    assert macro_f1(["x"], ["y"], ["a", "b"]) == 0.0  # no label occurs: 0, as before


def test_label_f1_scores_every_resample_in_one_call_as_one_call_each_would():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(3)
    e, p = rng.integers(0, 5, 30), rng.integers(0, 6, 30)  # 5 labels, 5 = outside them
    idx = rng.integers(0, 30, size=(20, 30))
    f1, present = label_f1(e[idx], p[idx], 5)
    for r in range(20):
        assert f1[r] == pytest.approx(f1_score(e[idx[r]], p[idx[r]], labels=range(5), average=None, zero_division=0))
        assert list(present[r]) == [lab in e[idx[r]] or lab in p[idx[r]] for lab in range(5)]
    assert list(label_ids(["b", "zz", "a"], ["a", "b"])) == [1, 2, 0]


# BCa intervals


def test_a_proportions_interval_is_wilsons_and_covers_where_bca_on_few_rows_does_not():
    from scipy.stats import binomtest

    scores = np.array([1.0] * 33 + [0.0] * 7)
    lo, hi = bootstrap_ci(scores)
    direct = binomtest(33, 40).proportion_ci(0.95, method="wilson")
    assert lo < scores.mean() < hi and (lo, hi) == pytest.approx((direct.low, direct.high))
    metrics, ci = task_metrics("classify", ["a"] * 33 + ["b"] * 7, ["a"] * 40, ["a", "b"], resamples=1000)
    assert ci["accuracy"] == pytest.approx((lo, hi))  # the headline's interval is this one
    every = bootstrap_ci(np.ones(20))
    assert every[1] == 1.0 and every[0] == pytest.approx(binomtest(20, 20).proportion_ci(method="wilson").low)
    # a true accuracy of 0.9, 20 rows a sample: Wilson's interval covers it near its 95%, where BCa's covered 89%
    rng = np.random.default_rng(0)
    covered = [lo <= 0.9 <= hi for lo, hi in (bootstrap_ci((rng.random(20) < 0.9).astype(float)) for _ in range(300))]
    assert 0.90 <= np.mean(covered) <= 0.99


def test_continuous_scores_get_the_wider_of_bca_and_wilson_at_the_effective_size():
    from scipy.stats import bootstrap

    scores = np.array([100.0] * 14 + [80.0, 60.0, 90.0, 95.0, 70.0, 85.0])  # chrF per row: most answers exact
    lo, hi = bootstrap_ci(scores, scale=100)
    bca = bootstrap((scores,), np.mean, n_resamples=1000, method="BCa", rng=np.random.default_rng(0))
    assert lo <= bca.confidence_interval.low and hi >= bca.confidence_interval.high
    assert lo < scores.mean() < hi <= 100
    assert bootstrap_ci(np.full(20, 100.0), scale=100)[0] < 100  # every answer exact: still an interval
    assert bootstrap_ci(np.array([-5.0, 5.0, 1.0])) == bootstrap_ci(np.array([-5.0, 5.0, 1.0]), scale=100)  # BCa only


def test_bca_falls_back_when_it_is_undefined(monkeypatch):
    assert bootstrap_ci(np.full(12, -1.0)) == (-1.0, -1.0)  # every row alike (outside the bounds): the point
    import scipy.stats

    class Nan:
        confidence_interval = (float("nan"), float("nan"))
        bootstrap_distribution = np.linspace(-1, 1, 101)

    monkeypatch.setattr(scipy.stats, "bootstrap", lambda *a, **k: Nan())
    assert bootstrap_ci(np.array([-1.0, 1.0, 1.0])) == pytest.approx(
        (-0.95, 0.95)
    )  # BCa nan: the percentile interval of the same resamples


# paired tests


def test_exact_mcnemar_on_a_constructed_discordant_table():
    # 8 rows only a right, 2 only b right, 20 both right, 10 neither
    a = [1] * 8 + [0] * 2 + [1] * 20 + [0] * 10
    b = [0] * 8 + [1] * 2 + [1] * 20 + [0] * 10
    # two-sided binomial(10, 1/2): P(X <= 2) + P(X >= 8) = 2 * (1 + 10 + 45) / 1024
    assert paired_test(a, b) == (MCNEMAR, pytest.approx(112 / 1024))
    assert paired_test(b, a)[1] == pytest.approx(112 / 1024)
    assert paired_test(a, a) == (MCNEMAR, 1.0)
    assert paired_test([1] * 12, [0] * 12)[1] == pytest.approx(2 / 2**12)


def test_paired_permutation_test_exact_and_symmetric():
    # differences 1, 2, 3, 4: of the 2^4 sign patterns only all + and all - reach |mean| >= 2.5
    a, b = [1.5, 2.5, 3.5, 4.5], [0.5, 0.5, 0.5, 0.5]
    assert paired_test(a, b) == (PERMUTATION, pytest.approx(2 / 16))
    assert paired_test(b, a)[1] == pytest.approx(2 / 16)
    # differences symmetric around 0: the observed mean 0 is the middle of the null distribution
    base = np.linspace(10, 60, 12)
    assert paired_test(base + [0.3, -0.3, 0.6, -0.6, 1.2, -1.2] * 2, base)[1] == pytest.approx(1.0)
    continuous = [50.0 + i % 7 for i in range(60)]
    assert paired_test([s + 5 for s in continuous], continuous)[1] < 0.001


def test_holm_on_hand_p_values():
    # sorted: 0.01*4 = 0.04, 0.03*3 = 0.09, 0.04*2 = 0.08 -> 0.09 (never below the one before), 0.20*1 = 0.20
    assert holm([0.01, 0.04, 0.03, 0.20]) == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0]) and holm([]) == []


def test_pairwise_reports_the_test_raw_and_holm_p_values_and_power():
    few = evaluation("few_shot", [1] * 36 + [0] * 4)
    lora = evaluation("lora", [1] * 35 + [0] * 5)
    zero = evaluation("zero_shot", [1] * 20 + [0] * 20)
    rows = pairwise([few, lora, zero])
    assert [r["test"] for r in rows] == [MCNEMAR] * 3
    assert rows[0]["p_value"] == pytest.approx(1.0) and rows[1]["p_value"] == pytest.approx(2 / 2**16)
    assert [r["p_holm"] for r in rows] == pytest.approx(holm([r["p_value"] for r in rows]))
    assert rows[1]["p_holm"] == pytest.approx(3 * 2 / 2**16) and rows[1]["ci95"][0] > 0
    assert rows[1]["detectable_difference"] == pytest.approx(Z_POWER * math.sqrt(16 / 40 / 40))
    chrf_rows = pairwise(
        [
            evaluation("a", [50.0 + i % 5 for i in range(30)], metric="chrf"),
            evaluation("b", [49.0 + i % 3 for i in range(30)], metric="chrf"),
        ]
    )
    assert chrf_rows[0]["test"] == PERMUTATION and 0 <= chrf_rows[0]["p_value"] <= 1


# power


def test_z_power_is_the_normal_quantiles():
    from scipy.stats import norm

    assert Z_POWER == pytest.approx(norm.ppf(0.975) + norm.ppf(0.8), abs=1e-6)


def test_detectable_difference_and_rows_to_settle_by_hand():
    # continuous: differences 0, 2, 0, 2, ... (n=16): mean 1, sd (n-1) = sqrt(16/15)
    a, b = [10.0, 12.0] * 8, [10.0] * 16
    sd = math.sqrt(16 / 15)
    got = power(a, b)
    assert got["detectable_difference"] == pytest.approx(Z_POWER * sd / 4)
    assert got["rows_to_settle"] == math.ceil((Z_POWER * sd / 1.0) ** 2) == 9
    # 0/1: 40 rows, 6 only a right, 2 only b right: discordant share 0.2, gap 0.1
    a = [1] * 6 + [0] * 2 + [1] * 20 + [0] * 12
    b = [0] * 6 + [1] * 2 + [1] * 20 + [0] * 12
    got = power(a, b)
    assert got["detectable_difference"] == pytest.approx(Z_POWER * math.sqrt(0.2 / 40))  # 0.198
    assert got["rows_to_settle"] == math.ceil(Z_POWER**2 * 0.2 / 0.1**2) == 157
    # at the detectable difference, the rows to settle it are the split's own
    assert power([1] * 8 + [0] * 32, [0] * 40)["rows_to_settle"] == math.ceil(Z_POWER**2 * 0.2 / 0.2**2) == 40
    assert power([1, 0, 1, 0], [0, 1, 0, 1])["rows_to_settle"] is None  # a gap of 0
    assert power([1, 0, 1], [1, 0, 1]) == {"detectable_difference": None, "rows_to_settle": None}  # no spread


def test_power_summary_is_between_the_top_two():
    few = evaluation("few_shot", [1] * 30 + [0] * 10, latency=700)
    lora = evaluation("lora", [1] * 31 + [0] * 9, fit=120, latency=90)
    zero = evaluation("zero_shot", [1] * 10 + [0] * 30)
    summary = power_summary([zero, few, lora], "accuracy")
    assert summary == {
        "metric": "accuracy",
        "rows": 40,
        "between": ["lora", "few_shot"],
        "difference": pytest.approx(0.025),
    } | power(lora.scores, few.scores)
    assert summary["rows_to_settle"] == math.ceil(Z_POWER**2 * (1 / 40) / 0.025**2) == 314
    assert power_summary([zero], "accuracy") is None


# P(best)


def test_p_best_dominant_and_identical_contenders():
    rng = np.random.default_rng(1)
    strong = (rng.random(60) < 0.9).astype(float)
    weak = (rng.random(60) < 0.4).astype(float)
    chances = p_best({"strong": strong, "weak": weak, "twin": weak.copy()})
    assert chances["strong"] > 0.99
    assert chances["weak"] == pytest.approx(chances["twin"]) and sum(chances.values()) == pytest.approx(1.0)
    assert p_best({"a": weak, "b": weak.copy()}) == {"a": 0.5, "b": 0.5}  # every resample a tie, split evenly
    # a is right on one row more than b: a is best when that row is drawn (1 - (39/40)^40), and ties otherwise (half)
    close = p_best({"a": [1.0] * 21 + [0.0] * 19, "b": [0.0] + [1.0] * 20 + [0.0] * 19})
    assert close["a"] == pytest.approx(1 - 0.5 * (39 / 40) ** 40, abs=0.04)
    even = p_best({"a": [1.0] * 5 + [0.0] * 5 + [1.0] * 20, "b": [0.0] * 5 + [1.0] * 5 + [1.0] * 20})
    assert 0.4 < even["a"] < 0.6  # five discordant rows each way


# the recommendation's wording


def test_inconclusive_between_the_top_two_names_power_and_a_default_by_cost():
    few = evaluation("few_shot", [1] * 30 + [0] * 10, latency=700)
    lora = evaluation("lora", [1] * 31 + [0] * 9, fit=120, latency=90)
    decision = recommend([few, lora], "accuracy", 8, tolerance=0.3)  # a team that accepts a loss of 0.3
    assert decision.choice == "few_shot"
    (inconclusive,) = [r for r in decision.reasons if r.startswith("inconclusive")]
    # one discordant row in 40: detectable 2.80 * sqrt(1/40 / 40) = 0.070; rows for a gap of 0.025: ceil(2.80^2 * (1/40)
    # / 0.025^2) = 314
    assert inconclusive.startswith("inconclusive between lora and few_shot: difference +0.025 accuracy (95% CI ")
    assert (
        "McNemar exact p=1.000); the test split (40 rows) could detect differences of about 0.070 "
        "(80% power, 5% level); about 314 rows would settle a gap this size" in inconclusive
    )
    assert (
        "few_shot is a default by cost, not a measured winner: it is the cheapest contender shown within the "
        "tolerance (0.3 accuracy) of lora" in decision.reasons
    )
    chance = p_best({"few_shot": few.scores, "lora": lora.scores})["few_shot"]
    assert (
        f"P(best) for few_shot: {chance:.0%}, the share of 1,000 bootstrap resamples" in " ".join(decision.reasons)
        and 0.0 < chance < 0.5
    )


def test_inconclusive_with_the_best_also_the_cheaper_says_so():
    few = evaluation("few_shot", [1] * 31 + [0] * 9, latency=700)
    lora = evaluation("lora", [1] * 30 + [0] * 10, fit=120, latency=90)
    decision = recommend([few, lora], "accuracy", 8)
    assert decision.choice == "few_shot"
    assert any(
        r.startswith("few_shot is a default by cost, not a measured winner: it scored highest and lora is not cheaper")
        for r in decision.reasons
    )


def test_a_clear_winner_is_not_called_inconclusive():
    decision = recommend(
        [evaluation("zero_shot", [1] * 10 + [0] * 30), evaluation("lora", [1] * 36 + [0] * 4, fit=120)], "accuracy", 8
    )
    assert decision.choice == "lora"
    assert not any("inconclusive" in r or "default by cost" in r for r in decision.reasons)
    assert any(r.startswith("P(best) for lora: 100%") for r in decision.reasons)
    assert "McNemar exact p<0.001" in decision.reasons[1]


def test_compare_table_shows_p_best_and_the_detectable_difference():
    from rich.console import Console

    from adaptlab.cli.compare import results_table
    from adaptlab.results import CompareResults

    row = {"input": "x", "expected": "a", "predicted": "a"}
    strategy = {
        "solver": {},
        "predictions": [row] * 40,
        "ci": {"accuracy": [0.6, 0.85]},
        "metrics": {"accuracy": 0.775, "macro_f1": 0.7},
        "labels_predicted": 2,
        "fit_seconds": 0.0,
        "latency_ms_mean": 10,
        "latency_ms_p95": 12,
        "prompt_tokens_mean": 50,
        "completion_tokens_mean": 1,
        "peak_rss_mb": 900,
        "cost_per_1k_queries": 0.01,
    }
    results = {
        "task": {
            "name": "cards",
            "instruction": "Route it.",
            "kind": "classify",
            "metric": "accuracy",
            "labels": ["a", "b"],
        },
        "base_model": "m",
        "data": {},
        "seed": 0,
        "environment": {},
        "recommendation": {"choice": "few_shot", "reasons": []},
        "cost_assumptions": {},
        "audit": {},
        "strategies": [strategy | {"name": "few_shot", "p_best": 0.62}, strategy | {"name": "lora", "p_best": 0.38}],
        "power": {
            "metric": "accuracy",
            "rows": 40,
            "between": ["few_shot", "lora"],
            "difference": 0.025,
            "detectable_difference": 0.07,
            "rows_to_settle": 314,
        },
    }
    console = Console(width=200, record=True)
    console.print(results_table(CompareResults.model_validate(results)))
    text = " ".join(console.export_text().split())  # the footer wraps at the table's width
    assert "P(best)" in text and "62%" in text and "38%" in text
    assert (
        "40 test rows can detect a difference in accuracy of about 0.070 between few_shot and lora "
        "(80% power, 5% level); their gap of +0.025 needs about 314 rows" in text
    )
    old = results | {"strategies": [{k: v for k, v in s.items() if k != "p_best"} for s in results["strategies"]]}
    del old["power"]
    console = Console(width=200, record=True)
    console.print(
        results_table(CompareResults.model_validate(old))
    )  # results.json written before P(best): a dash, no footer
    assert "detect" not in console.export_text()
