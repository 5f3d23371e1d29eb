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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from adaptlab.errors import AdaptlabError

Interval = list[float]  # [low, high]: a 95% interval


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TaskRecord(_Open):
    """The task as the run saw it (`Task.to_dict`): open, because a task kind may record more."""

    name: str = Field(description="the task's name (its versions in the registry are name@vN)")
    instruction: str = Field(description="the system turn of every prompt")
    kind: str = Field(description="the task kind's name (adaptlab.tasks, or a plugin's)")
    labels: list[str] = Field([], description="classify: the label set, sorted")
    metric: str = Field(description="the headline metric every contender is ranked by")
    max_new_tokens: int | None = Field(None, description="generated answers: the longest, in tokens")
    max_new_tokens_from: str | None = Field(
        None, description="where that limit came from (the experiment, or the training answers)"
    )
    stop: list[str] | None = Field(None, description="generated answers end before the first of these")
    ends: list[str] | None = Field(None, description="generated answers end right after the first of these")
    stops_from: str | None = Field(
        None, description="where stop and ends came from: the experiment, or the training outputs"
    )
    stop_loops: bool | None = Field(None, description="generated answers that begin repeating themselves end there")
    abstain: str | None = Field(None, description="qa: the answer that means the documents do not say")
    list_labels: bool | None = Field(
        None, description="classify: false when a tuned instruction leaves the label list out"
    )
    descriptions: dict[str, str] | None = Field(None, description="classify: what each label means (task.labels)")
    costs: dict[str, float] | None = Field(
        None, description="qa: task.costs, when the answers are priced (the metric is then utility)"
    )


class PredictionRow(_Closed):
    """One test row: the question, the reference, the answer, and what the contender was given."""

    input: str
    expected: str
    predicted: str
    line: int | None = Field(None, description="the row's 1-based line in the test file")
    conversation: str | None = Field(
        None,
        description='conversations: the id of the conversation this answer is a turn of (its "id", else "line '
        'N"); input is then its recent turns written out',
    )
    turn: int | None = Field(
        None, description="conversations: the answer's 0-based index in that conversation's messages"
    )
    shots: int | None = Field(None, description="examples in its prompt")
    cut: bool | None = Field(None, description="generated answers: stopped by the token limit, not by the model")
    looped: bool | None = Field(
        None, description="generated answers: ended where it began repeating itself (task.stop_loops)"
    )
    sources: list[str] | None = Field(None, description="knowledge tasks: the pages that hold the answer")
    passages: list[dict[str, Any]] | None = Field(None, description="what retrieval gave it: source, text, score")


class Contender(_Closed):
    """One contender: its scores with their intervals, its answers, and what it cost (`evaluation.Evaluation` plus costs
    and P(best))."""

    name: str = Field(description="the contender's id in the experiment")
    metrics: dict[str, float] = Field(
        description="every metric of the task kind (docs: task kinds), the headline among them"
    )
    ci: dict[str, Interval] = Field(description="each metric's 95% bootstrap interval")
    latency_ms_mean: float = Field(description="per query: its engine time plus an equal share of the work around it")
    latency_ms_p95: float
    latency_ms_p50: float | None = None
    prompt_tokens_mean: float = Field(description="tokens sent to the model per query (0 for a lookup without an LLM)")
    completion_tokens_mean: float = Field(description="tokens generated per query")
    fit_seconds: float = Field(description="wall time of fitting (training, indexing, or nothing)")
    predict_seconds: float | None = Field(None, description="wall time of answering every test row")
    latency_overhead_ms: float | None = Field(
        None, description="per query: the time outside the engine, included in latency"
    )
    peak_rss_mb: float = Field(description="the process's peak resident memory while fitting and predicting")
    predictions: list[PredictionRow] = Field(description="every test row with its answer, in test-file order")
    labels_predicted: int | None = Field(None, description="classify: distinct labels among the answers")
    top_label_share: float | None = Field(None, description="classify: the share of the most frequent answer")
    per_label_f1: dict[str, float] | None = Field(None, description="classify: F1 per label")
    confusion: dict[str, dict[str, int]] | None = Field(None, description="classify: expected label -> answer -> count")
    solver: dict[str, Any] = Field(
        {},
        description="the saved solver's description: the kind's own record (settings, training, retrieval, "
        "tuning, registered_as)",
    )
    traits: dict[str, Any] = Field({}, description="the kind's traits: kind, family, tier, llm, constant, own_weights")
    answers_cut: int | None = Field(None, description="generated answers stopped by the token limit")
    answer_limit: int | None = Field(None, description="that limit (task.max_new_tokens)")
    answers_looped: int | None = Field(
        None, description="generated answers ended where they began repeating themselves"
    )
    repeats: list[float] | None = Field(None, description="repeats > 1: each repeat's headline score")
    repeat_seeds: list[int] | None = Field(None, description="the seeds of those repeats")
    flags: list[str] = Field(
        [],
        description="degenerate answers found, in words: such a contender is not recommended while a usable one exists",
    )
    cost_per_1k_queries: float | None = Field(
        None,
        description="dollars: measured machine time at the hourly price, or an endpoint's token prices; null "
        "when unknown",
    )
    fit_cost: float | None = Field(None, description="dollars, once")
    basis: str | None = Field(None, description="what the costs rest on")
    upkeep_per_month: float | None = Field(
        None, description="knowledge tasks with data_changes: dollars a month to keep it current"
    )
    upkeep_basis: str | None = Field(
        None, description="what that rests on (a measured re-index, or an estimated retrain)"
    )
    p_best: float | None = Field(
        None, description="the probability it is best, over bootstrap resamples of the test rows"
    )


