"""Degenerate answers (adaptlab.tasks.degenerate), through each task kind's own `checks`: nearly one answer (folded
case, spacing, digits, or character similarity), one answer plus abstentions, and the legitimate cases that must
pass (varied answers, references that are themselves one answer, a balanced classifier)."""

from __future__ import annotations

import time

import numpy as np

from adaptlab.decide import recommend
from adaptlab.evaluation import Evaluation
from adaptlab.metrics import bootstrap_ci
from adaptlab.tasks import task_kind
from adaptlab.tasks.degenerate import fold, same_answer

ABSTAIN = "I don't know"
COLUMNS = ["name", "email", "city", "age", "phone", "country"]
TABLES = ["users", "orders", "shops", "staff", "items"]
SQL = [f"SELECT {COLUMNS[i % 6]} FROM {TABLES[i % 5]} WHERE id = {i + 1}" for i in range(30)]  # 30 distinct queries
FACTS = [f"The {w} is covered up to ${(i + 1) * 100} per year." for i, w in enumerate("abcdefghijklmnopqrstuvwxyzABCD")]


def checks(kind: str, expected: list[str], predicted: list[str]) -> list[str]:
    return task_kind(kind).checks(expected, predicted, [False] * len(predicted), ABSTAIN)


def test_answers_differing_only_in_numbers_are_one_answer():
    near = [f"SELECT 1; -- {n}" for n in range(1, 31)]
    assert len(set(near)) == 30 and fold(near[0]) == fold(near[29]) == "select #; -- #"
    assert checks("generate", SQL, near) == [
        "gave nearly the same answer ('SELECT 1; -- 1', differing only in numbers, case or spacing) "
        "to 100% of the test rows (30 of 30)"
    ]
    assert checks("qa", FACTS, near)[0].startswith("gave nearly the same answer ('SELECT 1; -- 1', differing only in")


def test_answers_differing_only_in_case_spacing_or_end_punctuation_are_one_answer():
    variants = ["Paris", "paris.", "  PARIS ", "Paris!", "paris"] * 5 + [f"Town {i}" for i in range(5)]
    (finding,) = checks("generate", FACTS, variants)
    assert finding == (
        "gave nearly the same answer ('Paris', differing only in case, spacing or end punctuation) "
        "to 83% of the test rows (25 of 30)"
    )


def test_answers_a_character_or_two_apart_are_one_answer():
    base = "the refund is processed within the normal billing cycle of the account"
    typos = [base[:i] + "x" + base[i + 1 :] for i in range(10, 40)]  # one letter changed each: ~99% alike
    (finding,) = checks("generate", FACTS, typos)
    assert "nearly the same answer" in finding and "or one at least 90% alike, character by character" in finding
    assert "(30 of 30)" in finding


def test_one_exact_answer_keeps_its_plain_words():
    assert checks("generate", list("abcde"), ["x"] * 4 + ["y"]) == [
        "gave the same answer ('x') to 80% of the test rows (4 of 5)"
    ]


def test_qa_one_answer_and_abstentions_on_the_rest_is_flagged_with_both_shares():
    # 40 questions, the last 8 unanswerable; it says one thing to 30 and "I don't know" to 10 (8 rightly, 2 not)
    expected = FACTS + [f"Dental plan {i} pays ${i}0." for i in range(2)] + [ABSTAIN] * 8
    predicted = ["The plan covers it."] * 30 + [ABSTAIN] * 10
    assert checks("qa", expected, predicted) == [
        "gave the same answer ('The plan covers it.') to 75% of the test rows (30 of 40) and abstained on 25% of "
        "the test rows (10 of 40), where 20% of the expected answers are that answer or an abstention"
    ]
    # with the numbers varying, it is still one answer; with the answers varied, it is not
    numbered = [f"The plan covers {i} visits." for i in range(30)] + [ABSTAIN] * 10
    assert "differing only in numbers" in checks("qa", expected, numbered)[0]
    assert checks("qa", expected, expected[:30] + [ABSTAIN] * 10) == []


def test_qa_mostly_unanswerable_questions_rightly_declined_are_not_one_answer():
    # 20 questions, 16 unanswerable: abstaining on them and answering the other four (two alike) is right
    expected = ["Ten days.", "Ten days.", "It is $500.", "Twelve."] + [ABSTAIN] * 16
    assert checks("qa", expected, list(expected)) == []
    assert checks("qa", expected, ["Ten days."] * 4 + [ABSTAIN] * 16) == []  # 2 of 4 answers right: not degenerate


