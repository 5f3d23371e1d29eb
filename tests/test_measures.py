"""QA measures on hand-made and hand-labelled rows about a fictional benefits plan: no model involved."""

import math

import numpy as np
import pytest

from adaptlab.knowledge.measures import (
    DEFAULT_ABSTAIN,
    cites,
    figures,
    is_abstention,
    qa_aggregate,
    qa_rows,
    retrieval_scores,
    rouge_l,
    unsupported_figures,
)

DEDUCTIBLE = (
    "Harbor Basic plan: the annual deductible is $1,500 per person and $3,000 per family. After the "
    "deductible, the plan pays 80% of covered costs (you pay 20% coinsurance)."
)
COPAYS = (
    "Primary care visits cost a $25 copay; specialist visits cost a $50 copay. Urgent care has a $75 "
    "copay and emergency room visits a $250 copay, waived if you are admitted."
)
DATES = (
    "Open enrollment runs from November 1, 2024 to November 15, 2024. Coverage starts January 1, 2025. "
    "The out-of-pocket maximum is $6,500 per person."
)
DRUGS = (
    "Generic drugs cost $10 for a 30-day supply; preferred brand drugs cost $40. Mail order gives a "
    "90-day supply for two copays."
)
ELIGIBILITY = "New employees may enroll within 31 days of their hire date. Dependents are covered up to age 26."

# (answer, passages given, reference, a person's label: does the answer state a figure its sources do not?)
INVENTED_FIGURES = [
    (
        "The deductible is $1,500 per person.",
        [DEDUCTIBLE],
        "The deductible is $1,500 per person and $3,000 per family.",
        False,
    ),
    (
        "The deductible is $1,500.00 for an individual and $3000 for a family.",
        [DEDUCTIBLE],
        "$1,500 per person, $3,000 per family.",
        False,
    ),
    ("The deductible is $2,000 per person.", [DEDUCTIBLE], "The deductible is $1,500 per person.", True),
    ("After the deductible the plan pays 80%, so you pay 20 percent.", [DEDUCTIBLE], "You pay 20% coinsurance.", False),
    ("You pay 30% coinsurance after the deductible.", [DEDUCTIBLE], "You pay 20% coinsurance.", True),
    ("A specialist visit is a $50 copay.", [COPAYS], "Specialist visits cost a $50 copay.", False),
    ("Specialist visits cost $45.", [COPAYS], "Specialist visits cost a $50 copay.", True),
    (
        "Emergency room visits cost $250, waived if you are admitted.",
        [COPAYS],
        "A $250 copay, waived if admitted.",
        False,
    ),
    ("You pay $25 for primary care and $50.00 for a specialist.", [COPAYS], "$25 primary care, $50 specialist.", False),
    ("1. Primary care: $25 copay\n2. Specialist: $50 copay", [COPAYS], "$25 primary care, $50 specialist.", False),
    ("Open enrollment ends on 11/15/2024.", [DATES], "Open enrollment ends November 15, 2024.", False),
    ("Open enrollment ends November 30, 2024.", [DATES], "Open enrollment ends November 15, 2024.", True),
    ("Coverage begins on 2025-01-01.", [DATES], "Coverage starts January 1, 2025.", False),
    ("Coverage starts January 1.", [DATES], "Coverage starts January 1, 2025.", False),
    (
        "The plan year runs from January 1, 2025 to December 31, 2025.",
        [DATES],
        "Coverage starts January 1, 2025.",
        True,
    ),
    ("The out-of-pocket maximum is $6,500 [Harbor_Basic.pdf#page=4].", [DATES], "$6,500 per person.", False),
    (
        "Generic drugs cost $10 for a 30-day supply, and mail order gives a 90-day supply.",
        [DRUGS],
        "Generic drugs cost $10 for 30 days.",
        False,
    ),
    (
        "New employees have 31 days from their hire date to enroll.",
        [ELIGIBILITY],
        "Within 31 days of the hire date.",
        False,
    ),
    ("New employees have 30 days to enroll.", [ELIGIBILITY], "Within 31 days of the hire date.", True),
    (
        "The deductible is $1,500 per person.",
        [],
        "The deductible is $1,500 per person.",
        False,
    ),  # closed book: the reference alone supports
]

