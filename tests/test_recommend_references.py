"""The references in the recommendation (the references issue), on hand-built evaluations: no model involved.

An LLM contender must beat the task's trivial reference in the paired test; a reference without an LLM that is
best, or that is shown within the tolerance of the best LLM contender, is the recommendation; a contender with
degenerate answers (`flags`) is passed over while a usable one is left; when nothing beats the trivial reference the
reason says so in the task's words.
"""

import numpy as np

from adaptlab.decide import recommend
from adaptlab.decide.recommend import COLLECT_MORE_DATA
from adaptlab.evaluation import Evaluation
from adaptlab.metrics import bootstrap_ci

# each contender's kind traits, written out so the tests do not depend on which kinds are registered
TRAITS = {
    "majority": {"family": "baseline", "tier": 0, "llm": False, "constant": True},
    "constant": {"family": "baseline", "tier": 0, "llm": False, "constant": True},
    "abstain": {"family": "baseline", "tier": 0, "llm": False, "constant": True},
    "nearest": {"family": "baseline", "tier": 1, "llm": False},
    "extract": {"family": "baseline", "tier": 1, "llm": False},
    "zero_shot": {"family": "prompted", "tier": 2},
    "few_shot": {"family": "prompted", "tier": 2},
    "rag": {"family": "prompted", "tier": 2},
    "lora": {"family": "fine_tuned", "tier": 3},
}
QA_WORDS = "always saying the abstain answer"
QA_REMEDY = "try a bigger or remote model, retrieval settings (rag's k and retriever), or more training questions"


def evaluation(name, scores, metric="qa_score", flags=(), latency=100.0, fit=0.0):
    scores = [float(s) for s in scores]
    traits = {"kind": name} | TRAITS[name]
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
        traits=traits,
        flags=list(flags),
    )


def right(*rows, n=40):
    """0/1 scores: 1 on the given row ranges (start, stop), 0 elsewhere."""
    out = [0.0] * n
    for start, stop in rows:
        out[start:stop] = [1.0] * (stop - start)
    return out


def test_an_always_abstaining_llm_is_never_recommended_and_is_named_as_degenerate():
    # 40 questions, the first 20 unanswerable: abstaining scores 1 there and 0 on the rest
    abstain = evaluation("abstain", right((0, 20)))
    declined = "abstained on 100% of the answerable questions (20 of 20)"
    lora = evaluation("lora", right((0, 20)), flags=[declined], fit=60)
    extract = evaluation("extract", right((0, 20), (20, 34)), latency=5)  # 14 answered right: McNemar 14 to 0, p<0.001
    decision = recommend([abstain, lora, extract], "qa_score", 0, trivial_words=QA_WORDS, remedy=QA_REMEDY)
    assert decision.choice == "extract"
    assert f"lora is not recommended: it {declined}" in decision.reasons
    assert f"lora: {declined} — not recommended" in decision.warnings
    assert (
        "extract answers better than always saying the abstain answer (abstain) significantly: 0.850 "
        "vs 0.500 (difference +0.350" in " ".join(decision.reasons)
    )
    assert not any(
        w.startswith("abstain:") or w.startswith("extract:") for w in decision.warnings
    )  # flags only for flagged contenders


def test_a_reference_without_an_llm_that_beats_every_llm_is_the_recommendation():
    swing = [5.0, -5.0] * 15  # 30 rows, mean 0
    constant = evaluation("constant", [20.0 + s for s in swing], "chrf")
    nearest = evaluation("nearest", [70.0 + s for s in swing], "chrf", latency=8)
    lora = evaluation("lora", [51.0 - s for s in swing], "chrf", latency=90, fit=200)
    few = evaluation("few_shot", [48.0 + s for s in swing], "chrf", latency=700)
    decision = recommend([constant, lora, few, nearest], "chrf")
    assert decision.choice == "nearest"
    (reason,) = [r for r in decision.reasons if "may not need an LLM" in r]
    assert (
        "nearest scores +19.000 chrf against the best LLM strategy, lora (70.000 vs 51.000" in reason
        and "8 ms per query vs 90 ms" in reason
    )


