"""Distillation: a fine-tuned contender (the student) trains on another contender's (the teacher's) answers.

The hybrid of both ways of adapting: a big prompted model (local or behind an endpoint)
labels inputs that have no answers (`data.unlabeled`), and a small model is fine-tuned
on the labeled training rows plus those labels, to answer at a fraction of the
teacher's cost per query:

    data: {train: train.jsonl, test: test.jsonl, unlabeled: unlabeled.jsonl}
    strategies:
      - {id: hosted, name: few_shot, k: 8, model: {base_url: ..., name: ..., price_input_per_1k: ...}}
      - {id: student, name: lora, teacher: hosted}

`compare` runs each teacher before its students (`Distillation.contenders`); right after
the teacher is measured, its first repeat's solver answers every unlabeled input
(`label`), and only those answers are kept. What the labeling took is recorded: wall
seconds, tokens, and dollars (a local model at the cost model's hourly price, as
`decide.costs.strategy_cost` prices machine time; an endpoint from its usage at its
prices). Every other contender learns from the training rows alone, so the student's
extra rows, and what they cost, are stated beside its score (`results`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from adaptlab.data import Dataset, Example, check_leakage
from adaptlab.data.unlabeled import load_unlabeled
from adaptlab.errors import ConfigError
from adaptlab.runs.events import Events
from adaptlab.runs.prepare import training_of


@dataclass(frozen=True)
class Labels:
    """A teacher's answers to the unlabeled inputs, and what giving them cost."""

    teacher: str
    examples: list[Example]  # the unlabeled inputs with the teacher's answers (usable ones only)
    seconds: float  # wall time of answering every unlabeled input
    cost_usd: float | None  # None: an endpoint without prices
    tokens: dict  # {"prompt": ..., "completion": ...}, as the teacher's predictions counted them
    basis: str  # how the cost was worked out
    unusable: int  # answers a student cannot learn from (classify: no label named; empty text)

    def details(self) -> dict:
        """What a student's solver details record of its extra rows."""
        return {
            "teacher": self.teacher,
            "rows": len(self.examples),
            "seconds": self.seconds,
            "cost_usd": self.cost_usd,
            "tokens": dict(self.tokens),
            "cost_basis": self.basis,
            "unusable": self.unusable,
            "agreement_with_gold": None,
        }  # no gold for unlabeled inputs