# (answer, a person's label: does it decline to answer?)
ABSTENTIONS = [
    ("I don't know.", True),
    ("i dont know", True),
    ("I do not know the answer to that.", True),
    ("The documents do not say when the dental waiting period ends.", True),
    ("That is not mentioned in the documents.", True),
    ("Sorry, I can't find that in the plan documents.", True),
    ("There is no information about vision coverage in the provided passages.", True),
    ("I'm not sure. The passages don't cover dependent care accounts.", True),
    ("I don't know the 2025 deductible for the Plus plan.", True),
    ("I don't know, but you could ask HR.", True),
    ("The deductible is $1,500 per person; I don't know whether it changes next year.", False),
    ("I'm not sure, but I think the specialist copay is $50.", False),
    ("I'm not sure, but I believe dental cleanings are covered twice a year.", False),
    ("Specialist visits cost a $50 copay. I'm not sure about out-of-network specialists.", False),
    ("I don't know exactly. The plan pays 80% after the deductible.", False),
    ("Not sure, it may be 80%.", False),
    (
        "Primary care costs $25 and specialists $50 once you meet the deductible, urgent care is "
        "$75, and the emergency room is $250 unless you are admitted, although I do not know the "
        "telehealth price.",
        False,
    ),
    ("Coverage starts January 1, 2025.", False),
]


def test_invented_figures_agree_with_the_hand_labels():
    agree = [
        bool(unsupported_figures(answer, given, reference)) == label
        for answer, given, reference, label in INVENTED_FIGURES
    ]
    print(f"invented figures: the measure agrees with {sum(agree)}/{len(agree)} hand labels")
    assert [row[0] for row, ok in zip(INVENTED_FIGURES, agree) if not ok] == []
    assert len(agree) == 20 and sum(label for *_, label in INVENTED_FIGURES) == 6


def test_unsupported_figures_names_the_invented_ones():
    assert unsupported_figures("The deductible is $2,000 and coinsurance 20%.", [DEDUCTIBLE], "") == ["2000"]
    assert unsupported_figures("Open enrollment ends November 30, 2024.", [DATES], "") == ["2024-11-30"]
    # a figure worked out from the sources (two $40 copays) is flagged: a known limit of string matching
    assert unsupported_figures("Brand drugs by mail cost $80 for 90 days.", [DRUGS], "") == ["80"]


def test_abstention_agrees_with_the_hand_labels():
    agree = [is_abstention(answer, DEFAULT_ABSTAIN) == label for answer, label in ABSTENTIONS]
    print(f"abstention: the measure agrees with {sum(agree)}/{len(agree)} hand labels")
    assert [row[0] for row, ok in zip(ABSTENTIONS, agree) if not ok] == []
    assert len(agree) == 18 and sum(label for _, label in ABSTENTIONS) == 10


def test_abstention_uses_the_tasks_own_answer():
    assert is_abstention("not in the documents!", "Not in the documents.")
    assert is_abstention("Not in the documents, sorry.", "Not in the documents")
    assert not is_abstention("Not in the documents.", DEFAULT_ABSTAIN + "x")  # neither the answer nor a listed refusal
    assert is_abstention("   ", DEFAULT_ABSTAIN)  # an empty answer claims nothing
    long = "I don't know. " + "The plan has many parts and the handbook explains each of them in turn " * 3
    assert not is_abstention(long, DEFAULT_ABSTAIN)  # over ABSTAIN_MAX_WORDS: an answer


