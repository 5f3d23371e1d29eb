"""What a run writes, as types: `CompareResults` (results.json), `SweepResults` (sweep.json), `Lineage` (lineage.json).

Every command writes its file through these models and every reader loads it through
them, so a field is spelled once. The JSON Schemas in `docs/schema/` are generated from
them (`python -m adaptlab.results docs/schema`; a test fails when they are out of date)
and the docs' results reference is written from those.

A file of an older run still loads: `load_results` fills what newer runs add (an
interval per metric where old runs kept `ci95`, the flags list, the traits) before it is
validated. Models whose content is a kind's own record (a solver's description, the audit)
stay open dictionaries; the rest refuse an unknown key, so the schema stays the truth.

    >>> from adaptlab.results import CompareResults
    >>> sorted(CompareResults.model_json_schema()["required"])[:3]
    ['audit', 'base_model', 'cost_assumptions']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adaptlab.errors import AdaptlabError

Interval = list[float]  # [low, high]: a 95% interval


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TaskRecord(_Open):
    """The task as the run saw it (`Task.to_dict`): open, because a task kind may record more."""

    name: str
    instruction: str
    kind: str = Field(description="classify, generate, qa, or a plugin's task kind")
    labels: list[str] = []
    metric: str = Field(description="the headline metric every contender is ranked by")
    max_new_tokens: int | None = None
    max_new_tokens_from: str | None = None
    stop: list[str] | None = None
    abstain: str | None = None
    list_labels: bool | None = None
    descriptions: dict[str, str] | None = None
    costs: dict[str, float] | None = Field(None, description="qa: task.costs, when the answers are priced (the metric is then utility)")


class PredictionRow(_Closed):
    """One test row: the question, the reference, the answer, and what the contender was given."""

    input: str
    expected: str
    predicted: str
    line: int | None = Field(None, description="the row's 1-based line in the test file")
    shots: int | None = Field(None, description="examples in its prompt")
    cut: bool | None = Field(None, description="generated answers: stopped by the token limit, not by the model")
    sources: list[str] | None = Field(None, description="knowledge tasks: the pages that hold the answer")
    passages: list[dict[str, Any]] | None = Field(None, description="what retrieval gave it: source, text, score")


class Contender(_Closed):
    """One contender: its scores with their intervals, its answers, and what it cost (`evaluation.Evaluation` plus costs and P(best))."""

    name: str = Field(description="the contender's id in the experiment")
    metrics: dict[str, float]
    ci: dict[str, Interval] = Field(description="each metric's 95% bootstrap interval")
    latency_ms_mean: float
    latency_ms_p95: float
    latency_ms_p50: float | None = None
    prompt_tokens_mean: float
    completion_tokens_mean: float
    fit_seconds: float
    predict_seconds: float | None = None
    latency_overhead_ms: float | None = None
    peak_rss_mb: float
    predictions: list[PredictionRow]
    labels_predicted: int | None = None
    top_label_share: float | None = None
    per_label_f1: dict[str, float] | None = None
    confusion: dict[str, dict[str, int]] | None = None
    solver: dict[str, Any] = Field({}, description="the saved solver's description: the kind's own record (settings, training, retrieval, tuning, registered_as)")
    traits: dict[str, Any] = Field({}, description="the kind's traits: kind, family, tier, llm, constant, own_weights")
    answers_cut: int | None = None
    answer_limit: int | None = None
    repeats: list[float] | None = Field(None, description="repeats > 1: each repeat's headline score")
    repeat_seeds: list[int] | None = None
    flags: list[str] = Field([], description="degenerate answers found, in words: such a contender is not recommended while a usable one exists")
    cost_per_1k_queries: float | None = None
    fit_cost: float | None = None
    basis: str | None = Field(None, description="what the costs rest on")
    upkeep_per_month: float | None = None
    upkeep_basis: str | None = None
    p_best: float | None = Field(None, description="the probability it is best, over bootstrap resamples of the test rows")


class Recommendation(_Closed):
    choice: str = Field(description="a contender's id, or collect_more_data")
    reasons: list[str]
    warnings: list[str] = []


class Pair(_Closed):
    """Two contenders on the same test rows: the paired difference (a - b), its interval and test."""

    a: str
    b: str
    difference: float
    ci95: Interval
    test: str
    p_value: float
    p_holm: float | None = None
    detectable_difference: float | None = None
    rows_to_settle: int | None = None


class Power(_Closed):
    """What the test split could detect between the top two contenders, and the rows that would settle their gap."""

    metric: str
    rows: int
    between: list[str]
    difference: float
    detectable_difference: float | None = None
    rows_to_settle: int | None = None


class BreakEven(_Closed):
    fine_tuned: str
    prompted: str
    queries: int | str | None = Field(description="the query volume from which fine-tuning is cheaper in total, or why it never or always is")
    why: str


class UpdateSide(_Closed):
    score: float
    score_ci: Interval
    stale: float = Field(description="the share of answers still giving the old fact")
    stale_ci: Interval
    answers: list[dict[str, Any]]


class UpdateRecord(_Closed):
    before: UpdateSide
    after: UpdateSide
    absorb: dict[str, Any] = Field(description="how the change was absorbed: how (re-index, retrain, none), seconds, dollars, estimate, note")


class Updates(_Closed):
    """Knowledge tasks: every contender asked about a change to the documents, before and after it, without retraining."""

    docs: str
    test: str
    changed: list[str]
    added: list[str]
    questions: int
    contenders: dict[str, UpdateRecord]


class CompareResults(_Closed):
    """results.json: what `adaptlab compare` measured and recommended."""

    task: TaskRecord
    base_model: str | dict[str, Any] = Field(description="the base model's name or folder (or an endpoint)")
    data: dict[str, Any] = Field(description="the data files and their content hashes; knowledge tasks: the documents and passages")
    seed: int
    repeats: int = 1
    environment: dict[str, str]
    strategies: list[Contender] = Field(description="every contender, references first, in the order they ran")
    recommendation: Recommendation
    pairwise: list[Pair] = []
    power: Power | None = None
    break_even_queries: list[BreakEven] = []
    constraints: dict[str, Any] = {}
    cost_assumptions: dict[str, Any] = Field(description="the prices the costs rest on: device, dollars_per_hour and the experiment's costs")
    audit: dict[str, Any] = Field(description="the training data's audit (audit.AuditReport.to_dict)")
    updates: Updates | None = None
    distillation: dict[str, dict[str, Any]] | None = Field(None, description="per student: its teacher, both scores, the labeling's cost")

    def contender(self, name: str) -> Contender:
        return next(s for s in self.strategies if s.name == name)


class SweepRun(_Closed):
    strategy: str
    n: int
    seed: int
    score: float


class SweepResults(_Closed):
    """sweep.json: the learning curve, prompting against fine-tuning by training-set size."""

    task: TaskRecord
    metric: str
    sizes: list[int]
    seeds: int
    runs: list[SweepRun]
    curve: dict[str, list[dict[str, float]]] = Field(description="per contender: [{n, mean}]")
    comparisons: list[dict[str, Any]] = Field(description="per fine-tuned/prompted pair: the difference per size with its interval, crossover_n, significant_from_n")


class Lineage(_Closed):
    """lineage.json: one `adaptlab finetune` run's result and where it came from."""

    strategy: str
    task: TaskRecord
    base_model: dict[str, Any]
    data: dict[str, dict[str, Any]]
    config: dict[str, Any]
    seed: int
    metrics: dict[str, Any] = Field(description="test (every metric), test_ci95 (their intervals), best_dev_score")
    training: dict[str, Any]
    output: str
    merged: str | None = None
    versions: dict[str, str]
    finished: str
    registered_as: str | None = None