class Distillation:
    """The experiment's teachers and students: validated, ordered, and the labels passed from one to the other.

    Without `teacher` anywhere and without data.unlabeled, every method is a no-op.
    """

    def __init__(self, config, root: Path, contenders: list, test: Dataset, events: Events | None = None):
        self.teachers = {s.key: t for s in contenders if (t := teacher_of(s))}
        self.contenders = ordered(contenders, self.teachers, config.data.unlabeled)
        self.unlabeled = (
            load_unlabeled(root / config.data.unlabeled, config.data.input_col) if config.data.unlabeled else None
        )
        self.events = events or Events()
        self.labels: dict[str, Labels] = {}
        if self.unlabeled is not None:
            for warning in self.unlabeled.warnings + check_leakage(self.unlabeled, test, config.data.allow_overlap):
                self.events.message(warning, "warning")

    @property
    def _pool(self) -> Dataset:
        """data.unlabeled as read: there whenever a contender names a teacher (`ordered` refuses it otherwise)."""
        assert self.unlabeled is not None
        return self.unlabeled

    def train_for(self, strategy_config, train: Dataset) -> Dataset:
        """The rows a contender learns from: `train`, plus its teacher's labels when it is a student."""
        teacher = self.teachers.get(strategy_config.key)
        if teacher is None:
            return train
        labels = self.labels[teacher]
        return Dataset(
            train.examples + labels.examples,
            f"{train.source} and {self._pool.source} (labeled by {teacher})",
            train.instruction,
        )

    def label(self, key: str, solver, task, hourly: float) -> None:
        """When contender `key` teaches, its solver answers every unlabeled input; the labels are kept, the solver is
        not."""
        if key not in self.teachers.values():
            return
        before = solver.describe()
        remote = isinstance(before.get("base_model"), dict)  # an endpoint is priced by its usage, as decide.costs does
        inputs = self._pool.inputs
        students = ", ".join(s for s, t in self.teachers.items() if t == key)
        with self.events.bars():
            bar = self.events.bar(f"{key}: labeling data.unlabeled for {students}", len(inputs))
            start = time.perf_counter()
            predictions = solver.predict(inputs, bar.advance)
            seconds = time.perf_counter() - start
        tokens = {
            "prompt": sum(p.prompt_tokens for p in predictions),
            "completion": sum(p.completion_tokens for p in predictions),
        }
        if remote:  # its usage at its prices: the solver's running total, after less before
            after = solver.describe().get("cost_usd")
            cost = None if after is None else after - (before.get("cost_usd") or 0.0)
            basis = "endpoint tokens at the model's prices" if cost is not None else "no prices set for this endpoint"
        else:
            cost, basis = seconds / 3600 * hourly, f"measured machine time at ${hourly:g}/hour"
        usable = [
            Example(e.input, p.output.strip(), e.line)
            for e, p in zip(self._pool, predictions)
            if _usable(p.output, task)
        ]
        self.labels[key] = Labels(key, usable, seconds, cost, tokens, basis, len(inputs) - len(usable))
        shown = "cost unknown (no prices set)" if cost is None else _dollars(cost)
        self.events.message(
            f"{key}: labeled {len(usable)} of {len(inputs)} unlabeled inputs for {students} in {seconds:.3g} s, {shown}"
        )
        if len(usable) < len(inputs):
            self.events.message(
                f"{key}: {len(inputs) - len(usable)} of its answers to data.unlabeled name no label "
                f"(or are empty); {students} trains without those rows",
                "warning",
            )

    def record(self, strategy_config, evaluation) -> None:
        """A student's results note where its extra rows came from and what they cost."""
        teacher = self.teachers.get(strategy_config.key)
        if teacher is not None:
            evaluation.solver["distillation"] = self.labels[teacher].details()

    def results(self, evaluations: list, costs: dict, metric: str) -> dict:
        """results.json's `distillation`: per student, its teacher, both scores, the labeling's cost and both costs per
        query."""
        if not self.teachers:
            return {}
        by_name = {e.name: e for e in evaluations}
        summary = {}
        for student, teacher in self.teachers.items():
            s, t, labels = by_name[student], by_name[teacher], self.labels[teacher]
            entry = {
                "teacher": teacher,
                "metric": metric,
                "teacher_score": t.metrics[metric],
                "teacher_ci": list(t.ci[metric]),
                "student_score": s.metrics[metric],
                "student_ci": list(s.ci[metric]),
                "labeling": labels.details(),
                "unlabeled": self._pool.source,
                "teacher_cost_per_1k_queries": costs[teacher]["cost_per_1k_queries"],
                "student_cost_per_1k_queries": costs[student]["cost_per_1k_queries"],
            }
            summary[student] = entry | {"findings": findings(student, entry)}
        return {"distillation": summary}


def teacher_of(strategy_config) -> str | None:
    """The id a contender learns labels from: its training settings' `teacher` (lora, full, rag's fine_tune), else
    None."""
    training = training_of(strategy_config)
    return getattr(training, "teacher", None) if training is not None else None