def test_figures_normalise_money_percentages_and_numbers():
    assert figures("$1,500") == figures("1500") == figures("1,500.00") == figures("$1.5 thousand") == {"1500"}
    assert figures("20%") == figures("20 percent") == {"20"}
    assert figures("0.50") == {"0.5"} and figures("the 3rd visit") == {"3"}
    assert figures("1,500") != figures("1.500")  # a decimal point is not a thousands separator


def test_figures_normalise_dates():
    same = ["March 3, 2024", "Mar. 3rd, 2024", "3 March 2024", "2024-03-03", "3/3/2024", "03/03/24"]
    assert [figures(d) for d in same] == [{"2024-03-03"}] * len(same)
    assert figures("March 2024") == {"2024-03"} and figures("January 1") == {"--01-01"}
    assert figures("25/12/2024") == {"2024-12-25"}  # cannot be month 25: read day first
    assert figures("2/30/2024") == {"2", "30", "2024"}  # no such date: plain numbers
    assert figures("Call 8:00 am to 5:30 pm.") == {"08:00", "17:30"}


def test_figures_skip_list_markers_labels_and_page_references():
    assert figures("1. Deductible\n2) Copay $25") == {"25"}
    assert figures("See [2], [hb.pdf#page=3] and page 12.") == set()
    assert figures("20.") == {"20"}  # a lone number is an answer, not a list marker


def test_rouge_l_by_hand():
    # LCS of "the plan pays 80 percent" and "the plan pays eighty percent" is 4 words of 5 each: P = R = F = 0.8
    assert rouge_l("the plan pays 80 percent", "the plan pays eighty percent") == pytest.approx(0.8)
    assert rouge_l("Deductibles apply.", "deductible applies") == pytest.approx(1.0)  # Porter stems
    assert rouge_l("copay", "deductible") == 0.0
    assert rouge_l("Die Prämie steigt", "die prämie steigt nicht") == pytest.approx(2 * 3 / 7)  # P 3/3, R 3/4


def test_rouge_l_matches_the_library_default_on_ascii():
    from rouge_score import rouge_scorer

    default = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    hyp, ref = "Specialist visits cost a $50 copay, waived_if admitted.", "The specialist copay is $50 per visit."
    assert rouge_l(hyp, ref) == pytest.approx(default.score(ref, hyp)["rougeL"].fmeasure)


def test_retrieval_scores_by_hand():
    retrieved = ["plan.pdf#page=1", "faq.md", "hb.pdf#page=2", "hb.pdf#page=3"]
    assert retrieval_scores(["hb.pdf#page=3", "faq.md"], retrieved) == (1.0, 0.5)  # both found; the first at rank 2
    assert retrieval_scores(["hb.pdf"], retrieved) == (1.0, 1 / 3)  # any page of hb.pdf: rank 3
    assert retrieval_scores(["hb.pdf#page=9", "plan.pdf"], retrieved) == (0.5, 1.0)
    assert retrieval_scores(["other.pdf#page=1"], retrieved) == (0.0, 0.0)
    assert all(math.isnan(x) for x in retrieval_scores([], retrieved))


def test_cites_names_a_retrieved_source():
    retrieved = ["employee_handbook.pdf#page=3", "faq"]
    assert cites("The copay is $25 [employee_handbook.pdf#page=3].", retrieved)
    assert cites("See employee_handbook.pdf, page 7.", retrieved)  # its file name, any page
    assert cites("As the FAQ entry says [faq].", retrieved)
    assert not cites("As the faq says.", retrieved)  # an id without extension counts only in brackets
    assert not cites("See benefits.pdf.", retrieved)
    assert not cites("See old_employee_handbook.pdf.", retrieved)


