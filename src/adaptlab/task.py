"""`Task`: what the adapted model must do, and how to tell from the data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adaptlab.data import Dataset
from adaptlab.errors import ConfigError, DataError, Problem
from adaptlab.tasks import task_kind

Kind = str  # a task kind's name: classify, generate, qa (adaptlab.tasks), or one a plugin registers
DEFAULT_ABSTAIN = "I don't know"  # qa: the answer that means "the documents do not say"

# Outputs "drawn from a small repeated set": at most this many distinct values,
# each seen at least twice on average, each short and on one line.
MAX_LABELS = 100
MAX_LABEL_CHARS = 64
DEFAULT_MAX_NEW_TOKENS = 128  # generate, when neither the experiment nor a tokenizer says


@dataclass(frozen=True)
class AnswerCosts:
    """What an answer is worth to the team (task.costs; qa): the headline becomes the mean value per question.

    Per question: answered and answerable, `right_answer` x token F1 - `hallucination` x (1 - token F1) (a wrong
    answer misleads as much as an invented one); answered but unanswerable, -`hallucination`; abstained on an
    answerable question, -`wrong_abstention`; abstained on an unanswerable one, 0.
    """

    right_answer: float = 1.0
    hallucination: float = 1.0
    wrong_abstention: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "right_answer": self.right_answer,
            "hallucination": self.hallucination,
            "wrong_abstention": self.wrong_abstention,
        }


@dataclass(frozen=True)
class Task:
    """A named task with its instruction, kind, and label set (classify only).

    Kinds: `classify` (a label from a set), `generate` (free text, scored against the
    reference), `qa` (answers from the team's documents: free text, or the `abstain`
    answer where the documents do not say).

    >>> Task("sentiment", "Is the review positive or negative?", "classify", ("negative", "positive")).metric
    'accuracy'
    """

    name: str
    instruction: str
    kind: Kind
    labels: tuple[str, ...] = field(default_factory=tuple)
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS  # generate: the longest answer
    stop: tuple[str, ...] = ()  # generate: the answer ends before the first of these
    max_new_tokens_from: str = ""  # generate: where max_new_tokens came from (the experiment, or the training answers)
    abstain: str = DEFAULT_ABSTAIN  # qa: the answer that means "the documents do not say"
    list_labels: bool = True  # classify: the system turn lists the labels (a tuned instruction may leave them out)
    descriptions: tuple[
        tuple[str, str], ...
    ] = ()  # classify: (label, what it means) from task.labels, shown in the label list
    ends: tuple[
        str, ...
        # generated answers: the answer ends after the first of these (inferred from the training outputs:
        # `answer_endings`)
    ] = ()
    stops_from: str = ""  # where stop and ends came from (the experiment, or the training outputs)
    stop_loops: bool = (
        True  # generated answers: a row that begins repeating itself ends there (engine.generate.loop_start)
    )
    costs: AnswerCosts | None = (
        # qa: what right answers, hallucinations and wrong abstentions are worth; the headline is then their mean
        # (`utility`)
        None
    )

    @property
    def spec(self):
        """The task kind (adaptlab.tasks): its metrics, answer rule, references and checks; with `costs`, ranked by
        the kind's priced headline (qa: utility) instead of its own."""
        from dataclasses import replace

        spec = task_kind(self.kind)
        return replace(spec, headline=spec.priced, row_key=spec.priced) if self.costs and spec.priced else spec

    @property
    def scoring(self) -> dict | None:
        """What the task kind's per-row scores read from the task itself beside the answers (qa: the abstain answer, the
        costs)."""
        if not self.spec.abstains:
            return None
        return {"abstain": self.abstain} | ({"costs": self.costs} if self.costs else {})

    @property
    def metric(self) -> str:
        """The headline metric used to rank strategies: accuracy, chrF, or (qa) the mean per row of token F1 on
        answerable questions (0 when it abstained) and 1/0 for abstaining on unanswerable ones."""
        return self.spec.headline

    @property
    def generates(self) -> bool:
        """Answers are generated text (generate and qa), not a label scored from a set."""
        return self.spec.generates

    def parse_label(self, text: str) -> str | None:
        """The label a free-text answer names, or None: exact, then case-insensitive, then the longest label it starts
        with or contains.

        >>> Task("t", "i", "classify", ("card_arrival", "card_swallowed")).parse_label(" Card_Arrival.")
        'card_arrival'
        >>> Task("t", "i", "classify", ("yes", "no")).parse_label("maybe") is None
        True
        """
        answer = text.strip().strip(".'\"` \n").strip()
        if answer in self.labels:
            return answer
        lowered = {label.lower(): label for label in self.labels}
        if answer.lower() in lowered:
            return lowered[answer.lower()]
        by_length = sorted(lowered, key=len, reverse=True)
        return next((lowered[lab] for lab in by_length if answer.lower().startswith(lab)), None) or next(
            (lowered[lab] for lab in by_length if lab in answer.lower()), None
        )

    @classmethod
    def from_dict(cls, data: dict) -> Task:
        """The inverse of `to_dict` (what solver.json and the registry's task.json hold)."""
        return cls(
            data["name"],
            data["instruction"],
            data["kind"],
            tuple(data["labels"]),
            data.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS),
            tuple(data.get("stop", ())),
            data.get("max_new_tokens_from", ""),
            data.get("abstain", DEFAULT_ABSTAIN),
            data.get("list_labels", True),
            tuple((k, v) for k, v in data.get("descriptions", {}).items()),
            tuple(data.get("ends", ())),
            data.get("stops_from", ""),
            data.get("stop_loops", True),
            AnswerCosts(**data["costs"]) if data.get("costs") else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "instruction": self.instruction,
            "kind": self.kind,
            "labels": list(self.labels),
            "metric": self.metric,
        }
        if self.generates:
            out |= {
                "max_new_tokens": self.max_new_tokens,
                "max_new_tokens_from": self.max_new_tokens_from,
                "stop": list(self.stop),
                "ends": list(self.ends),
                "stops_from": self.stops_from,
                "stop_loops": self.stop_loops,
            }
        if self.spec.abstains:
            out["abstain"] = self.abstain
        if not self.list_labels:
            out["list_labels"] = False
        if self.descriptions:
            out["descriptions"] = dict(self.descriptions)
        if self.costs:
            out["costs"] = self.costs.as_dict()
        return out