FILES = {"results.json": CompareResults, "sweep.json": SweepResults, "lineage.json": Lineage}


def write_results(path: Path, content: dict | BaseModel) -> dict:
    """Validate `content` against its file's model and write it (atomically); returns what was written.
    A field the model does not know is a bug in adaptlab, said as such."""
    from pydantic import ValidationError

    from adaptlab.files import write_json

    model = FILES[Path(path).name]
    try:
        typed = content if isinstance(content, model) else model.model_validate(content)
    except ValidationError as exc:
        raise AdaptlabError(f"adaptlab built a {Path(path).name} its own schema refuses (a bug; please report it): {exc}") from None
    out = typed.model_dump(mode="json", exclude_unset=True)
    write_json(Path(path), out)
    return out


def load_results(path: Path) -> CompareResults:
    """results.json of any run, older ones upgraded first; an error names the file and the field."""
    return _load(Path(path), CompareResults, upgrade)


def load_sweep(path: Path) -> SweepResults:
    return _load(Path(path), SweepResults)


def load_lineage(path: Path) -> Lineage:
    return _load(Path(path), Lineage)


def _load(path: Path, model: type[BaseModel], upgrade=None):
    from pydantic import ValidationError

    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdaptlabError(f"{path}: cannot be read as JSON ({exc}); it is written by adaptlab, rerun the command that made it") from None
    try:
        return model.model_validate(upgrade(content) if upgrade else content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise AdaptlabError(f"{path}: field {where}: {first['msg']} ({exc.error_count()} problem(s)); it does not match the {path.name} this adaptlab reads (docs/schema/)") from None


def upgrade(content: dict) -> dict:
    """results.json of older runs in today's shape: `ci95` (the headline's interval only) becomes `ci`; keys since dropped go."""
    content = dict(content)
    content.pop("notes", None)  # the baselines note, before the references were task kinds'
    strategies = []
    for s in content.get("strategies", []):
        s = dict(s)
        if "ci" not in s and "ci95" in s:
            s["ci"] = {content["task"]["metric"]: s.pop("ci95")}
        strategies.append(s)
    return content | {"strategies": strategies}


def schemas() -> dict[str, dict]:
    """Each file's JSON Schema, by the name it is published under in docs/schema/."""
    return {name.replace(".json", ".schema.json"): model.model_json_schema() for name, model in FILES.items()}


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, schema in schemas().items():
        (folder / name).write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        out.append(folder / name)
    return out


if __name__ == "__main__":  # python -m adaptlab.results docs/schema
    import sys

    for written in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schema")):
        print(written)
