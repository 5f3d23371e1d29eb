"""Judged measures (adaptlab.decide.judged) and the judge's agreement with people (adaptlab.decide.agreement): pure
functions on planted ratings with a known truth, no model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from adaptlab.decide.judged import judged_measures, pairs_worth_comparing, proxy_from_scores
from adaptlab.results import CompareResults


def compare_results(pairs: dict[tuple[str, str], list[float]], kind: str = "generate", tolerance=None):
    """A CompareResults by hand: contenders in the order the pairs first name them, `pairs` {(a, b): ci95 of a - b}."""
    names = list(dict.fromkeys(n for pair in pairs for n in pair))
    strategy = {
        "solver": {},
        "predictions": [{"input": "x", "expected": "y", "predicted": "y"}],
        "ci": {},
        "metrics": {"chrf": 30.0},
        "fit_seconds": 0.0,
        "latency_ms_mean": 1,
        "latency_ms_p95": 1,
        "prompt_tokens_mean": 0,
        "completion_tokens_mean": 1,
        "peak_rss_mb": 1,
    }
    metric = {"generate": "chrf", "classify": "accuracy"}[kind]
    trivial = {"generate": "constant", "classify": "majority"}[kind]
    return CompareResults.model_validate(
        {
            "task": {"name": "t", "instruction": "i", "kind": kind, "metric": metric},
            "base_model": "m",
            "data": {},
            "seed": 0,
            "environment": {},
            "recommendation": {"choice": names[-1], "reasons": [], "tolerance": tolerance},
            "cost_assumptions": {},
            "audit": {},
            "strategies": [
                strategy | {"name": n, "traits": {"kind": trivial if n == "floor" else n, "constant": n == "floor"}}
                for n in names
            ],
            "pairwise": [
                {"a": a, "b": b, "difference": sum(ci) / 2, "ci95": ci, "test": "t", "p_value": 0.5}
                for (a, b), ci in pairs.items()
            ],
        }
    )


def test_pairs_worth_comparing_leaves_out_only_a_trivial_reference_that_loses_clearly():
    results = compare_results(
        {
            ("floor", "nearest"): [-1.5, 4.0],  # the floor is not beaten clearly: kept
            ("floor", "lora"): [-30.0, -20.0],  # lora beats the floor far beyond 2 chrF: left out
            ("few_shot", "floor"): [2.5, 9.0],  # the floor on the b side, beaten beyond the tolerance: left out
            ("nearest", "lora"): [-30.0, -20.0],  # neither is the trivial reference: kept however clear
            ("nearest", "few_shot"): [0, 1],
            ("lora", "few_shot"): [0, 1],
        }
    )
    assert pairs_worth_comparing(results) == [
        ("floor", "nearest"),
        ("nearest", "lora"),
        ("nearest", "few_shot"),
        ("lora", "few_shot"),
    ]


def test_pairs_worth_comparing_keeps_a_floor_beaten_within_the_tolerance_or_winning():
    # beaten, but only by 1.0-3.0 chrF: the interval does not clear the 2-chrF tolerance; and a floor that wins
    results = compare_results({("floor", "lora"): [-3.0, -1.0], ("floor", "nearest"): [5.0, 9.0]})
    assert pairs_worth_comparing(results) == [("floor", "lora"), ("floor", "nearest"), ("lora", "nearest")]
    # the recommendation's own tolerance counts: with 0.5 chrF, -3..-1 is clear
    tight = compare_results({("floor", "lora"): [-3.0, -1.0], ("floor", "nearest"): [5.0, 9.0]}, tolerance=0.5)
    assert pairs_worth_comparing(tight) == [("floor", "nearest"), ("lora", "nearest")]
    # classify: the floor is `majority`, accuracy's tolerance is 0.02
    cls = compare_results({("floor", "lora"): [-0.30, -0.10], ("floor", "few_shot"): [-0.03, -0.01]}, "classify")
    assert pairs_worth_comparing(cls) == [("floor", "few_shot"), ("lora", "few_shot")]


def test_proxy_from_scores_maps_a_score_gap_to_a_preference():
    assert proxy_from_scores([80, 10, 45], [10, 80, 45], scale=100) == [1.0, 0.0, 0.5]
    assert proxy_from_scores([0.6], [0.5], scale=1.0, margin=0.2) == [0.75]
    with pytest.raises(ValueError):
        proxy_from_scores([1], [0], scale=1, margin=0)


VALUES = np.array([1.0, 0.5, 0.0])  # a preferred, tie, b preferred


def planted(n_rows: int, n_rated: int, agree: float, seed: int, p=(0.55, 0.15, 0.30), a="x", b="y"):
    """People's latent verdict per row drawn with P(a, tie, b) = p (truth: p[0] + p[1] / 2); the proxy gives the same
    verdict with probability `agree`, else one of the two others; people rated `n_rated` rows at random."""
    rng = np.random.default_rng(seed)
    verdict = rng.choice(3, n_rows, p=list(p))
    proxy = np.where(rng.random(n_rows) < agree, verdict, (verdict + rng.integers(1, 3, n_rows)) % 3)
    rated = rng.choice(n_rows, n_rated, replace=False)
    people = [(int(r), a, b, float(VALUES[verdict[r]])) for r in rated]
    return people, {(r, a, b): float(VALUES[proxy[r]]) for r in range(n_rows)}


TRUTH = 0.55 + 0.15 / 2


def width(ci):
    return ci[1] - ci[0]


def test_a_good_proxy_narrows_the_interval_and_it_still_covers_the_truth():
    covered, narrower = 0, []
    for seed in range(150):
        people, proxy = planted(300, 40, agree=0.9, seed=seed)
        pair = judged_measures(["x", "y"], range(300), people, proxy, "judge").pairs[0]
        covered += pair.ci[0] <= TRUTH <= pair.ci[1]
        narrower.append(width(pair.ci) / width(pair.people_ci))
    assert 0.9 <= covered / 150 <= 0.99
    assert np.mean(narrower) < 0.75  # people-only would need about twice the ratings for this width
    assert pair.source == "people+judge" and pair.calibrated and (pair.n_rated, pair.n_proxied) == (40, 300)


@pytest.mark.parametrize("agree", [1 / 3, 0.0])  # a proxy at random; one that always contradicts people
def test_a_useless_or_adversarial_proxy_still_covers_and_is_no_narrower_than_people(agree):
    covered, ratio = 0, []
    for seed in range(150):
        people, proxy = planted(300, 40, agree=agree, seed=seed)
        pair = judged_measures(["x", "y"], range(300), people, proxy, "judge").pairs[0]
        covered += pair.ci[0] <= TRUTH <= pair.ci[1]
        ratio.append(width(pair.ci) / width(pair.people_ci))
    assert covered / 150 >= 0.9
    assert np.mean(ratio) > 0.97  # PPI++ gives such a proxy (almost) no weight: people's own width
    if agree == 0.0:  # the proxy alone would be far off the truth
        assert abs(pair.proxy - TRUTH) > 0.1


def test_orientation_a_pair_given_the_other_way_round_is_flipped():
    people, proxy = planted(200, 30, agree=0.8, seed=3)
    forward = judged_measures(["x", "y"], range(200), people, proxy, "judge").pairs[0]
    flipped_people = [(r, b, a, 1 - v) for r, a, b, v in people]
    flipped_proxy = {(r, b, a): 1 - v for (r, a, b), v in proxy.items()}
    backward = judged_measures(["x", "y"], range(200), flipped_people, flipped_proxy, "judge").pairs[0]
    assert (backward.a, backward.b) == ("x", "y")
    assert backward.estimate == pytest.approx(forward.estimate) and backward.ci == pytest.approx(forward.ci)
    # listing the contenders the other way round reports P(y over x)
    other = judged_measures(["y", "x"], range(200), people, proxy, "judge").pairs[0]
    assert (other.a, other.b) == ("y", "x") and other.estimate == pytest.approx(1 - forward.estimate)
    assert other.difference == pytest.approx(-forward.difference)


def test_several_reviewers_on_one_row_are_averaged_and_count_once():
    people = [(0, "x", "y", 1.0), (0, "x", "y", 0.0), (1, "x", "y", 1.0), (2, "y", "x", 1.0)]
    pair = judged_measures(["x", "y"], range(3), people, {}, "judge").pairs[0]
    assert pair.n_rated == 3 and pair.people == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert pair.source == "people only"


def test_without_ratings_the_judge_figures_are_uncalibrated_and_say_so():
    _, proxy = planted(100, 0, agree=1.0, seed=1)
    found = judged_measures(["x", "y"], range(100), [], proxy, "judge")
    pair = found.pairs[0]
    assert not found.calibrated and found.source == "judge only (uncalibrated)"
    assert pair.people is None and pair.people_ci is None and pair.n_rated == 0
    assert pair.estimate == pytest.approx(np.mean(list(proxy.values()))) and pair.ci[0] < pair.estimate < pair.ci[1]
    assert not found.contenders[0].calibrated


def test_edge_cases_give_an_honest_interval_or_none_with_a_reason_instead_of_crashing():
    _, proxy = planted(50, 0, agree=1.0, seed=2)
    one = judged_measures(["x", "y"], range(50), [(0, "x", "y", 1.0)], proxy, "judge").pairs[0]
    assert one.ci is None and "only 1 rated row" in one.ci_reason
    flat = {(r, "x", "y"): 0.5 for r in range(50)}  # a proxy that always says tie, people who always say x
    same = judged_measures(["x", "y"], range(50), [(r, "x", "y", 1.0) for r in range(10)], flat, "judge").pairs[0]
    # no interval from a proxy that cannot be calibrated: people's own, with Wilson's interval for 10 of 10
    assert same.source == "people only" and same.estimate == 1.0 and same.ci == pytest.approx([0.7225, 1.0], abs=1e-4)
    # a contender's win rate still gets a (conservative) interval from such a pair
    assert judged_measures(["x", "y"], range(50), [(0, "x", "y", 1.0)], proxy, "judge").contenders[0].ci is not None


def test_win_rates_and_p_best_follow_a_planted_order():
    # x beats y and z, y beats z: P(a preferred) 0.8, 0.85, 0.7
    people, proxy = [], {}
    for (a, b, pa), seed in zip([("x", "y", 0.8), ("x", "z", 0.85), ("y", "z", 0.7)], range(3)):
        p, q = planted(300, 60, agree=0.85, seed=seed, p=(pa, 0.0, 1 - pa), a=a, b=b)
        people += p
        proxy |= q
    found = judged_measures(["z", "y", "x"], range(300), people, proxy, "judge")
    rates = {c.name: c for c in found.contenders}
    assert [p.a + p.b for p in found.pairs] == ["zy", "zx", "yx"]
    truth = {"x": (0.8 + 0.85) / 2, "y": (0.2 + 0.7) / 2, "z": (0.15 + 0.3) / 2}
    for name, rate in rates.items():
        assert rate.ci[0] <= truth[name] <= rate.ci[1] and rate.opponents == 2
    assert rates["x"].p_best > 0.95 and sum(c.p_best for c in found.contenders) == pytest.approx(1.0)
    assert found.calibrated and found.source == "people+judge"


def test_pointwise_scores_by_ppi():
    rng = np.random.default_rng(0)
    true_score = rng.integers(1, 6, 300)  # people's score per row for contender x: mean 3
    noisy = np.clip(true_score + rng.integers(-1, 2, 300), 1, 5)  # a judge within one point
    people = [(int(r), "x", float(true_score[r])) for r in rng.choice(300, 50, replace=False)]
    found = judged_measures(["x"], range(300), [], {}, "judge", people, {(r, "x"): float(noisy[r]) for r in range(300)})
    score = found.scores[0]
    assert score.name == "x" and score.calibrated and score.n_rated == 50
    assert score.ci[0] <= true_score.mean() <= score.ci[1] and 1 <= score.ci[0] and score.ci[1] <= 5


def rating(row, pref, a="x", b="y", reviewer="ann", **more):
    return SimpleNamespace(row=row, a=a, b=b, preference=pref, reviewer=reviewer, **more)


def verdict(row, pref, a="x", b="y", consistent=True, **more):
    return SimpleNamespace(row=row, a=a, b=b, preference=pref, first=pref, second=pref, consistent=consistent, **more)


def test_kappa_is_one_for_perfect_agreement_and_matches_sklearn_on_a_hand_made_case():
    from sklearn.metrics import cohen_kappa_score

    from adaptlab.decide.agreement import agreement

    prefs = ["a", "b", "tie", "both_bad"] * 5
    perfect = agreement([rating(i, p) for i, p in enumerate(prefs)], [verdict(i, p) for i, p in enumerate(prefs)])
    assert perfect.raw.value == 1.0 and perfect.kappa.value == pytest.approx(1.0) and perfect.trusted
    assert perfect.common == 20 and not perfect.disagreements  # both_bad against tie is agreement
    # 20 of 20 is not proof of perfection: the interval keeps Wilson's width (chance agreement 0.375 here)
    assert perfect.kappa.ci[0] == pytest.approx((0.8389 - 0.375) / 0.625, abs=1e-3) and perfect.kappa.ci[1] == 1.0

    people = ["a", "a", "b", "tie", "a", "b", "b", "tie", "a", "a", "b", "tie", "a", "b", "a"]
    judge = ["a", "b", "b", "a", "a", "b", "tie", "tie", "a", "b", "b", "a", "a", "tie", "a"]
    found = agreement([rating(i, p) for i, p in enumerate(people)], [verdict(i, p) for i, p in enumerate(judge)])
    assert found.kappa.value == pytest.approx(cohen_kappa_score(people, judge))
    assert found.raw.value == pytest.approx(np.mean(np.array(people) == np.array(judge)))
    assert found.kappa.ci[0] < found.kappa.value < found.kappa.ci[1]
    assert len(found.disagreements) == 6 and found.disagreements[0].row == 1


def test_a_judge_at_chance_has_kappa_near_zero_and_is_not_trusted():
    from adaptlab.decide.agreement import agreement

    rng = np.random.default_rng(0)
    people = [rating(i, str(rng.choice(["a", "b", "tie"]))) for i in range(200)]
    judge = [verdict(i, str(rng.choice(["a", "b", "tie"]))) for i in range(200)]
    found = agreement(people, judge)
    assert found.kappa.ci[0] < 0 < found.kappa.ci[1] and not found.trusted
    assert found.ratings_to_trust is None and "try another judge or rubric" in found.reasons[0]


def test_trusted_flips_at_the_threshold_and_too_few_ratings_are_never_trusted():
    from adaptlab.decide.agreement import agreement

    rng = np.random.default_rng(1)
    prefs = [str(p) for p in rng.choice(["a", "b", "tie"], 60)]
    judged = [p if rng.random() < 0.75 else "tie" for p in prefs]
    people, judge = [rating(i, p) for i, p in enumerate(prefs)], [verdict(i, p) for i, p in enumerate(judged)]
    low = agreement(people, judge).kappa.ci[0]
    assert agreement(people, judge, threshold=low - 0.01).trusted
    stricter = agreement(people, judge, threshold=low + 0.01)
    assert not stricter.trusted and stricter.ratings_to_trust > 60 and "not trusted yet" in stricter.reasons[0]
    few = agreement(people[:7], judge[:7])
    assert not few.trusted and few.common == 7 and "(3 more)" in few.reasons[0]


def test_scores_position_length_and_the_reviewers_own_kappa():
    from sklearn.metrics import cohen_kappa_score

    from adaptlab.decide.agreement import agreement

    rng = np.random.default_rng(2)
    score_x = rng.integers(1, 6, 40)
    judge_x = np.clip(score_x + rng.integers(-1, 2, 40), 1, 5)
    people = [rating(i, "a" if i % 3 else "b", score_a=int(score_x[i]), score_b=None) for i in range(40)]
    # bob rates rows 0-19 shown the other way round: the same verdicts, except on rows 0-4 where he says tie
    people += [rating(i, "tie" if i < 5 else ("b" if i % 3 else "a"), "y", "x", "bob") for i in range(20)]
    judge = [verdict(i, "a", consistent=i % 4 != 0, longer="a") for i in range(40)]  # x is longer and always wins
    scores = [SimpleNamespace(row=i, contender="x", score=int(judge_x[i])) for i in range(40)]
    found = agreement(people, judge, judge_scores=scores)
    assert found.weighted_kappa.value == pytest.approx(cohen_kappa_score(score_x, judge_x, weights="quadratic"))
    assert found.kendall_tau.value > 0.5 and found.kendall_tau.ci[0] > 0
    assert found.position_consistency.value == pytest.approx(0.75) and found.position_consistency.n == 40
    never_asked = [SimpleNamespace(**(vars(v) | {"consistent": None})) for v in judge[:10]] + judge[10:]
    assert agreement(people, never_asked).position_consistency.n == 30  # a verdict never asked both ways: not counted
    assert found.longer_wins_judge.value == 1.0
    x_wins = [i % 3 != 0 for i in range(40)] + [i % 3 != 0 for i in range(5, 20)]  # ann's 40, bob's decided 15
    assert found.longer_wins_people.value == pytest.approx(np.mean(x_wins)) and found.longer_wins_people.n == 55
    ann = ["a" if i % 3 else "b" for i in range(20)]
    bob = ["tie" if i < 5 else ("a" if i % 3 else "b") for i in range(20)]
    assert found.reviewers_kappa.value == pytest.approx(cohen_kappa_score(ann, bob)) and found.reviewers_kappa.n == 20
    # lengths given: the other answer is longer on every row, so the longer one wins whenever y is chosen
    lengths = {(i, c): (5 if c == "x" else 9) for i in range(40) for c in "xy"}
    assert agreement(people, judge, lengths=lengths).longer_wins_judge.value == 0.0


def test_the_trivial_reference_counts_in_no_win_rate_so_each_is_averaged_over_the_same_opponents():
    """Y beats X and Z narrowly; X and Z beat the floor easily, Y's pair with it was left out (it loses clearly).
    Averaged in, the floor's easy wins would put X above Y; left out, Y leads."""
    proxy = {}
    for r in range(100):
        proxy[(r, "Y", "X")] = 1.0 if r < 53 else 0.0
        proxy[(r, "Y", "Z")] = 1.0 if r < 54 else 0.0
        proxy[(r, "X", "floor")] = 1.0 if r < 90 else 0.0
        proxy[(r, "Z", "floor")] = 1.0 if r < 90 else 0.0
    names = ["floor", "X", "Y", "Z"]
    averaged = {c.name: c.win_rate for c in judged_measures(names, range(100), [], proxy, "judge").contenders}
    assert averaged["X"] > averaged["Y"]
    fair = judged_measures(names, range(100), [], proxy, "judge", left_out=("floor",))
    rates = {c.name: c.win_rate for c in fair.contenders}
    assert "floor" not in rates and rates["Y"] == max(rates.values())
    assert {(p.a, p.b) for p in fair.pairs} >= {("floor", "X"), ("floor", "Z")}  # still estimated, and shown
