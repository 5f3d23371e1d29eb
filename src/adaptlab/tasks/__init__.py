"""The table of task kinds: every kind of task is one module (`classify`, `generate`, `qa`), found here by its name.

A task kind declares, once: its headline metric and the per-row scores it is the mean of;
every metric's spec (`Metric`: label, scale, digits, which way is better, what it means)
that the CLI table, the report, MLflow and the docs read; its answer rule (a label from a
set, free text cut at a token limit, or free text that may abstain); how its dev split is
stratified; the **references** every comparison runs beside the LLM contenders (a trivial
one first: beating it is the least an LLM must do); and its degenerate-answer checks (built from
`tasks.degenerate`: nearly one answer for most rows, answers cut at the token limit).
Nothing else in adaptlab branches on a task kind's name: it reads these.

    >>> task_kind("qa").headline, task_kind("qa").references
    ('qa_score', ('abstain', 'extract'))
    >>> [k.name for k in task_kinds()]
    ['classify', 'generate', 'qa']

A package adds a task kind through the `adaptlab.tasks` entry point group (naming a
`TaskKind`), or, in a script or a test, with `register(TaskKind(...))`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adaptlab.plugins import Table

if TYPE_CHECKING:  # `adaptlab --help` imports this table: numpy only where metrics are computed
    import numpy as np

BUILT_IN = ("classify", "generate", "qa")  # modules of this package, in table order
ENTRY_POINT_GROUP = "adaptlab.tasks"
TOLERANCE_SHARE = 0.02  # a cheaper contender may lose at most this share of the headline's scale (Metric.tolerance)


@dataclass(frozen=True)
class Metric:
    """One metric of a task kind, as every table, chart and doc shows it."""

    name: str  # its key in results.json's metrics
    label: str  # its name in words, for the report and docs
    meaning: str  # one line: what it measures
    column: str = ""  # its header in the CLI table beside the headline; "" keeps it out of that table
    scale: int = 1  # 1: a share between 0 and 1; 100: 0-100 (chrF)
    digits: int = 3
    higher_is_better: bool = True

    @property
    def tolerance(self) -> float:
        """The default largest loss of this metric a cheaper contender may cost (constraints.tolerance): 2% of its
        scale, so 0.02 accuracy or qa_score, 2 chrF."""
        return TOLERANCE_SHARE * self.scale


@dataclass(frozen=True)
class TaskKind:
    """One kind of task: what its answers are, how they are scored, and what a recommendation must beat."""

    name: str
    summary: str
    headline: str  # the metric that ranks contenders: the mean of the per-row `row_key` scores
    row_key: str  # the per-row array of `rows` whose mean is the headline
    metrics: tuple[Metric, ...]
    rows: Callable[
        ..., dict[str, np.ndarray]
    ]  # (expected, predicted, labels, context) -> per-row arrays every metric is built from
    aggregate: Callable[[dict[str, np.ndarray], np.ndarray], dict[str, float]]  # (rows, row indices) -> every metric
    references: tuple[
        str, ...
    ]  # strategy kinds run beside the contenders (`baselines: true`): the trivial one first, then the non-LLM one
    trivial_words: str  # what the trivial reference does, in words ("always answering I don't know")
    remedy: str  # what to try when no contender answers better than the trivial reference
    checks: Callable[..., list[str]]  # degenerate answers: (expected, predicted, cut, abstain) -> findings in words
    # answers are one label of a set: labels are scored (not generated), dev splits stratified by label, confusion
    # matrices
    labelled: bool = False
    generates: bool = False  # answers are generated text, cut at task.max_new_tokens
    abstains: bool = False  # an answer may be task.abstain ("the documents do not say"); the qa measures apply
    documents: bool = False  # answers from the team's documents (data.docs): the kind inferred when documents are given
    resample: Callable[[dict[str, np.ndarray], np.ndarray], dict[str, np.ndarray]] | None = (
        None  # vectorised aggregate over (resamples, rows) indices; None loops over `aggregate`
    )
    context: Callable[..., dict] | None = (
        None  # (task, test, predictions) -> what `rows` needs beside the answers (qa: passages given, similarities)
    )
    priced: str = (
        ""  # the headline when the task prices its answers (task.costs; qa: utility); "": this kind cannot be priced
    )
    extra: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> Metric:
        """The spec of metric `name` (a metric the kind does not declare gets a plain one)."""
        return next((m for m in self.metrics if m.name == name), Metric(name, name.replace("_", " "), ""))

    def columns(self, headline: str) -> tuple[Metric, ...]:
        """The metrics the CLI table shows beside `headline` (the run's: the kind's own, or its priced one)."""
        return tuple(m for m in self.metrics if m.column and m.name != headline)

    def resampled(self, rows: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
        """Every metric for each row of `idx` (resamples x rows of indices)."""
        import numpy as np

        if self.resample is not None:
            return self.resample(rows, idx)
        each = [self.aggregate(rows, i) for i in idx]
        names = {k for d in each for k in d}
        return {k: np.array([d.get(k, np.nan) for d in each]) for k in names}


_TABLE: Table[TaskKind] = Table(__name__, BUILT_IN, ENTRY_POINT_GROUP, TaskKind, "task kind")


def register(k: TaskKind) -> TaskKind:
    """Add (or replace) a task kind in the table."""
    return _TABLE.add(k)


def unregister(name: str) -> None:
    _TABLE.remove(name)


def task_kinds() -> list[TaskKind]:
    """Every task kind, built-in ones first in table order."""
    return _TABLE.all()


def task_kind(name: str) -> TaskKind:
    """The task kind called `name`; a ConfigError lists the known ones."""
    return _TABLE.get(name)


def default_tolerance(metric: str) -> float:
    """The default tolerance (`Metric.tolerance`) of `metric` as the first task kind declaring it gives it; a metric
    no kind declares (a priced headline, in the team's own units) gets TOLERANCE_SHARE.

    >>> default_tolerance("accuracy"), default_tolerance("chrf"), default_tolerance("utility")
    (0.02, 2.0, 0.02)
    """
    spec = next((m for k in task_kinds() for m in k.metrics if m.name == metric), None)
    return spec.tolerance if spec is not None else TOLERANCE_SHARE


def task_kind_names() -> tuple[str, ...]:
    return tuple(k.name for k in task_kinds())