def test_qa_abstaining_on_everything_is_named_once():
    expected = FACTS[:8] + [ABSTAIN] * 2
    assert checks("qa", expected, [ABSTAIN] * 10) == ["abstained on 100% of the answerable questions (8 of 8)"]


def test_varied_answers_are_not_flagged():
    assert checks("generate", SQL, SQL) == []
    assert checks("generate", SQL, [q.replace("WHERE", "where") for q in SQL]) == []
    assert checks("qa", FACTS, FACTS) == []
    assert checks("qa", FACTS, [f"It pays ${i}." for i in range(20)] + FACTS[20:]) == []  # 20 of 30: below 80%


def test_references_that_are_themselves_one_answer_excuse_a_contender_that_matches_them():
    # an extraction task where most documents hold no fields: the references are mostly "{}"
    expected = ["{}"] * 26 + ['{"name": "Ann"}', '{"city": "Oslo"}', '{"age": 30}', '{"name": "Bo"}']
    assert checks("generate", expected, list(expected)) == []
    assert checks("generate", expected, ["{}"] * 28 + ['{"name": "Ann"}', "{ }"]) == []  # a little more often: fine
    # always "{}" where only half the references are: flagged, with the references' share in the words
    half = ["{}"] * 15 + [f'{{"id": {i}}}' for i in range(15)]
    assert checks("generate", half, ["{}"] * 30) == [
        "gave the same answer ('{}') to 100% of the test rows (30 of 30), where 50% of the expected answers are "
        "that answer"
    ]


def test_a_balanced_classifier_whose_labels_differ_only_in_a_number_is_not_flagged():
    labels = [f"{n} star{'s' if n > 1 else ''}" for n in range(1, 6)]
    predicted = labels * 6  # 30 answers, 6 of each label
    assert checks("classify", predicted[::-1], predicted) == []
    assert same_answer(predicted) != []  # folding digits would have merged them: classify compares labels exactly
    assert checks("classify", predicted, ["3 stars"] * 24 + labels + ["1 star"]) == [
        "gave the same label ('3 stars') to 83% of the test rows (25 of 30)"
    ]


def test_the_checks_take_milliseconds_on_a_few_hundred_long_answers():
    rng = np.random.default_rng(0)
    words = ["policy", "claim", "refund", "visit", "dental", "vision", "plan", "limit", "annual", "member"]
    answers = [" ".join(rng.choice(words, 40)) for _ in range(400)]  # ~280 characters each, varied
    start = time.perf_counter()
    assert checks("generate", answers, answers[::-1]) == []
    assert time.perf_counter() - start < 3.0  # measured ~0.35 s on 2 busy cores


def _evaluation(name: str, expected: list[str], predicted: list[str], traits: dict, latency: float) -> Evaluation:
    """An evaluation of generated answers whose chrF scores and flags come from the generate kind itself."""
    spec = task_kind("generate")
    scores = spec.rows(expected, predicted)["chrf"]
    flags = [] if traits.get("constant") else spec.checks(expected, predicted, [False] * len(predicted))
    return Evaluation(
        name,
        {"chrf": float(scores.mean())},
        {"chrf": bootstrap_ci(scores)},
        latency,
        latency,
        50,
        10,
        0.0,
        1000,
        scores.tolist(),
        [],
        traits={"kind": name, "family": "prompted", "tier": 2} | traits,
        flags=flags,
    )


def test_the_recommender_passes_over_a_near_constant_contender_found_by_the_checks():
    # text to SQL: lora writes one query with the row's id in it (high chrF: most characters are the template);
    # few_shot gets every third query right and writes a plain select on the rest
    constant = _evaluation("constant", SQL, ["SELECT COUNT(*) FROM orders"] * 30, {"llm": False, "constant": True}, 1)
    lora = _evaluation("lora", SQL, [f"SELECT name FROM users WHERE id = {i + 1}" for i in range(30)], {}, 90)
    few = _evaluation("few_shot", SQL, [q if i % 3 == 0 else "SELECT * FROM users" for i, q in enumerate(SQL)], {}, 80)
    assert lora.flags == [
        "gave nearly the same answer ('SELECT name FROM users WHERE id = 1', differing only in numbers, case or "
        "spacing) to 100% of the test rows (30 of 30), where 3% of the expected answers are that answer"
    ]
    assert few.flags == [] and lora.metrics["chrf"] > few.metrics["chrf"] > constant.metrics["chrf"]
    decision = recommend([constant, lora, few], "chrf", 0)
    assert decision.choice == "few_shot"
    assert f"lora is not recommended: it {lora.flags[0]}" in decision.reasons
    lora.flags = []  # without the finding the higher score wins: the checks decided it
    assert recommend([constant, lora, few], "chrf", 0).choice == "lora"
