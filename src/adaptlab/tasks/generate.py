"""`generate`: free text, scored against the reference answer by chrF (0-100).

Answers are generated, greedy, cut at task.max_new_tokens. References: `constant` (the
most frequent training output, for every input) and `nearest` (the output of the most
similar training input: when a lookup answers as well, the task may not need an LLM).
"""

from __future__ import annotations

import numpy as np

from adaptlab.knowledge.measures import token_f1
from adaptlab.metrics import chrf, json_fields
from adaptlab.tasks import Metric, TaskKind
from adaptlab.tasks.degenerate import cut_answers, same_answer

METRICS = (
    Metric(
        "chrf",
        "chrF",
        "character n-gram F-score (n = 1..6, beta 2; sacrebleu) against the reference, per row, averaged",
        scale=100,
        digits=1,
    ),
    Metric("exact_match", "exact match", "the share of answers identical to the reference", column="exact_match"),
    Metric("token_f1", "token F1", "SQuAD-style word overlap F1 with the reference"),
    Metric(
        "json_valid", "valid JSON", "the share of answers that parse as a JSON object (when every reference is one)"
    ),
    Metric(
        "field_precision", "field precision", "JSON answers: the share of the fields given that match the reference's"
    ),
    Metric("field_recall", "field recall", "JSON answers: the share of the reference's fields given right"),
    Metric("field_f1", "field F1", "JSON answers: F1 of field precision and recall (micro over fields)"),
)


def rows(
    expected: list[str], predicted: list[str], labels: list[str] | None = None, context: dict | None = None
) -> dict[str, np.ndarray]:
    """Per row: exact, token_f1, chrf and, when every expected output is a JSON object, json_valid and the field
    counts (true positives, predicted, expected)."""
    out = {"exact": np.array([float(e == p) for e, p in zip(expected, predicted)])}
    out["token_f1"] = np.array([token_f1(p, e) for e, p in zip(expected, predicted)])
    out["chrf"] = np.array([chrf(p, e) for e, p in zip(expected, predicted)])
    references = [json_fields(e) for e in expected]
    if expected and all(r is not None for r in references):
        fields = [r for r in references if r is not None]  # every one
        hypotheses = [json_fields(p) for p in predicted]
        out["json_valid"] = np.array([float(h is not None) for h in hypotheses])
        out["field_tp"] = np.array(
            [sum(1 for k, v in (h or {}).items() if k in r and r[k] == v) for h, r in zip(hypotheses, fields)],
            dtype=float,
        )
        out["field_pred"] = np.array([len(h or {}) for h in hypotheses], dtype=float)
        out["field_ref"] = np.array([len(r) for r in fields], dtype=float)
    return out


def aggregate(rows: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, float]:
    """The scalar metrics over the rows `idx` (a bootstrap resample, or every row)."""
    out = {
        "exact_match": float(rows["exact"][idx].mean()),
        "token_f1": float(rows["token_f1"][idx].mean()),
        "chrf": float(rows["chrf"][idx].mean()),
    }
    if "json_valid" in rows:
        tp, pred, ref = rows["field_tp"][idx].sum(), rows["field_pred"][idx].sum(), rows["field_ref"][idx].sum()
        precision, recall = (tp / pred if pred else 0.0), (tp / ref if ref else 0.0)
        out |= {
            "json_valid": float(rows["json_valid"][idx].mean()),
            "field_precision": float(precision),
            "field_recall": float(recall),
            "field_f1": float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0,
        }
    return out


def checks(expected: list[str], predicted: list[str], cut: list[bool], abstain: str = "") -> list[str]:
    """(Nearly) one answer for (nearly) every row, unless the references are that answer about as often; answers that
    run to the token limit."""
    return same_answer(predicted, expected=expected) + cut_answers(cut)


KIND = TaskKind(
    "generate",
    "free text, scored against the reference answer",
    headline="chrf",
    row_key="chrf",
    metrics=METRICS,
    rows=rows,
    aggregate=aggregate,
    references=("constant", "nearest"),
    trivial_words="always answering the most frequent training output",
    remedy="try a bigger or remote model, more training rows, or a prompt that shows the answer's form",
    checks=checks,
    generates=True,
)
