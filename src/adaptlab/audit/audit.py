"""`audit()`: score a training set on the five criteria, plus leakage, tokens and cost: an `AuditReport`.

    report = audit(train, test, kind="classify", instruction="Route the message.")
    report.criteria["diverse"].flagged   # [Flag(line=17, reason="exact duplicate of line 3"), ...]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import adaptlab.audit.criteria as criteria
from adaptlab.audit.criteria import NEAR_DUPLICATE, Criterion, normalise_text
from adaptlab.data import Dataset
from adaptlab.tasks import task_kind


@dataclass
class AuditReport:
    criteria: dict[str, Criterion]
    leakage: list[dict]
    tokens: dict

    def to_dict(self) -> dict:
        return {"criteria": {k: c.to_dict() for k, c in self.criteria.items()}, "leakage": self.leakage, "tokens": self.tokens}

    def scores(self) -> dict[str, float | None]:
        return {k: c.score for k, c in self.criteria.items()}


def audit(train: Dataset, test: Dataset | None = None, *, kind: str = "classify", instruction: str | None = None, embedder=None, count_tokens=None, context_length: int | None = None, k_shots: int = 4) -> AuditReport:
    """Audit `train` (against `test` when given). `count_tokens(text) -> int` enables the token figures."""
    from adaptlab.models.embedder import encode_cached

    if embedder is None:
        from adaptlab.models.embedder import default_embedder

        embedder = default_embedder()
    labelled = task_kind(kind).labelled  # label checks (coverage of labels, balance, spelling variants) only where answers are labels
    vectors = encode_cached(embedder, train.inputs)
    sims = vectors @ vectors.T  # 10k rows: 400 MB, computed once for every criterion
    near = criteria.close_pairs(sims, train.inputs)
    test_vectors = encode_cached(embedder, test.inputs) if test is not None and len(test) else None
    found = {
        "representative": criteria.representative(train, vectors, test, test_vectors, labelled),
        "diverse": criteria.diverse(train, sims, near),
        "balanced": criteria.balanced(train, labelled),
        "consistent": criteria.consistent(train, sims, near, labelled),
        "relevant": criteria.relevant(train, vectors, sims, instruction, embedder),
    }
    for criterion in found.values():
        if criterion.score is not None and not criterion.flagged and criterion.name != "balanced":
            criterion.hint = "nothing flagged"
    return AuditReport(found, _leakage(train, vectors, test, test_vectors), _tokens(train, count_tokens, k_shots, context_length))


def _leakage(train: Dataset, vectors: np.ndarray, test: Dataset | None, test_vectors: np.ndarray | None) -> list[dict]:
    """Pairs (test line, train line) whose inputs are the same or near duplicates."""
    if test_vectors is None:
        return []

    exact = {}
    for e in train:
        exact.setdefault(normalise_text(e.input), e.line)
    sims = test_vectors @ vectors.T
    best = sims.argmax(axis=1)
    pairs = []
    for row, e in enumerate(test):
        if normalise_text(e.input) in exact:
            pairs.append({"test_line": e.line, "train_line": exact[normalise_text(e.input)], "kind": "exact"})
        elif sims[row, best[row]] >= NEAR_DUPLICATE:
            pairs.append({"test_line": e.line, "train_line": train.examples[best[row]].line, "kind": "near", "similarity": round(float(sims[row, best[row]]), 3)})
    return pairs


def _tokens(train: Dataset, count_tokens, k_shots: int, context_length: int | None) -> dict:
    """Token counts and the cost they imply: training tokens per epoch, tokens k shots add to a prompt.

    `longer_than_context` lists rows whose input and output alone (before the chat
    template and instruction) exceed the model's context.
    """
    if count_tokens is None:
        return {}
    inputs = np.array([count_tokens(e.input) for e in train])
    outputs = np.array([count_tokens(e.output) for e in train])
    per_example = inputs + outputs
    return {
        "input_mean": round(float(inputs.mean()), 1),
        "input_max": int(inputs.max()),
        "output_mean": round(float(outputs.mean()), 1),
        "output_max": int(outputs.max()),
        "training_tokens_per_epoch_excluding_prompt_template": int(per_example.sum()),
        "prompt_tokens_added_by_k_shots": {"k": k_shots, "tokens": int(round(k_shots * float(per_example.mean())))},
        "context_length": context_length,
        "longer_than_context": [e.line for e, n in zip(train, per_example) if context_length and n > context_length],
    }