def test_a_reference_without_an_llm_shown_within_the_tolerance_of_the_best_llm_wins_whatever_it_costs():
    # lora 70 vs nearest 69.9 on 3,000 rows whose differences swing +0.1 +- 1: shown within 2 chrF; nearest's price is
    # unknown, so it sorts last by cost and the cheaper-contender rule alone would never reach it
    constant = evaluation("constant", [20.0] * 3000, "chrf")
    nearest = evaluation("nearest", [69.0, 70.8] * 1500, "chrf", latency=8)
    lora = evaluation("lora", [70.0, 70.0] * 1500, "chrf", latency=90, fit=200)
    costs = {
        "nearest": {"cost_per_1k_queries": None, "fit_cost": 0.0},
        "lora": {"cost_per_1k_queries": 0.01, "fit_cost": 0.05},
    }
    decision = recommend([constant, lora, nearest], "chrf", 0, None, costs)
    assert decision.choice == "nearest"
    (reason,) = [r for r in decision.reasons if r.startswith("the task may not need an LLM")]
    assert (
        "nearest is as good as lora within the tolerance (69.900 vs 70.000, difference +0.100" in reason
        and "inside the tolerance of 2 chrf" in reason
        and "needs no LLM" in reason
    )


def test_a_reference_without_an_llm_not_shown_within_the_tolerance_is_not_chosen_over_the_best_llm():
    # lora 70 vs nearest 69 on 30 rows: the per-row differences swing +19/-21, far from significant, and far from
    # shown within 2 chrF (the restaurant-json-2 case of bench/decide.py)
    constant = evaluation("constant", [20.0] * 30, "chrf")
    nearest = evaluation("nearest", [79.0, 59.0] * 15, "chrf", latency=8)
    lora = evaluation("lora", [60.0, 80.0] * 15, "chrf", latency=90, fit=200)
    decision = recommend([constant, lora, nearest], "chrf", 0)
    assert decision.choice == "lora"
    (reason,) = [r for r in decision.reasons if r.startswith("nearest might be as good as lora")]
    assert "(90% paired CI" in reason and "reaches beyond the tolerance of 2 chrf" in reason
    assert "test rows would settle it" in reason


def test_nothing_above_the_trivial_reference_means_collect_more_data_in_the_tasks_words():
    abstain = evaluation("abstain", right((0, 20)))
    rag = evaluation("rag", right((2, 20)), latency=300)  # 18 of 40: below abstaining
    extract = evaluation("extract", right((0, 18)), latency=5)  # 18 of 40: below abstaining
    decision = recommend([abstain, rag, extract], "qa_score", 0, trivial_words=QA_WORDS, remedy=QA_REMEDY)
    assert decision.choice == COLLECT_MORE_DATA
    (reason,) = [r for r in decision.reasons if r.startswith("no contender answers better than")]
    assert reason.startswith(
        "no contender answers better than always saying the abstain answer (abstain): "
        "the best, rag, has qa_score 0.450 vs 0.500 (difference -0.050"
    )
    assert reason.endswith(QA_REMEDY)


def test_an_llm_above_the_trivial_reference_but_not_significantly_is_the_better_bet():
    # the restaurant-json-2 case of bench/decide.py, in small: requiring significance over the floor left only a
    # lookup that scored far lower
    abstain = evaluation("abstain", right((0, 20)))
    rag = evaluation("rag", right((2, 24)), latency=300)  # 22 of 40, but 4 rows to 2 against abstaining: p=0.69
    decision = recommend([abstain, rag], "qa_score", 0, trivial_words=QA_WORDS, remedy=QA_REMEDY)
    assert decision.choice == "rag"
    (reason,) = [r for r in decision.reasons if r.startswith("rag scores above always saying the abstain answer")]
    assert "McNemar exact p=0.688" in reason and "the better bet until more test rows say otherwise" in reason


def test_a_cheaper_llm_not_beating_the_trivial_reference_is_not_preferred_to_the_best():
    # majority right on rows 0-19; lora on 0-15 and 20-33 (30: 14 rows to 4 against majority, p=0.031);
    # zero_shot on 0-15, 20-27 and 34-37 (28: 12 to 4, p=0.077), 6 rows to 4 against lora: not significantly worse
    majority = evaluation("majority", right((0, 20)), "accuracy")
    majority.solver = {"label": "a"}
    lora = evaluation("lora", right((0, 16), (20, 34)), "accuracy", fit=100, latency=90)
    zero = evaluation("zero_shot", right((0, 16), (20, 28), (34, 38)), "accuracy", latency=80)
    decision = recommend([majority, zero, lora], "accuracy", 8)
    assert decision.choice == "lora"
    assert any(
        r.startswith("zero_shot does not beat the majority baseline significantly: 0.700 vs 0.500")
        for r in decision.reasons
    )
    assert any(
        r.startswith("lora answers better than always answering 'a' (majority) significantly: 0.750 vs 0.500")
        for r in decision.reasons
    )
    assert not any("so prefer it" in r for r in decision.reasons)
    worded = recommend(
        [majority, zero, lora], "accuracy", 8, trivial_words="always answering the most frequent training label"
    )
    assert any(
        r.startswith(
            "lora answers better than always answering the most frequent training label (majority: "
            "'a') significantly: 0.750"
        )
        for r in worded.reasons
    )


