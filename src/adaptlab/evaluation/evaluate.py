"""`evaluate`: fit a strategy, run its solver on the test rows, and measure everything."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from adaptlab import kinds
from adaptlab.data import Dataset
from adaptlab.evaluation.resources import PeakRss, release_memory
from adaptlab.metrics import per_label, row_table, task_metrics
from adaptlab.solver import Progress, Solver, Strategy
from adaptlab.task import Task


@dataclass
class Evaluation:
    """What one strategy scored on the test set, and what it cost."""

    name: str
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]  # 95% bootstrap interval of every metric
    latency_ms_mean: float
    latency_ms_p95: float
    prompt_tokens_mean: float
    completion_tokens_mean: float
    fit_seconds: float
    peak_rss_mb: float
    scores: list[float]  # headline metric per test row, for paired comparisons
    predictions: list[dict]
    labels_predicted: int | None = None  # classify: distinct labels among the predictions
    top_label_share: float | None = None  # classify: share of the most frequent prediction
    solver: dict = field(default_factory=dict)
    latency_ms_p50: float | None = None
    per_label_f1: dict[str, float] | None = None  # classify
    confusion: dict[str, dict[str, int]] | None = None  # classify: expected -> predicted -> count
    traits: dict = field(
        default_factory=dict
    )  # the kind's traits (adaptlab.kinds): kind, family, tier, llm, constant, own_weights
    answers_cut: int | None = None  # generate: answers stopped by the token limit, not by the model
    answers_looped: int | None = None  # generate: answers ended where they began repeating themselves (task.stop_loops)
    answer_limit: int | None = None  # generate: that limit (task.max_new_tokens)
    predict_seconds: float | None = None  # wall time of answering every test row
    latency_overhead_ms: float | None = (
        None  # per query: time outside the engine (prompts, shots, embeddings), included in latency
    )
    repeats: list[float] | None = None  # repeats > 1: each repeat's headline score (evaluation.repeats.combine)
    repeat_seeds: list[int] | None = None
    flags: list[str] = field(
        default_factory=list
        # degenerate answers found (the task kind's checks), in words: such a contender is not recommended while a
        # usable
        # one exists
    )

    def __post_init__(self):
        if not self.traits:  # a contender named after its kind (hand-built evaluations in tests, old results)
            if self.name in kinds.names():
                self.traits = kinds.kind(self.name).traits()

    @property
    def family(self) -> str:
        return self.traits.get("family", "prompted")

    @property
    def trains(self) -> bool:
        """Whether it needed a training run (its family: `kinds.family_trains`)."""
        return kinds.family_trains(self.family)

    @property
    def prompted(self) -> bool:
        """Whether it is a language model answering from its prompt alone, untrained (`kinds.family_prompted`)."""
        return kinds.family_prompted(self.family)

    @property
    def tier(self) -> int:
        return self.traits.get("tier", 2)

    @property
    def llm(self) -> bool:
        return self.traits.get("llm", True)

    @property
    def constant(self) -> bool:
        return self.traits.get("constant", False)

    @property
    def own_weights(self) -> bool:
        return self.traits.get("own_weights", False)

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "scores"}
        out["ci"] = {k: list(v) for k, v in self.ci.items()}
        return out


def evaluate(
    strategy: Strategy,
    task: Task,
    train: Dataset,
    test: Dataset,
    fit_progress: Progress | None = None,
    predict_progress: Progress | None = None,
    name: str | None = None,
    traits: dict | None = None,
    dev: Dataset | None = None,
) -> tuple[Evaluation, Solver]:
    """Fit `strategy` on `train` (`dev` for fine-tuning's checkpoints), predict every `test` row, and measure quality
    and cost.

    `name` is the contender's id (default: the strategy's name), `traits` its kind's. Its peak RSS starts from the
    memory in use (`release_memory`), not from what the work before it left cached.
    """
    release_memory()
    with PeakRss() as rss:
        start = time.perf_counter()
        solver = strategy.fit(task, train, dev=dev, progress=fit_progress)
        fit_seconds = time.perf_counter() - start
        release_memory()  # what training freed goes back before the key/value caches of prediction are allocated
        start = time.perf_counter()
        predictions = solver.predict(test.inputs, predict_progress)
        predict_seconds = time.perf_counter() - start
    expected = test.outputs
    predicted = [p.output for p in predictions]
    spec = task.spec
    context = spec.context(task, test, predictions) if spec.context else None
    rows = row_table(
        spec, expected, predicted, context, list(task.labels)
    )  # per-row values, computed once for the scores and every metric
    scores = rows[spec.row_key]
    # Latency the same way for every contender: each answer's own engine time plus an equal share of what the
    # solver did around it (prompt building, shot selection, query embeddings): from the raw input to the answer.
    engine = np.array([p.seconds for p in predictions])
    overhead = max(0.0, predict_seconds - float(engine.sum())) / max(len(predictions), 1)
    latency = (engine + overhead) * 1000
    counts = Counter(predicted)
    metrics, ci = task_metrics(spec, expected, predicted, list(task.labels), resamples=1000, rows=rows)
    rules = (predictions[0].alternatives or {}) if predictions else {}
    for rule in rules:
        other = [(p.alternatives or {})[rule] for p in predictions]  # every prediction of a solver has them
        metrics |= {
            f"{name}_{rule}": value for name, value in task_metrics(spec, expected, other, list(task.labels))[0].items()
        }
    f1, confusion = per_label(expected, predicted, list(task.labels)) if spec.labelled else (None, None)
    cut = [p.cut for p in predictions]
    flags = (
        [] if (traits or {}).get("constant") else spec.checks(expected, predicted, cut, task.abstain)
    )  # a constant reference gives one answer by design
    return Evaluation(
        name=name or strategy.name,
        metrics=metrics,
        ci=ci,
        latency_ms_mean=float(latency.mean()),
        latency_ms_p95=float(np.percentile(latency, 95)),
        prompt_tokens_mean=float(np.mean([p.prompt_tokens for p in predictions])),
        completion_tokens_mean=float(np.mean([p.completion_tokens for p in predictions])),
        fit_seconds=fit_seconds,
        peak_rss_mb=rss.peak_mb,
        scores=scores.tolist(),
        predictions=[prediction_row(e, p) for e, p in zip(test, predictions)],
        labels_predicted=len(counts) if spec.labelled else None,
        top_label_share=(counts.most_common(1)[0][1] / len(predicted)) if spec.labelled and predicted else None,
        solver=solver.describe(),
        latency_ms_p50=float(np.percentile(latency, 50)),
        per_label_f1=f1,
        confusion=confusion,
        traits=traits or {},
        answers_cut=sum(cut) if spec.generates else None,
        answers_looped=sum(p.looped for p in predictions) if spec.generates else None,
        answer_limit=task.max_new_tokens if spec.generates else None,
        flags=flags,
        predict_seconds=predict_seconds,
        latency_overhead_ms=overhead * 1000,
    ), solver


def prediction_row(example, prediction) -> dict:
    """One test row as results.json keeps it: the question, both answers, and what the strategy was given."""
    row = {
        "input": example.input,
        "expected": example.output,
        "predicted": prediction.output,
        "line": example.line,
        "shots": prediction.shots,
    }
    if example.conversation is not None:  # a conversation's turn: input is the History's recent turns, as text
        row["conversation"] = example.conversation
        if example.turn is not None:
            row["turn"] = example.turn
    if prediction.cut:
        row["cut"] = True
    if prediction.looped:
        row["looped"] = True
    if example.sources:
        row["sources"] = list(example.sources)
    if prediction.passages:
        row["passages"] = [dict(p) for p in prediction.passages]
    return row
