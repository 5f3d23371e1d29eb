"""`audit()`: score a training set on the five criteria, plus leakage, tokens and cost: an `AuditReport`.

    report = audit(train, test, kind="classify", instruction="Route the message.")
    report.criteria["diverse"].flagged   # [Flag(line=17, reason="exact duplicate of line 3"), ...]

Conversations (`Dataset.conversations`: a row per answer, its input the history before it) are audited as wholes
where rows of one conversation would be compared with each other: duplicates, near duplicates and off-topic data
are found between whole conversations (each conversation's turns written out), flagged at its line; identical inputs
are compared by their whole history; a test conversation leaks when a turn (history and answer) or its id is in
train, or when it nearly duplicates a training conversation; the token section adds each conversation's length
in turns and tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import adaptlab.audit.criteria as criteria
from adaptlab.audit.criteria import NEAR_DUPLICATE, Criterion, Flag, normalise_text
from adaptlab.data import Dataset, Example
from adaptlab.data.conversation import History
from adaptlab.data.leakage import conversation_leaks, conversations_of
from adaptlab.tasks import task_kind


@dataclass
class AuditReport:
    criteria: dict[str, Criterion]
    leakage: list[dict]
    tokens: dict

    def to_dict(self) -> dict:
        return {
            "criteria": {k: c.to_dict() for k, c in self.criteria.items()},
            "leakage": self.leakage,
            "tokens": self.tokens,
        }

    def scores(self) -> dict[str, float | None]:
        return {k: c.score for k, c in self.criteria.items()}


def audit(
    train: Dataset,
    test: Dataset | None = None,
    *,
    kind: str = "classify",
    instruction: str | None = None,
    embedder=None,
    count_tokens=None,
    context_length: int | None = None,
    k_shots: int = 4,
) -> AuditReport:
    """Audit `train` (against `test` when given). `count_tokens(text) -> int` enables the token figures."""
    from adaptlab.models.embedder import encode_cached

    if embedder is None:
        from adaptlab.models.embedder import default_embedder

        embedder = default_embedder()
    labelled = task_kind(
        kind
    ).labelled  # label checks (coverage of labels, balance, spelling variants) only where answers are labels
    vectors = encode_cached(embedder, train.inputs)
    sims = vectors @ vectors.T  # 10k rows: 400 MB, computed once for every criterion
    test_vectors = encode_cached(embedder, test.inputs) if test is not None and len(test) else None
    if train.conversations:
        whole = _Conversations(train, embedder)
        found = {
            "representative": criteria.representative(train, vectors, test, test_vectors, labelled),
            "diverse": whole.diverse(labelled),
            "balanced": criteria.balanced(train, labelled),
            "consistent": whole.per_conversation(
                criteria.consistent(
                    train,
                    sims,
                    whole.row_pairs(labelled),
                    labelled,
                    keys=[_history_key(e) for e in train],
                    groups=whole.group_of_row,
                )
            ),
            "relevant": whole.relevant(instruction, embedder),
        }
    else:
        near = criteria.close_pairs(sims, train.inputs)
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
    if train.conversations and test is not None and test.conversations:
        leakage = _conversation_leakage(whole, test, embedder)
    else:
        leakage = _leakage(train, vectors, test, test_vectors)
    return AuditReport(found, leakage, _tokens(train, count_tokens, k_shots, context_length))


def _history_key(e) -> str:
    """A row's input as identical inputs are compared: a conversation turn by its whole history, not its recent
    turns."""
    return (
        normalise_text(str(History(e.input.turns, recent=None)))
        if isinstance(e.input, History)
        else normalise_text(e.input)
    )


class _Conversations:
    """A conversation dataset seen whole: one unit per conversation (its turns written out, embedded), so that the
    turns of one conversation, which share their history, are never compared with each other."""

    def __init__(self, train: Dataset, embedder):
        from adaptlab.models.embedder import encode_cached

        self.train = train
        self.items = conversations_of(train)
        self.group_of_row = [0] * len(train)
        for n, c in enumerate(self.items):
            for i in c.rows:
                self.group_of_row[i] = n
        self.classified = all(train.examples[c.rows[-1]].turn is None for c in self.items)  # a label per conversation
        # each conversation as one row: its text, and its label when conversations are classified ("" when answered turn
        # by turn)
        self.view = Dataset(
            [
                Example(c.text, train.examples[c.rows[-1]].output if self.classified else "", c.line, conversation=c.id)
                for c in self.items
            ],
            train.source,
        )
        self.vectors = encode_cached(embedder, self.view.inputs)
        self.sims = self.vectors @ self.vectors.T
        self.near = criteria.close_pairs(self.sims, self.view.inputs)

    def _named(self, criterion: Criterion) -> Criterion:
        """Flags name the conversation (its id) as well as its line."""
        by_line = {c.line: c for c in self.items}
        for n, f in enumerate(criterion.flagged):
            c = by_line.get(f.line)
            if c is not None:
                criterion.flagged[n] = Flag(f.line, f"conversation {c.id}: {f.reason}", f.file)
        return criterion

    def diverse(self, labelled: bool) -> Criterion:
        """Exact and near duplicates between whole conversations (classified ones: with the same label)."""
        found = self._named(criteria.diverse(self.view, self.sims, self.near))
        turns = [len(c.spoken) for c in self.items]
        if not (self.classified and labelled):
            others = self.sims[~np.eye(len(self.items), dtype=bool)]
            found.stats = {
                "within_label_similarity": {},
                "mean_similarity_between_conversations": round(float(others.mean()), 3) if others.size else None,
            }
        found.stats |= {
            "unit": "conversation",
            "conversations": len(self.items),
            "turns_mean": round(float(np.mean(turns)), 1),
            "turns_max": int(max(turns)),
        }
        found.hint = "remove duplicated conversations; add conversations that go differently"
        return found

    def relevant(self, instruction: str | None, embedder) -> Criterion:
        """Conversations far from the other conversations (and from the instruction, when given)."""
        found = self._named(criteria.relevant(self.view, self.vectors, self.sims, instruction, embedder))
        found.stats["unit"] = "conversation"
        found.hint = "remove conversations that do not belong to this task"
        return found

    def per_conversation(self, criterion: Criterion) -> Criterion:
        """A row criterion whose flags are by line, one per conversation at most: scored by the conversations
        flagged."""
        found = self._named(criterion)
        found.score = criteria.flagged_score(len({f.line for f in found.flagged}), len(self.items))
        found.stats["unit"] = "conversation"
        return found

    def row_pairs(self, labelled: bool) -> dict[int, list[int]]:
        """Near-duplicate conversations as pairs of rows (their last answers), for the label checks of classified
        conversations."""
        if not labelled:
            return {}
        last = [c.rows[-1] for c in self.items]
        return {last[i]: [last[j] for j in js] for i, js in self.near.items()}


def _conversation_leakage(whole: _Conversations, test: Dataset, embedder) -> list[dict]:
    """Test conversations that leak into train: a turn (history and answer) or the id also in train ("exact", "id"), or
    the whole conversation a near duplicate of a training one ("near"), one entry per test conversation with both lines
    and both conversation ids."""
    from adaptlab.models.embedder import encode_cached

    pairs = {
        p["test_line"]: {
            "test_line": p["test_line"],
            "train_line": p["train_line"],
            "kind": "exact" if p["how"] == "turn" else "id",
            "test_conversation": p["test_conversation"],
            "train_conversation": p["train_conversation"],
            "turns": p["turns"],
        }
        for p in conversation_leaks(whole.train, test)
    }
    items = conversations_of(test)
    vectors = encode_cached(embedder, [c.text for c in items])
    sims = vectors @ whole.vectors.T
    best = sims.argmax(axis=1)
    train_by_text = {normalise_text(c.text): c for c in whole.items}
    out = []
    for row, c in enumerate(items):
        if c.line in pairs:
            out.append(pairs[c.line])
            continue
        same = train_by_text.get(normalise_text(c.text))
        if same is not None:
            out.append(
                {
                    "test_line": c.line,
                    "train_line": same.line,
                    "kind": "exact",
                    "test_conversation": c.id,
                    "train_conversation": same.id,
                    "turns": [],
                }
            )
        elif sims[row, best[row]] >= NEAR_DUPLICATE:
            other = whole.items[best[row]]
            out.append(
                {
                    "test_line": c.line,
                    "train_line": other.line,
                    "kind": "near",
                    "similarity": round(float(sims[row, best[row]]), 3),
                    "test_conversation": c.id,
                    "train_conversation": other.id,
                    "turns": [],
                }
            )
    return out


def _leakage(train: Dataset, vectors: np.ndarray, test: Dataset | None, test_vectors: np.ndarray | None) -> list[dict]:
    """Pairs (test line, train line) whose inputs are the same or near duplicates."""
    if test is None or test_vectors is None:  # test vectors come from test rows
        return []

    exact: dict[str, int | None] = {}
    for e in train:
        exact.setdefault(normalise_text(e.input), e.line)
    sims = test_vectors @ vectors.T
    best = sims.argmax(axis=1)
    pairs = []
    for row, e in enumerate(test):
        if normalise_text(e.input) in exact:
            pairs.append({"test_line": e.line, "train_line": exact[normalise_text(e.input)], "kind": "exact"})
        elif sims[row, best[row]] >= NEAR_DUPLICATE:
            pairs.append(
                {
                    "test_line": e.line,
                    "train_line": train.examples[best[row]].line,
                    "kind": "near",
                    "similarity": round(float(sims[row, best[row]]), 3),
                }
            )
    return pairs


def _tokens(train: Dataset, count_tokens, k_shots: int, context_length: int | None) -> dict:
    """Token counts and the cost they imply: training tokens per epoch, tokens k shots add to a prompt.

    `longer_than_context` lists rows whose input and output alone (before the chat
    template and instruction) exceed the model's context.
    """
    if count_tokens is None:
        return {}
    # a conversation's turn is prompted with its whole history (every turn, not only the recent ones its text shows)
    inputs = np.array(
        [
            count_tokens(str(History(e.input.turns, recent=None)) if isinstance(e.input, History) else e.input)
            for e in train
        ]
    )
    outputs = np.array([count_tokens(e.output) for e in train])
    per_example = inputs + outputs
    tokens: dict[str, Any] = {
        "input_mean": round(float(inputs.mean()), 1),
        "input_max": int(inputs.max()),
        "output_mean": round(float(outputs.mean()), 1),
        "output_max": int(outputs.max()),
        "training_tokens_per_epoch_excluding_prompt_template": int(per_example.sum()),
        "prompt_tokens_added_by_k_shots": {"k": k_shots, "tokens": int(round(k_shots * float(per_example.mean())))},
        "context_length": context_length,
        "longer_than_context": [e.line for e, n in zip(train, per_example) if context_length and n > context_length],
    }
    if train.conversations:
        tokens["conversations"] = _conversation_lengths(train, count_tokens, context_length)
        if not all(
            e.turn is None
            for e in train
            # answered turn by turn: a fine-tune trains each conversation once, whole (data/split.py
            # whole_conversations)
        ):
            tokens["training_tokens_per_epoch_excluding_prompt_template"] = tokens["conversations"]["tokens_total"]
    return tokens


def _conversation_lengths(train: Dataset, count_tokens, context_length: int | None) -> dict:
    """Each conversation's length: its spoken turns, the answers learned from it, and its tokens (every turn's text,
    the system message included, before the chat template); the lines of those longer than the context."""
    items = conversations_of(train)
    turns = np.array([len(c.spoken) for c in items])
    answers = np.array([len(c.rows) for c in items])
    tokens = np.array([sum(count_tokens(t.content) for t in c.turns) for c in items])
    return {
        "count": len(items),
        "turns_mean": round(float(turns.mean()), 1),
        "turns_max": int(turns.max()),
        "answers_mean": round(float(answers.mean()), 1),
        "tokens_mean": round(float(tokens.mean()), 1),
        "tokens_max": int(tokens.max()),
        "tokens_total": int(tokens.sum()),
        "longer_than_context": [c.line for c, n in zip(items, tokens) if context_length and n > context_length],
    }