def test_a_flagged_contender_with_the_highest_score_is_skipped_for_the_best_usable_one():
    swing = [5.0, -5.0] * 15
    cut = "ran to the token limit on 60% of the test rows"
    constant = evaluation("constant", [10.0 + s for s in swing], "chrf")
    lora = evaluation("lora", [80.0 + s for s in swing], "chrf", flags=[cut], fit=200)
    few = evaluation("few_shot", [60.0 + s for s in swing], "chrf", latency=700)
    zero = evaluation("zero_shot", [40.0 + s for s in swing], "chrf", latency=600)
    decision = recommend(
        [constant, lora, few, zero], "chrf", 0, trivial_words="always answering the most frequent training output"
    )
    assert decision.choice == "few_shot"
    assert decision.reasons[0].startswith(
        "few_shot scored the highest chrf of the contenders that can be recommended: 60.000"
    )
    assert f"lora is not recommended: it {cut}" in decision.reasons
    assert decision.warnings == [f"lora: {cut} — not recommended"]


def test_every_contender_flagged_the_trivial_reference_decides():
    same = "gave the same answer ('I don't know') to 100% of the test rows"
    abstain = evaluation("abstain", right((0, 20)))
    lora = evaluation("lora", right((0, 20)), flags=[same], fit=60)
    rag = evaluation("rag", right((0, 19)), flags=[same])
    nothing = recommend([abstain, lora, rag], "qa_score", 0, trivial_words=QA_WORDS, remedy=QA_REMEDY)
    assert nothing.choice == COLLECT_MORE_DATA
    assert nothing.reasons[0].startswith(
        "no contender answers better than always saying the abstain answer (abstain): the best, lora"
    )
    assert (
        f"lora is not recommended: it {same}" in nothing.reasons
        and f"rag is not recommended: it {same}" in nothing.reasons
    )
    # a flagged contender that does beat the trivial reference, with no usable one left: recommended, with a caution
    cut = "ran to the token limit on 60% of the test rows"
    long = evaluation("lora", right((0, 36)), flags=[cut], fit=60)
    decision = recommend([abstain, long, rag], "qa_score", 0, trivial_words=QA_WORDS, remedy=QA_REMEDY)
    assert decision.choice == "lora"
    assert (
        f"lora is recommended although it {cut}: no contender without such findings is left to "
        "recommend; read its answers before relying on it" in decision.reasons
    )
    assert (
        f"lora: {cut} — recommended only because no contender without such findings is left; check its answers"
        in decision.warnings
    )


def test_a_lookup_and_an_llm_as_far_above_the_trivial_reference_tie_and_the_lookup_is_cheaper():
    # 12 questions, the first 3 unanswerable: abstain 0.25; extract and rag each right on 3 more rows (McNemar 3 to 0:
    # p=0.25); the same score, so the cheaper one
    abstain = evaluation("abstain", right((0, 3), n=12))
    extract = evaluation("extract", right((0, 6), n=12), latency=5)
    rag = evaluation("rag", right((0, 6), n=12), latency=900)
    decision = recommend([abstain, extract, rag], "qa_score", 0, trivial_words=QA_WORDS, remedy=QA_REMEDY)
    assert decision.choice == "extract"
    assert any(
        r.startswith(
            "extract scores above always saying the abstain answer (abstain), but the test rows cannot tell them apart"
        )
        and "it needs no LLM" in r
        for r in decision.reasons
    )
    assert any(r.startswith("rag does not beat the abstain baseline significantly") for r in decision.reasons)
    alone = recommend([abstain, rag], "qa_score", 0, trivial_words=QA_WORDS, remedy=QA_REMEDY)
    assert alone.choice == "rag"  # above the floor, not significantly: the better bet, and the reasons say so


def test_a_contender_significantly_below_the_trivial_reference_is_said_to_answer_worse():
    # 40 questions: abstain right on 10 (the unanswerable ones), rag on 1, lora on all
    abstain = evaluation("abstain", right((0, 10)))
    rag = evaluation("rag", right((0, 1)), latency=900)
    lora = evaluation("lora", right((0, 40)), latency=100)
    decision = recommend([abstain, rag, lora], "qa_score", 0, trivial_words=QA_WORDS, remedy=QA_REMEDY)
    assert any(r.startswith("rag answers worse than the abstain baseline: 0.025 vs 0.250") for r in decision.reasons), (
        decision.reasons
    )
    assert not any(r.startswith("rag does not beat") for r in decision.reasons)
