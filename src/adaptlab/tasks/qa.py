"""`qa`: answers from the team's documents: free text, or the abstain answer where the documents do not say.

The headline, qa_score, is per row the token F1 on answerable questions (0 when it
abstained) and 1/0 for abstaining on unanswerable ones, so it weighs a right "I don't
know" as much as a right answer. References: `abstain` (always the abstain answer: its
qa_score is the share of unanswerable questions) and `extract` (the passage sentences that
best match the question, abstaining below a similarity threshold fitted on training rows).
With `task.costs` (what a right answer, a hallucination and a wrong abstention are worth) the
headline is `utility` instead: the mean value per question (task.AnswerCosts says how each
row is valued).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from adaptlab.knowledge.measures import is_abstention, qa_aggregate, qa_rows
from adaptlab.task import DEFAULT_ABSTAIN
from adaptlab.tasks import Metric, TaskKind
from adaptlab.tasks.degenerate import SAME_ANSWER_SHARE, cut_answers, one_answer_or_none, same_answer

METRICS = (
    Metric(
        "qa_score",
        "qa score",
        "per row: token F1 on answerable questions (0 when it abstained), 1/0 for abstaining on unanswerable ones",
        column="qa score",
    ),
    Metric(
        "utility",
        "utility",
        "task.costs: the mean value per question of right answers, less hallucinations and wrong "
        "abstentions, in the costs' units",
    ),
    Metric(
        "token_f1",
        "token F1 (answerable)",
        "word overlap F1 with the reference, on the answerable questions (0 where it abstained)",
        column="F1 answerable",
    ),
    Metric("rouge_l", "ROUGE-L", "longest common word sequence F-score, answerable questions"),
    Metric("similarity", "similarity", "the embedder's cosine of answer and reference, answerable questions"),
    Metric(
        "false_abstention_rate",
        "false abstention",
        "answerable questions answered with the abstain answer",
        higher_is_better=False,
    ),
    Metric(
        "abstention_rate",
        "abstention (unanswerable)",
        "unanswerable questions answered with the abstain answer (the right answer)",
        column="abstain unans.",
    ),
    Metric(
        "hallucination_rate",
        "hallucination",
        "unanswerable questions answered anyway",
        column="halluc.",
        higher_is_better=False,
    ),
    Metric(
        "unsupported_figures",
        "unsupported figures",
        "answers holding a number, amount or date found neither in the passages given nor in the reference",
        column="unsup. fig.",
        higher_is_better=False,
    ),
    Metric("recall_at_k", "recall@k", "gold source pages among the retrieved passages", column="recall@k"),
    Metric("mrr", "MRR", "reciprocal rank of the first gold source"),
    Metric("citing", "citing", "answers that name a retrieved passage"),
)


def rows(
    expected: list[str], predicted: list[str], labels: list[str] | None = None, context: dict | None = None
) -> dict[str, np.ndarray]:
    """knowledge.measures.qa_rows, given `context` (the abstain answer, and what the rows were given and retrieved);
    with `costs` in it (task.AnswerCosts), the value of each answer too (`utility`)."""
    context = {"abstain": DEFAULT_ABSTAIN} | (context or {})
    costs = context.pop("costs", None)
    out = qa_rows(expected, predicted, **context)
    if costs:
        out["utility"] = utility(out, costs)
    return out


def utility(rows: dict[str, np.ndarray], costs) -> np.ndarray:
    """Each answer's value (task.AnswerCosts): right_answer x F1 - hallucination x (1 - F1) where it answered an
    answerable question, -hallucination where it answered an unanswerable one, -wrong_abstention where it abstained
    on an answerable one, 0 where it rightly abstained.

    >>> from adaptlab.task import AnswerCosts
    >>> r = {"answerable": np.array([1.0, 1, 0, 0]), "abstained": np.array([0.0, 1, 0, 1])}
    >>> r["token_f1"] = np.array([0.5, 0, 0, 0])
    >>> utility(r, AnswerCosts(right_answer=1, hallucination=3, wrong_abstention=0.5)).tolist()
    [-1.0, -0.5, -3.0, 0.0]
    """
    f1, answerable, abstained = rows["token_f1"], rows["answerable"] == 1, rows["abstained"] == 1
    answered = costs.right_answer * f1 - costs.hallucination * (1 - f1)
    return np.where(
        abstained,
        np.where(answerable, -costs.wrong_abstention, 0.0),
        np.where(answerable, answered, -costs.hallucination),
    )


def aggregate(rows: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, float]:
    """knowledge.measures.qa_aggregate, and the mean utility where the task prices its answers."""
    out = qa_aggregate(rows, idx)
    return out | ({"utility": float(rows["utility"][idx].mean())} if "utility" in rows and len(idx) else {})


def context(task, test, predictions: list) -> dict:
    """What the qa measures read beside the answers: the abstain answer, the passages each row was given, the gold
    sources and the retrieved ones (when there are both), and the embedder's cosine of each answer with its
    reference."""
    from adaptlab.models.embedder import default_embedder, encode_cached

    embedder = default_embedder()
    answers, references = (
        embedder.encode([p.output for p in predictions]),
        encode_cached(embedder, test.outputs),
    )  # the references are the same for every contender
    out = (task.scoring or {}) | {
        "given": [[g["text"] for g in p.passages] for p in predictions],
        "similarity": (answers * references).sum(axis=1),
    }
    if any(e.sources for e in test) and any(p.passages for p in predictions):
        out |= {
            "gold": [list(e.sources) for e in test],
            "retrieved": [[g["source"] for g in p.passages] for p in predictions],
        }
    return out


def checks(expected: list[str], predicted: list[str], cut: list[bool], abstain: str = DEFAULT_ABSTAIN) -> list[str]:
    """Abstaining on (nearly) every answerable question; (nearly) one answer for (nearly) every row, or for every row
    it did not abstain on (75% one answer and 25% "I don't know"); answers cut at the limit."""
    answerable = [p for e, p in zip(expected, predicted) if not is_abstention(e, abstain)]
    declined = sum(is_abstention(p, abstain) for p in answerable)
    out = []
    if answerable and declined / len(answerable) >= SAME_ANSWER_SHARE:
        out.append(
            f"abstained on {declined / len(answerable):.0%} of the answerable questions ({declined} "
            f"of {len(answerable)})"
        )
    declines = partial(is_abstention, abstain=abstain)
    out += same_answer(predicted, expected=expected, declines=declines)
    if not out:  # one answer besides the abstentions: not when abstaining is (nearly) all it does
        out = one_answer_or_none(predicted, declines, expected)
    return out + cut_answers(cut)


KIND = TaskKind(
    "qa",
    "answers from the team's documents, or the abstain answer where they do not say",
    headline="qa_score",
    row_key="qa_score",
    metrics=METRICS,
    rows=rows,
    aggregate=aggregate,
    context=context,
    references=("abstain", "extract"),
    trivial_words="always saying the abstain answer",
    remedy="try a bigger or remote model, retrieval settings (rag's k and retriever), or more training questions",
    checks=checks,
    generates=True,
    abstains=True,
    documents=True,
    priced="utility",
)