class Recommendation(_Closed):
    choice: str = Field(description="a contender's id, or collect_more_data")
    reasons: list[str] = Field(description="the evidence behind the choice, one finding each")
    warnings: list[str] = Field(
        [], description="what could undermine it: degenerate answers, too few rows, seed effects"
    )
    tolerance: float | None = Field(
        None,
        description="the largest loss of the headline a cheaper contender may cost (constraints.tolerance or the "
        "task kind's default): it must be shown within it (two one-sided tests) to be chosen",
    )
    headline: str | None = Field(
        None,
        description='what chose: null or the task\'s metric; "judged" under task.headline: judged (the judged win '
        "rate decided)",
    )


class PairJudged(_Closed):
    """Two contenders: how often people would prefer a's answer to b's (ties and "both bad" count half)."""

    a: str = Field(description="the contender listed first")
    b: str = Field(description="the contender listed second")
    estimate: float = Field(
        description="P(a preferred over b), ties half: by PPI from people's ratings and the proxy where calibrated, "
        "else the proxy's own mean"
    )
    ci: list[float] | None = Field(description="its interval at the run's level (95%); null with `ci_reason`")
    ci_reason: str | None = Field(None, description="why there is no interval (too few rated rows, no spread)")
    difference: float = Field(description="2 * estimate - 1: the net preference for a, from -1 (always b) to +1")
    people: float | None = Field(description="people's own mean on the rows they rated (null: nobody rated the pair)")
    people_ci: list[float] | None = Field(
        description="people-only interval for comparison: PPI's construction without the proxy (normal, t "
        "quantile, the two pseudo-ratings of `_doubt`)"
    )
    proxy: float | None = Field(description="the proxy's own mean over every row it judged, uncorrected")
    n_rated: int = Field(description="rows people rated (several reviewers on one row count once, averaged)")
    n_proxied: int = Field(description="rows the proxy judged")
    source: str = Field(description='what the estimate rests on: "people+judge", "judge only (uncalibrated)", ...')
    calibrated: bool = Field(description="people's ratings correct the proxy; false: the proxy's own, unchecked")


class ContenderJudged(_Closed):
    """One contender's win rate: the mean of its pair estimates against every other contender."""

    name: str
    win_rate: float = Field(description="mean over its opponents of P(preferred over that opponent), ties half")
    ci: list[float] | None = Field(
        description="conservative interval: estimate +- z * the mean of its pairs' standard errors (valid whatever "
        "their correlation)"
    )
    opponents: int = Field(description="the pairs it is the mean of")
    p_best: float | None = Field(description="the probability its win rate is the highest (see p_best_method)")
    source: str
    calibrated: bool