def test_qa_score_per_row():
    rows = qa_rows(
        ["the copay is $25", "I don't know", "I don't know", "the copay is $25"],
        ["the copay is $50", "I don't know.", "It is $25.", "Not sure."],
        DEFAULT_ABSTAIN,
    )
    # row 0: 3 of 4 tokens shared: F1 0.75; row 1 abstains rightly: 1; row 2 answers an unanswerable question: 0;
    # row 3 abstains on an answerable one: 0
    assert rows["qa_score"] == pytest.approx([0.75, 1.0, 0.0, 0.0])
    assert list(rows["answerable"]) == [1, 0, 0, 1] and list(rows["abstained"]) == [0, 1, 0, 1]
    assert rows["token_f1"][3] == 0.0 and rows["rouge_l"][3] == 0.0
    assert list(rows["unsupported"]) == [1, 0, 1, 0]  # $50 is not in the reference; $25 is not in "I don't know"


def test_hallucination_rate_counts_answered_unanswerable_rows():
    expected = ["The deductible is $1,500.", DEFAULT_ABSTAIN, DEFAULT_ABSTAIN, "Specialists cost $50.", DEFAULT_ABSTAIN]
    predicted = [
        "The deductible is $1,500.",
        "The vision copay is $15.",
        "I don't know.",
        "I'm not sure.",
        "The documents do not mention it.",
    ]
    rows = qa_rows(
        expected, predicted, DEFAULT_ABSTAIN, given=[[DEDUCTIBLE]] * 5, similarity=np.array([1.0, 0.4, 0.9, 0.8, 0.7])
    )
    m = qa_aggregate(rows, np.arange(5))
    assert m["hallucination_rate"] == pytest.approx(1 / 3) and m["abstention_rate"] == pytest.approx(2 / 3)
    assert m["false_abstention_rate"] == 0.5
    assert m["qa_score"] == pytest.approx((1 + 0 + 1 + 0 + 1) / 5)
    assert m["token_f1"] == pytest.approx(0.5) and m["similarity"] == pytest.approx(
        0.5
    )  # answerable rows: 1.0, and 0 for abstaining
    assert m["unsupported_figures"] == 0.5  # answered rows 0 and 1; "$15" is in no source
    assert "recall_at_k" not in m and "citing" not in m


def test_empty_denominators_are_nan_and_absent_rows_leave_keys_out():
    expected = ["The copay is $25.", DEFAULT_ABSTAIN, "It starts January 1."]
    predicted = ["The copay is $25 [hb.pdf#page=2].", "I don't know.", "I don't know."]
    gold, retrieved = (
        [["hb.pdf#page=2"], [], ["hb.pdf"]],
        [["hb.pdf#page=2", "x.md"], ["x.md"], ["x.md", "hb.pdf#page=5"]],
    )
    rows = qa_rows(expected, predicted, DEFAULT_ABSTAIN, gold=gold, retrieved=retrieved)
    m = qa_aggregate(rows, np.arange(3))
    assert m["recall_at_k"] == 1.0 and m["mrr"] == pytest.approx((1 + 1 / 2) / 2) and m["citing"] == 1.0
    only_unanswerable = qa_aggregate(rows, np.array([1, 1]))  # a resample without answerable or gold rows
    assert math.isnan(only_unanswerable["token_f1"]) and math.isnan(only_unanswerable["false_abstention_rate"])
    assert math.isnan(only_unanswerable["recall_at_k"]) and math.isnan(
        only_unanswerable["unsupported_figures"]
    )  # nothing answered
    assert only_unanswerable["abstention_rate"] == 1.0 and only_unanswerable["qa_score"] == 1.0
    answerable_only = qa_rows(expected[:1], predicted[:1], DEFAULT_ABSTAIN)
    keys = qa_aggregate(answerable_only, np.arange(1)).keys()
    assert (
        "hallucination_rate" not in keys
        and "abstention_rate" not in keys
        and "similarity" not in keys
        and "mrr" not in keys
    )
    assert math.isnan(qa_aggregate(qa_rows([], [], DEFAULT_ABSTAIN), np.arange(0))["qa_score"])


def test_qa_rows_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="2 references but 1 answers"):
        qa_rows(["a", "b"], ["a"], DEFAULT_ABSTAIN)