def infer_kind(train: Dataset) -> Kind:
    """`classify` when outputs come from a small repeated set of short labels, else `generate`."""
    counts = Counter(train.outputs)
    short = all(len(o) <= MAX_LABEL_CHARS and "\n" not in o for o in counts)
    repeated = len(counts) <= MAX_LABELS and len(train) >= 2 * len(counts)
    return "classify" if short and repeated and len(counts) >= 2 else "generate"


def answer_budget(outputs: list[str], count_tokens: Callable[[str], int]) -> tuple[int, str]:
    """max_new_tokens for a generate task: the longest training answer in tokens (end of turn included) plus a
    quarter (at least 16), and a note saying so.

    >>> answer_budget(["a b", "a b c d e f g h"], lambda s: len(s.split()) + 1)
    (25, 'the longest training answer (9 tokens) + 16')
    """
    longest = max(count_tokens(o) for o in outputs)
    margin = max(16, longest // 4)
    return longest + margin, f"the longest training answer ({longest} tokens) + {margin}"


def answer_endings(outputs: list[str]) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    r"""(stop, ends, where from) the training outputs show: every output on one line, an answer stops at a line
    break; every output ending in the same punctuation that occurs nowhere else in it, the answer ends right after
    it. Nothing is inferred from outputs that do not all agree.

    >>> answer_endings(["SELECT 1;", "SELECT a\nFROM b;"])
    ((), (';',), "the training outputs: every one ends with ';' and holds it once")
    >>> answer_endings(["date: 9th", "time: 10pm"])[0]
    ('\n',)
    >>> answer_endings(["It is $5.\nYes.", "No."])
    ((), (), '')
    """
    outputs = [o.strip() for o in outputs if o.strip()]
    if not outputs:
        return (), (), ""
    if all("\n" not in o for o in outputs):
        return ("\n",), (), "the training outputs: every one is one line"
    last = outputs[0][-1]
    if not last.isalnum() and not last.isspace() and all(o.endswith(last) and o.count(last) == 1 for o in outputs):
        return (), (last,), f"the training outputs: every one ends with {last!r} and holds it once"
    return (), (), ""


def make_task(
    name: str,
    instruction: str,
    train: Dataset,
    test: Dataset,
    kind: Kind | None = None,
    max_new_tokens: int | None = None,
    stop: tuple[str, ...] | None = None,
    count_tokens: Callable[[str], int] | None = None,
    abstain: str = DEFAULT_ABSTAIN,
    descriptions: dict[str, str] | None = None,
    costs: AnswerCosts | None = None,
    stop_loops: bool = True,
) -> Task:
    """Build the Task, inferring its kind from `train`; a test label unseen in train is an error.

    Generate and qa tasks answer in at most `max_new_tokens`; left out, it comes from the training answers
    (`answer_budget`, counted with `count_tokens`, the model's tokenizer). `descriptions` (classify) says what labels
    mean; a label the training outputs do not use is an error. `costs` (qa) prices the answers: the headline is then
    their mean value.
    `stop` None: the stop and end strings the training outputs show (`answer_endings`); () or strings: those only.
    """
    kind = kind or infer_kind(train)
    spec = task_kind(kind)
    if costs and not spec.priced:
        raise ConfigError(
            "task.costs prices right answers, hallucinations and abstentions, which only a task "
            f"kind that may abstain has; this is a {kind} task: remove task.costs"
        )
    if descriptions and not spec.labelled:
        raise ConfigError(
            f"task.labels describes labels, but this is a {kind} task (free-text answers, no label "
            "set): remove task.labels, or set task.kind: classify"
        )
    if not spec.labelled:
        if max_new_tokens is not None:
            limit, source = max_new_tokens, "the experiment (task.max_new_tokens)"
        elif count_tokens is not None:
            limit, source = answer_budget(train.outputs, count_tokens)
        else:
            limit, source = DEFAULT_MAX_NEW_TOKENS, "the default (no tokenizer to count the training answers with)"
        if stop is None and not spec.abstains:
            stop, ends, stops_from = answer_endings(train.outputs)
        elif stop is None:  # answers from documents are prose the training answers' shape says little about
            stop, ends, stops_from = (), (), ""
        else:
            stop, ends, stops_from = tuple(stop), (), "the experiment (task.stop)" if stop else ""
        return Task(
            name,
            instruction,
            kind,
            max_new_tokens=limit,
            stop=stop,
            max_new_tokens_from=source,
            abstain=abstain,
            ends=ends,
            stops_from=stops_from,
            stop_loops=stop_loops,
            costs=costs,
        )
    labels = tuple(sorted(set(train.outputs)))
    unknown = [e for e in test if e.output not in set(labels)]
    if unknown:
        problems = [
            Problem(
                "unknown_label",
                test.source,
                e.line,
                "output",
                f"label {e.output!r} does not occur in the training data",
                "add training examples with this label, or fix its spelling",
            )
            for e in unknown[:100]
        ]
        raise DataError(problems, truncated=len(unknown) > 100)
    strange = [label for label in descriptions or {} if label not in labels]
    if strange:
        raise ConfigError(
            f"task.labels describes {', '.join(map(repr, strange))}, which no training output uses; "
            f"the labels are: {', '.join(labels)}. Fix the spelling or remove "
            f"{'it' if len(strange) == 1 else 'them'}"
        )
    described = descriptions or {}
    return Task(
        name,
        instruction,
        kind,
        labels,
        descriptions=tuple((label, described[label]) for label in labels if label in described),
    )