class ScoreJudged(_Closed):
    """One contender's mean 1-5 score, people's scale, by PPI from people's scores and the proxy's."""

    name: str
    estimate: float
    ci: list[float] | None
    ci_reason: str | None = None
    people: float | None = Field(description="people's own mean on the rows they scored")
    proxy: float | None = Field(description="the proxy's own mean over every row it scored, uncorrected")
    n_rated: int
    n_proxied: int
    source: str
    calibrated: bool


class JudgedMeasures(_Closed):
    """Every judged figure of a run: per pair, per contender, and (with scores) the mean 1-5 score."""

    proxy: str = Field(description='the proxy people calibrate: "judge", "chrF", ...')
    source: str = Field(description='what the figures rest on overall: "people+judge", "judge only (uncalibrated)"')
    calibrated: bool = Field(description="every pair is corrected by people's ratings; false: shown as uncalibrated")
    level: float = Field(description="the intervals' coverage, 1 - alpha")
    pairs: list[PairJudged]
    contenders: list[ContenderJudged]
    scores: list[ScoreJudged] = Field([], description="pointwise 1-5 scores, when scored")
    p_best_method: str = Field(description="how P(best) was drawn")
    notes: list[str] = Field([], description="ratings left out, and why")


class Figure(_Closed):
    """One measure of agreement with its 95% interval."""

    value: float | None = Field(description="null where it is undefined on these ratings (`note` says why)")
    ci: list[float] | None = Field(description="95% bootstrap interval (resampling the rated pairs), or null")
    n: int = Field(description="how many it is measured on")
    note: str | None = None


class Disagreement(_Closed):
    """A row where a reviewer and the judge chose differently (for the report)."""

    row: int
    a: str
    b: str
    people: str = Field(description="the reviewer's verdict from a's side: a, b or tie (both_bad shown as tie)")
    judge: str
    reviewer: str


class Agreement(_Closed):
    """The judge against people, with whether its numbers may carry the recommendation."""

    common: int = Field(description="(row, a, b) rated by people and judged by the judge")
    compared: int = Field(description="people's ratings compared with the judge (two reviewers on a row count twice)")
    raw: Figure = Field(description="the share of those ratings where the judge gave the same verdict")
    kappa: Figure = Field(
        description="Cohen's kappa over the verdicts a, b, tie (both_bad counts as tie): agreement beyond chance, "
        "1 perfect, 0 no better than chance"
    )
    weighted_kappa: Figure | None = Field(description="quadratic weighted kappa of the 1-5 scores, when both scored")
    kendall_tau: Figure | None = Field(description="Kendall's tau-b of people's mean 1-5 score against the judge's")
    position_consistency: Figure | None = Field(
        description="the share of the judge's verdicts that stay the same when the two answers swap places"
    )
    longer_wins_judge: Figure | None = Field(
        description="of the judge's verdicts for a or b where the answers' lengths differ, the share won by the longer"
    )
    longer_wins_people: Figure | None = Field(description="the same share for people's verdicts")
    reviewers_kappa: Figure | None = Field(
        description="Cohen's kappa between two reviewers on the same (row, a, b): the ceiling a judge can reach"
    )
    threshold: float = Field(description="the kappa lower bound a trusted judge must reach")
    trusted: bool = Field(description="kappa's lower bound >= threshold, on at least MIN_COMMON rated pairs")
    ratings_to_trust: int | None = Field(
        description="rated pairs that would lift kappa's lower bound to the threshold if kappa held (null: it would "
        "not, or it is already trusted)"
    )
    reasons: list[str] = Field(description="why it is trusted or not, with the figures, in words")
    disagreements: list[Disagreement] = Field([], description="the rated pairs where people and the judge differ")