def ordered(contenders: list, teachers: dict[str, str], unlabeled: str | None) -> list:
    """The contenders with every teacher before its students, the given order kept otherwise; a ConfigError for
    an unknown or self teacher, a cycle, teachers without data.unlabeled, or data.unlabeled without teachers."""
    ids = [s.key for s in contenders]
    if unlabeled and not teachers:
        raise ConfigError(
            f"data.unlabeled is {unlabeled!r}, but no contender names a teacher to label it: add "
            f"`teacher: <id>` to a fine-tuned contender (one of {', '.join(ids)}), or remove "
            "data.unlabeled"
        )
    for student, teacher in teachers.items():
        if teacher == student:
            raise ConfigError(
                f"contender {student!r} names itself as its teacher; name another contender's id "
                f"({', '.join(i for i in ids if i != student)})"
            )
        if teacher not in ids:
            raise ConfigError(
                f"contender {student!r}: teacher {teacher!r} is not a contender of this experiment; "
                f"name one of {', '.join(i for i in ids if i != student)}"
            )
        if not unlabeled:
            raise ConfigError(
                f"contender {student!r} names teacher {teacher!r}, but the experiment has no "
                f'data.unlabeled: set data.unlabeled to a JSONL file of {{"input": ...}} lines for '
                "the teacher to label, or remove `teacher`"
            )
    out, waiting = [], list(contenders)
    placed: set[str] = set()
    while waiting:
        ready = next((s for s in waiting if teachers.get(s.key) in (None, *placed)), None)
        if ready is None:
            raise ConfigError(
                f"the teachers form a cycle ({_cycle(waiting[0].key, teachers)}): a contender cannot "
                "learn from its own student; remove one `teacher`"
            )
        out.append(ready)
        placed.add(ready.key)
        waiting.remove(ready)
    return out


def _cycle(start: str, teachers: dict[str, str]) -> str:
    """The loop reached by following teachers from `start`, in words ("a learns from b learns from a")."""
    path = [start]
    while (nxt := teachers[path[-1]]) not in path:  # every contender left waiting has a teacher
        path.append(nxt)
    return " learns from ".join(path[path.index(nxt) :] + [nxt])


def _usable(output: str, task) -> bool:
    """A teacher's answer a student can learn from: one of the task's labels (classify), else any non-empty text."""
    return output in task.labels if task.spec.labelled else bool(output.strip())


def findings(student: str, entry: dict) -> list[str]:
    """The distillation's numbers in words, for the report: quality beside the teacher's, the labeling's cost, each
    per-query cost."""
    metric, teacher = entry["metric"], entry["teacher"]
    s, t = entry["student_score"], entry["teacher_score"]
    (slo, shi), (tlo, thi) = entry["student_ci"], entry["teacher_ci"]
    quality = (
        f"{student} scored {metric} {s:.3f} (95% CI {slo:.3f}-{shi:.3f}); its teacher {teacher} {t:.3f} "
        f"({tlo:.3f}-{thi:.3f})"
    )
    if t > 0:
        quality += f": {s / t:.0%} of the teacher's score"
    quality += "; the intervals overlap, so the test rows do not tell them apart" if slo <= thi and tlo <= shi else ""
    labeling = entry["labeling"]
    cost = (
        "at an unknown cost (set the endpoint's prices)"
        if labeling["cost_usd"] is None
        else f"for {_dollars(labeling['cost_usd'])}"
    )
    out = [
        quality,
        f"{teacher} labeled {labeling['rows']} unlabeled inputs in {labeling['seconds']:.3g} s "
        f"{cost}; {student} trained on them beside the training rows",
    ]
    sc, tc = entry["student_cost_per_1k_queries"], entry["teacher_cost_per_1k_queries"]
    if sc is None or tc is None:
        out.append(
            f"per 1,000 queries: {student} {_dollars(sc)}, {teacher} {_dollars(tc)} (a cost is "
            "unknown: set the endpoint's prices)"
        )
    elif sc < tc:
        out.append(f"per 1,000 queries {student} costs {_dollars(sc)}, {sc / tc:.1%} of {teacher}'s {_dollars(tc)}")
    else:
        out.append(f"per 1,000 queries {student} costs {_dollars(sc)}, not less than {teacher}'s {_dollars(tc)}")
    return out


def _dollars(value: float | None) -> str:
    """Dollars to 3 significant figures: a tiny model's cost per query is far below a cent ($5.33e-05)."""
    return "$?" if value is None else f"${value:.3g}"