class Judged(_Closed):
    """People's ratings and a judge's verdicts, combined (prediction-powered inference): `adaptlab judge`, `adaptlab
    review`, or a compare with `judge:`."""

    judge: dict[str, Any] | None = Field(
        None,
        description="the judge's identity: model (as loaded, or an endpoint's base_url and name), rubric, "
        "rubric_sha256, template_sha256; null when no judge ran (people calibrate the headline metric instead)",
    )
    ratings: int = Field(description="people's ratings the figures use (review page and imports)")
    reviewers: list[str] = Field([], description="who rated, as they named themselves")
    measures: JudgedMeasures = Field(description="per pair and per contender: the judged win rates with intervals")
    judge_measures: JudgedMeasures | None = Field(
        None,
        description="a judge that is not trusted: its own figures, shown and not used (`measures` then correct the "
        "headline metric instead)",
    )
    agreement: Agreement | None = Field(
        None, description="how far the judge agrees with people, and whether it is trusted (null: no judge)"
    )
    headline: bool = Field(False, description="task.headline: judged — the judged win rate may decide the choice")
    metric_choice: str | None = Field(
        None, description="what the headline metric alone chose (the recommendation's choice unless judged decided)"
    )


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
    queries: int | str | None = Field(
        description="the query volume from which fine-tuning is cheaper in total, or why it never or always is"
    )
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
    absorb: dict[str, Any] = Field(
        description="how the change was absorbed: how (re-index, retrain, none), seconds, dollars, estimate, note"
    )


class Updates(_Closed):
    """Knowledge tasks: every contender asked about a change to the documents, before and after it, without
    retraining."""

    docs: str
    test: str
    changed: list[str]
    added: list[str]
    questions: int
    contenders: dict[str, UpdateRecord]


class ModelInfo(_Closed):
    """The base model as it was loaded (`BaseModel.info`): where from, at what precision, on which device."""

    name: str = Field(
        description="as the experiment named it: the embedded default's name, a folder, a .gguf or a Hub id"
    )
    folder: str | None = Field(None, description="the local files loaded (a Hub id: its cached snapshot)")
    revision: str | None = Field(None, description="a Hub id's commit sha (the snapshot's)")
    dtype: Literal["bf16", "fp16", "fp32"] = Field(
        description="the weights' precision once loaded (model.dtype, with auto resolved: fp32 on the CPU, the "
        "checkpoint's dtype on a GPU)"
    )
    device: str = Field(description="where the model ran: cpu or cuda:N")
    parameters: int | None = Field(None, description="the model's parameters")


def _model_named(value):
    """An experiment's `model:` as results record it: a name stays a name; {path|id, ...} its name; an endpoint
    {base_url, name}."""
    from adaptlab.config import RemoteModelConfig  # the only experiment `model:` with a base_url

    if isinstance(value, BaseModel):
        return {"base_url": value.base_url, "name": value.name} if isinstance(value, RemoteModelConfig) else str(value)
    return value


class CompareResults(_Closed):
    """results.json: what `adaptlab compare` measured and recommended."""

    task: TaskRecord = Field(description="the task as the run saw it")
    base_model: str | dict[str, Any] = Field(description="the base model's name or folder (or an endpoint)")
    model: ModelInfo | None = Field(
        None,
        description="the base model as loaded: its files, revision, dtype and device (absent for an endpoint, "
        "and in runs before it was recorded)",
    )
    data: dict[str, Any] = Field(
        description="the data files and their content hashes; knowledge tasks: the documents and passages"
    )
    seed: int = Field(description="example selection and training; contenders with repeats used seed..seed+N-1")
    repeats: int = Field(1, description="the experiment's repeats")
    environment: dict[str, str] = Field(description="python, machine, device")
    strategies: list[Contender] = Field(description="every contender, references first, in the order they ran")
    recommendation: Recommendation = Field(description="the choice with its reasons and warnings")
    pairwise: list[Pair] = Field(
        [], description="every two contenders: paired difference, interval, test, Holm-adjusted p"
    )
    power: Power | None = Field(None, description="what the test split could detect between the top two")
    break_even_queries: list[BreakEven] = Field(
        [], description="per fine-tuned/prompted pair: when fine-tuning pays back"
    )
    constraints: dict[str, Any] = Field(
        {}, description="the experiment's constraints, as the recommendation weighed them"
    )
    cost_assumptions: dict[str, Any] = Field(
        description="the prices the costs rest on: device, dollars_per_hour and the experiment's costs"
    )
    audit: dict[str, Any] = Field(description="the training data's audit (audit.AuditReport.to_dict)")
    updates: Updates | None = None
    distillation: dict[str, dict[str, Any]] | None = Field(
        None, description="per student: its teacher, both scores, the labeling's cost"
    )
    judged: Judged | None = Field(
        None, description="judged quality: people's ratings, a judge's verdicts, and both combined (absent: not judged)"
    )

    @field_validator("base_model", mode="before")
    @classmethod
    def _named(cls, value):
        return _model_named(value)

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
    comparisons: list[dict[str, Any]] = Field(
        description="per fine-tuned/prompted pair: the difference per size with its interval, crossover_n, "
        "significant_from_n"
    )


class Lineage(_Closed):
    """lineage.json: one `adaptlab finetune` run's result and where it came from."""

    strategy: str
    task: TaskRecord
    base_model: dict[str, Any] = Field(description="name (as the experiment named it), folder and weights_sha256")
    model: ModelInfo | None = Field(None, description="the base model as loaded: its files, revision, dtype and device")
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

    @field_validator("base_model", mode="before")
    @classmethod
    def _named(cls, value):
        return value | {"name": _model_named(value["name"])} if isinstance(value, dict) and "name" in value else value


FILES: dict[str, type[BaseModel]] = {
    "results.json": CompareResults,
    "sweep.json": SweepResults,
    "lineage.json": Lineage,
}


def write_results(path: Path, content: dict | BaseModel) -> dict:
    """Validate `content` against its file's model and write it (atomically); returns what was written.
    A field the model does not know is a bug in adaptlab, said as such."""
    from pydantic import ValidationError

    from adaptlab.files import write_json

    model = FILES[Path(path).name]
    try:
        typed = content if isinstance(content, model) else model.model_validate(content)
    except ValidationError as exc:
        raise AdaptlabError(
            f"adaptlab built a {Path(path).name} its own schema refuses (a bug; please report it): {exc}"
        ) from None
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
        raise AdaptlabError(
            f"{path}: cannot be read as JSON ({exc}); it is written by adaptlab, rerun the command that made it"
        ) from None
    try:
        return model.model_validate(upgrade(content) if upgrade else content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise AdaptlabError(
            f"{path}: field {where}: {first['msg']} ({exc.error_count()} problem(s)); it does not "
            f"match the {path.name} this adaptlab reads (docs/schema/)"
        ) from None


def upgrade(content: dict) -> dict:
    """results.json of older runs in today's shape: `ci95` (the headline's interval only) becomes `ci`; keys since
    dropped go."""
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


def reference() -> str:
    """docs/results.md: every file's fields, table by table, from the models' own descriptions."""
    parts = [
        "# What a run writes\n",
        "Generated from `adaptlab.results` (`python -m adaptlab.results`); the JSON Schemas beside it in",
        "`docs/schema/` are the exact contract. Load a file with `adaptlab.results.load_results` (or",
        "`load_sweep`, `load_lineage`) to get it typed, an older run's upgraded.\n",
    ]
    seen: set[str] = set()
    for name, model in FILES.items():
        parts.append(f"## {name}\n\n{_doc(model)}\n")
        parts += _tables(model, seen)
    return "\n".join(parts)


def _tables(model: type[BaseModel], seen: set[str]) -> list[str]:
    """`model`'s field table, then those of the models its fields hold (each once)."""
    out = ["| field | type | required | meaning |", "|---|---|---|---|"]
    nested = []
    for field, info in model.model_fields.items():
        kind = _type_name(info.annotation)
        out.append(
            f"| `{field}` | {kind} | {'yes' if info.is_required() else ''} | "
            f"{(info.description or '').replace('|', '/')} |"
        )
        nested += [m for m in _models_in(info.annotation) if m.__name__ not in seen]
    out.append("")
    for sub in nested:
        if sub.__name__ not in seen:
            seen.add(sub.__name__)
            out += [f"### {sub.__name__}\n\n{_doc(sub)}\n"] + _tables(sub, seen)
    return out


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


def _models_in(annotation) -> list[type[BaseModel]]:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _type_name(annotation) -> str:
    import re

    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    return re.sub(r"\b(typing|adaptlab\.results|__main__)\.", "", text).replace("NoneType", "null").replace("|", "or")


def write_schemas(folder: Path) -> list[Path]:
    """Each file's JSON Schema into `folder`, and the fields' reference (results.md) beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, schema in schemas().items():
        (folder / name).write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        out.append(folder / name)
    (folder.parent / "results.md").write_text(reference(), encoding="utf-8")
    return out + [folder.parent / "results.md"]


if __name__ == "__main__":  # python -m adaptlab.results [docs/schema]
    import sys

    for written in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schema")):
        print(written)
