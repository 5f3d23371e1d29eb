"""The experiment file: pydantic models whose field descriptions are its reference.

A minimal experiment (paths are relative to the YAML file):

    task: {name: banking-cards, instruction: "Classify the customer's message."}
    data: {train: train.jsonl, test: test.jsonl}
    strategies:
      - {name: zero_shot}
      - {name: few_shot, k: 8, selector: similar}
      - {name: lora, epochs: 3}
      - {name: full, learning_rate: 5.0e-5}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    ConfigDict,
    Discriminator,
    Field,
    SerializeAsAny,
    Tag,
    field_validator,
    model_validator,
)
from pydantic import BaseModel as Model

from adaptlab.models.embedded import EMBEDDED_NAME
from adaptlab.task import DEFAULT_ABSTAIN

DEFAULT_MODEL = EMBEDDED_NAME


class _Strict(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnswerCostsConfig(_Strict):
    """qa: what an answer is worth to the team, in any one unit (dollars, minutes of an agent's time): the headline
    becomes the mean value per question."""

    right_answer: float = Field(
        1.0,
        gt=0,
        description="The value of a right answer (an answer's token F1 with the reference says how right it is).",
    )
    hallucination: float = Field(
        ge=0,
        description="The cost of a wrong answer: an answer to a question the documents do not answer, or the "
        "wrong part of an answer to one they do.",
    )
    wrong_abstention: float = Field(
        ge=0,
        description="The cost of answering the abstain answer to a question the documents do answer (the "
        "employee asks someone else).",
    )


class TaskConfig(_Strict):
    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str | None) -> str | None:
        from adaptlab.tasks import task_kind_names

        if value is not None and value not in task_kind_names():
            raise ValueError(f"must be one of {', '.join(task_kind_names())}")
        return value

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="Task name: lower-case letters, digits, '.', '_' or '-'."
    )
    instruction: str = Field(min_length=1, description="What the model must do; the system turn of every prompt.")
    kind: str | None = Field(
        None,
        description="The task kind: what an answer is and how it is scored (adaptlab.tasks, or a plugin's); "
        "leave out to infer it from the data: answers from documents when data.docs is set, else a label set "
        "or free text, as the training outputs show.",
    )
    max_new_tokens: int | None = Field(
        None,
        gt=0,
        le=4096,
        description="generate: the longest answer, in tokens; leave out to use the longest training answer plus "
        "a quarter (at least 16).",
    )
    stop: list[str] | None = Field(
        None,
        description="generate: an answer ends before the first of these strings (and always at the end of the "
        "turn); leave out to use what the training outputs show (generate tasks: every output one "
        "line, a line break; every output ending in the same mark held once, e.g. ';', right after "
        "it); [] for neither.",
    )
    stop_loops: bool = Field(
        True,
        description="generate: an answer that begins repeating itself (the same span three times or more, 32 "
        "tokens or more) ends there, keeping one copy; false lets it run to max_new_tokens.",
    )
    abstain: str = Field(
        DEFAULT_ABSTAIN,
        min_length=1,
        description='qa: the answer that means "the documents do not say"; a question file\'s `"output": null` '
        "stands for it.",
    )
    costs: AnswerCostsConfig | None = Field(
        None,
        description="qa: what a right answer, a hallucination and a wrong abstention are worth; set, contenders "
        "are ranked by the mean value per question (`utility`) instead of qa_score "
        "(docs/references.md).",
    )
    labels: dict[str, str] | None = Field(
        None,
        description="classify: what each label means ({label: description}); the label list in every prompt then "
        "gives each one's meaning, and tuning also tries the list without them. Every key must be a "
        "label the training outputs use.",
    )
    headline: Literal["metric", "judged"] = Field(
        "metric",
        description="What decides: metric (the task kind's headline metric: accuracy, chrF, qa_score); judged (the "
        "judged win rate: people's ratings from `adaptlab review`, with a judge's verdicts on every row where "
        "`judge:` is set, combined by prediction-powered inference). With metric, the reasons still say where the "
        "judged measure disagrees.",
    )


class UpdatesConfig(_Strict):
    """A change to the documents: new versions of some files, and questions whose answers the change alters."""

    docs: str = Field(
        description="A folder of changed documents, relative to the experiment file: each replaces the file of "
        "the same name in data.docs (a new name is a new document)."
    )
    test: str = Field(
        description="Questions about what changed (JSONL): `output` the answer after the update, `old_output` "
        "the answer before it (an answer still giving the old fact is stale)."
    )


class DataConfig(_Strict):
    train: str = Field(description="Training examples (JSONL), relative to the experiment file.")
    test: str = Field(description="Held-out examples every strategy is measured on.")
    dev: str | None = Field(
        None,
        description="Examples fine-tuning scores to pick its best checkpoint; leave out to hold out dev_fraction "
        "of train.",
    )
    input_col: str = Field(
        "input",
        description="The column (CSV, Parquet, datasets folder) or JSONL field holding the input in train, test "
        "and dev, e.g. text (and a CSV data.unlabeled's column). Left at input (with output_col at "
        "output), JSONL lines may also be prompt/completion or chat messages.",
    )
    output_col: str = Field(
        "output",
        description="The column (CSV, Parquet, datasets folder) or JSONL field holding the expected output in "
        "train, test and dev, e.g. label.",
    )
    allow_overlap: bool = Field(
        False, description="Allow test inputs that also occur in train (reported as warnings instead of an error)."
    )
    docs: str | None = Field(
        None,
        description='Knowledge tasks: a folder of .pdf .md .txt .html files, or a .jsonl of {"id", "text", '
        '"title"?}, relative to the experiment file. Setting it makes the task a qa task.',
    )
    chunk_tokens: int = Field(
        256,
        ge=16,
        le=4096,
        description="Documents are cut into passages of this many tokens (the base model's tokenizer), page by "
        "page (docs/defaults.md: why 256).",
    )
    chunk_overlap: int = Field(
        32,
        ge=0,
        description="Tokens each passage shares with the one before it, so a sentence cut at a boundary is whole "
        "in one of them.",
    )
    updates: UpdatesConfig | None = Field(
        None,
        description="Knowledge tasks: changed documents and questions about the change; after the comparison "
        "every contender is measured on them again without retraining (docs/knowledge.md).",
    )
    unlabeled: str | None = Field(
        None,
        description='Distillation: inputs without answers (JSONL of {"input": ...} lines, or a CSV with '
        "input_col), relative to the experiment file; a contender named as some fine-tuned "
        "contender's `teacher` answers them, and that student trains on its answers beside the "
        "training rows (docs/experiment.md: distillation).",
    )

    @model_validator(mode="after")
    def _overlap_under_size(self):
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_tokens ({self.chunk_tokens})"
            )
        return self


class LocalModelConfig(_Strict):
    """A local model with its precision and device: `{id: Qwen/Qwen2.5-1.5B-Instruct, dtype: bf16}` or `{path:
    ./my-model, device: cpu}`."""

    path: str | None = Field(
        None,
        min_length=1,
        description="The embedded default's name, a local Hugging Face model folder (with config.json) or a "
        ".gguf file, relative to the working directory.",
    )
    id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$",
        description="A Hugging Face Hub id (Org/Name), read from the local cache ($HF_HUB_CACHE, else "
        "$HF_HOME/hub, else ~/.cache/huggingface/hub); fetch it first with `hf download Org/Name`.",
    )
    revision: str | None = Field(
        None,
        min_length=1,
        description="With id: the commit sha, branch or tag to use from the cache (default: the cache's refs/main).",
    )
    download: bool = Field(
        False,
        description="With id: fetch the model into the cache when it is not there. Off by default: adaptlab "
        "downloads only when told to (this, or HF_HUB_OFFLINE=0).",
    )
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto",
        description="The weights' precision once loaded. auto: fp32 on the CPU (bf16 autocast is still chosen "
        "per task where measured faster), the checkpoint's own dtype on a GPU (fp16 where it is bf16 "
        "and the GPU has none). bf16/fp16 halve the memory of fp32.",
    )
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="Where the model runs: auto (the first GPU, else the CPU), cpu, or cuda:N.",
    )

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.id is None):
            raise ValueError(f"give exactly one of path and id, got path={self.path!r}, id={self.id!r}")
        if self.path is not None and (self.revision or self.download):
            raise ValueError("revision and download apply to a Hub id: use id instead of path, or drop them")
        return self

    def spec(self):
        """The adaptlab.models.ModelSpec it describes."""
        from adaptlab.models.spec import ModelSpec

        return ModelSpec(self._source(), self.revision, self.download, self.dtype, self.device)

    def __str__(self) -> str:
        return self._source()

    def _source(self) -> str:
        """The folder or Hub id: `_one_source` makes sure there is exactly one."""
        source = self.path or self.id
        assert source is not None
        return source


class RemoteModelConfig(_Strict):
    """A model behind an OpenAI-compatible endpoint (vLLM, Ollama, a hosted API), prompted over HTTP."""

    base_url: str = Field(
        pattern=r"^https?://",
        validation_alias=AliasChoices("base_url", "endpoint"),
        description="The API root, e.g. http://127.0.0.1:8000/v1 (requests go to {base_url}/chat/completions); "
        "`endpoint:` is read as the same key.",
    )
    name: str = Field(min_length=1, description="The endpoint's model name.")
    api_key_env: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding the API key (never the key itself); leave out for endpoints "
        "without one.",
    )
    max_concurrency: int = Field(4, gt=0, le=256, description="Requests in flight at once.")
    timeout_s: float = Field(60.0, gt=0, description="Seconds before one request is abandoned (then retried).")
    max_retries: int = Field(
        4,
        ge=0,
        le=20,
        description="Retries after a timeout, a connection error, 429 or 5xx, with exponential backoff "
        "(Retry-After honoured).",
    )
    price_input_per_1k: float | None = Field(
        None, ge=0, description="$ per 1,000 prompt tokens, to report the cost from the endpoint's usage."
    )
    price_output_per_1k: float | None = Field(None, ge=0, description="$ per 1,000 completion tokens.")


ModelChoice = str | RemoteModelConfig
MODEL_HELP = (
    "This strategy's base model, if not the experiment's: a local model (the embedded default's name, a "
    "folder, a .gguf, a Hub id from the local cache) or {base_url, name, api_key_env} for an "
    "OpenAI-compatible endpoint."
)


def _model_shape(value) -> str:
    """Which shape an experiment's `model:` has: a name, {path|id, ...} or {base_url|endpoint, name, ...}."""
    if isinstance(value, dict):
        return "endpoint" if ("base_url" in value or "endpoint" in value) else "local"
    if isinstance(value, RemoteModelConfig):
        return "endpoint"
    return "local" if isinstance(value, LocalModelConfig) else "name"


LocalModel = Annotated[
    Annotated[str, Tag("name")] | Annotated[LocalModelConfig, Tag("local")], Discriminator(_model_shape)
]
ExperimentModel = Annotated[
    Annotated[str, Tag("name")]
    | Annotated[LocalModelConfig, Tag("local")]
    | Annotated[RemoteModelConfig, Tag("endpoint")],
    Discriminator(_model_shape),
]


class JudgeConfig(_Strict):
    """A judge model that reads two contenders' answers to each test row and says which is better (asked in both
    orders; a verdict that flips with the order counts as a tie): `{model: {base_url: http://127.0.0.1:8000/v1, name:
    smollm2-135m-instruct}}` or `{model: Qwen/Qwen2.5-7B-Instruct, rows: 100}`."""

    model: ExperimentModel = Field(
        description="The judge: the embedded default's name, a local Hugging Face model folder, a .gguf file or a "
        "Hub id (from the local cache); {path|id, dtype, device}; or {base_url, name, api_key_env, "
        "max_concurrency, ...} for an OpenAI-compatible endpoint (asked concurrently, with retries). "
        "Its replies are cached under $ADAPTLAB_HOME by (model, rubric, prompt, row, answers)."
    )
    rubric: str | None = Field(
        None,
        min_length=1,
        description="What makes one answer better than another, in the judge's own prompt; leave out for the task "
        "kind's default (generate and conversations: helpful, correct, follows the instruction, the "
        "reference being one good answer among several; qa: faithful to the documents, abstains where "
        "they do not say, no invented figures). A classify task needs no judge.",
    )
    pointwise: bool = Field(
        False,
        description="Also ask for a 1-5 score of every contender's answer against the reference answer (one more "
        "request per row and contender).",
    )
    rows: int | None = Field(
        None,
        gt=0,
        description="Judge at most this many test rows (a seeded choice, the same for every contender and every "
        "re-run); leave out to judge every row.",
    )
    trust_threshold: float = Field(
        0.4,
        ge=-1,
        le=1,
        description="Where ratings by people exist: a judge whose Cohen's kappa with them has its interval's lower "
        "bound under this is marked not trusted (its figures are shown; the recommendation does not "
        "rest on them). 0.4 is the usual floor of moderate agreement.",
    )
    max_tokens: int = Field(
        32,
        gt=0,
        le=4096,
        description="The longest judge reply, in tokens. The judge is asked for its verdict (or score) first, then "
        "a few words why: 32 holds both, and bounds a small judge that rambles on (adaptlab serve has no stop "
        "strings); a reply without a verdict counts as a tie.",
    )


class TuneConfig(_Strict):
    """A search of a contender's settings on the dev rows (never the test rows); every tuned contender gets the same
    budget unless told otherwise."""

    trials: int = Field(
        6,
        ge=1,
        le=200,
        description="Settings tried, the contender's own first (so the untuned figure is one of them); the same "
        "default for every contender is the equal effort the comparison needs.",
    )
    budget_minutes: float | None = Field(
        None,
        gt=0,
        description="Stop starting new trials after this many minutes (whichever of trials and minutes ends first).",
    )
    dev_fraction: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="Without a dev file or a fine-tuning dev split, this share of train is held out (from every "
        "contender, as fine-tuning's split is) to score the trials.",
    )
    proposer: str | None = Field(
        None,
        description="Prompted contenders: the id of another prompted contender whose model writes new "
        "instructions from the dev rows the own instruction gets wrong (OPRO-style); they join the "
        "variants the trials choose among. Best with an endpoint's large model.",
    )
    proposals: int = Field(
        2,
        ge=1,
        le=8,
        description="With proposer: how many instructions it writes (each from a different handful of wrong dev rows).",
    )


class StrategyConfig(_Strict):
    """What every contender has: its kind (`name`) and its own id. Each kind's module subclasses this with its
    settings."""

    name: str = Field(
        description="The strategy kind: one of the kinds in adaptlab.kinds, or a plugin's (docs/kinds.md)."
    )
    id: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="This contender's own name in results, the registry and the server (default: the kind's "
        "name); unique in the experiment.",
    )
    repeats: int | None = Field(
        None,
        ge=1,
        le=20,
        description="Times this contender is fitted and measured with different seeds (default: the experiment's "
        "`repeats`); only contenders whose result depends on the seed repeat (fine-tuning; few-shot "
        "with selector random).",
    )
    tune: TuneConfig | None = Field(
        None,
        description="Search this contender's settings on the dev rows before it is measured ({} for the "
        "defaults: 6 trials): prompted kinds their instruction (among variants of the task's) and k, "
        "selector or retriever; fine-tuned kinds learning rate, epochs and rank (docs/tuning.md). "
        "The untuned settings' test score is measured too.",
    )

    @property
    def key(self) -> str:
        """The contender's id: `id`, or the kind's name."""
        return self.id or self.name

    @property
    def seeded(self) -> bool:
        """Whether the seed changes this contender's result (then `repeats` measures by how much)."""
        return False

    @property
    def family(self) -> str | None:
        """This contender's family when its settings decide it (rag with fine_tune trains); None: its kind's."""
        return None


class TrainConfig(StrategyConfig):
    """Settings every fine-tuning method shares (the one training loop reads them)."""

    model: LocalModel | None = Field(
        None,
        description="This strategy's local base model, if not the experiment's: a name, folder, .gguf or Hub id, "
        "or {path|id, dtype, device}. Fine-tuning needs local weights, so with an endpoint as the "
        "experiment's model every fine-tuned contender sets this.",
    )
    epochs: int = Field(3, gt=0, description="Passes over the training set (fewer when early stopping ends it).")
    batch_size: int = Field(8, gt=0, description="Examples per optimizer step.")
    gradient_accumulation: int = Field(
        1, gt=0, description="Run each batch as this many micro-batches (same update, less memory)."
    )
    warmup_ratio: float = Field(
        0.1, ge=0, lt=1, description="Share of steps spent warming up (linear), before cosine decay."
    )
    bf16: bool | Literal["auto"] = Field(
        "auto", description="bf16 autocast for training; 'auto' uses it where measured faster than fp32."
    )
    length_grouped: bool = Field(
        True, description="Batch examples of similar length together (less padding); the order stays seeded."
    )
    dev_fraction: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Share of the training set held out to pick the best checkpoint (stratified by label); 0 "
        "trains on every row and keeps the last weights. Skipped when it would hold out fewer than 8 "
        "rows.",
    )
    eval_every: int | None = Field(
        None, gt=0, description="Score the dev split every this many steps; leave out to score it after each epoch."
    )
    patience: int | None = Field(
        2, gt=0, description="Stop after this many dev scores without improvement; null never stops early."
    )
    dev_metric: Literal["auto", "loglik", "generate"] = Field(
        "auto",
        description="How the dev split is scored. generate: answer each dev row as at test time and score it "
        "with the task's metric (accuracy; chrF on generate tasks); loglik: the mean log-probability "
        "of the expected answers' tokens (teacher forcing, one forward pass; higher is better); "
        "auto: generate on classify tasks (labels are scored, not generated: cheap), loglik on "
        "generate tasks (generating 150-token answers after every epoch can cost more than the "
        "training).",
    )
    dev_generate_rows: int = Field(
        16, gt=0, description="Generate tasks with dev_metric generate: answer only the first this many dev rows."
    )
    max_batch_tokens: int | None = Field(
        None,
        gt=0,
        description="Largest micro-batch, in padded tokens (rows x the longest row, not counting the prompt "
        "prefix every row shares; on a CPU the width is then rounded up to a multiple of 64 once "
        "over 64, so a micro-batch may run up to 63 tokens a row wider): peak memory follows this, "
        "not batch_size x the longest row. A batch over it runs as several micro-batches (the same "
        "update); a longer row runs alone. Leave out for 256 on a CPU (with widths over 64 tokens in "
        "steps of 64 and the other defaults, a LoRA epoch on booking-sql's 72 SQL rows peaks at 2.52 GB "
        "RSS, against 3.72 GB at 512 unpadded with dropout 0.05 and the fused attention, in 0.72x the "
        "time; bench/results/lora-memory-cpu.json) and no bound on a GPU.",
    )
    learning_rate: float = Field(
        5e-3, gt=0, description="Peak learning rate (linear warm-up, cosine decay); each method sets its own default."
    )
    train_on: Literal["pairs", "documents"] = Field(
        "pairs",
        description="Knowledge tasks: 'pairs' trains on the training question/answer pairs; 'documents' first "
        "continues training on the documents' text (every passage, loss on every token: the model "
        "reads the handbook), then on the pairs.",
    )
    document_epochs: int = Field(
        1, gt=0, description="train_on documents: passes over the documents' passages before the pairs."
    )
    teacher: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="Distillation: the id of another contender (prompted, on an endpoint, or fine-tuned) that "
        "answers data.unlabeled after it is measured; this contender trains on the training rows "
        "plus those answers. It runs after its teacher.",
    )

    @property
    def seeded(self) -> bool:
        return True  # data order and the adapter's initial weights


class CostConfig(_Strict):
    """Prices for the cost model; the defaults are round on-demand cloud figures, stated in every results.json."""

    cpu_hour: float = Field(
        0.10,
        ge=0,
        description="$ per hour of the CPU machine a self-hosted strategy runs on (default: a small 2-vCPU cloud VM).",
    )
    gpu_hour: float = Field(
        2.50, ge=0, description="$ per hour of a GPU machine (default: one data-centre GPU on demand)."
    )


class ConstraintsConfig(_Strict):
    """What the team needs; the recommendation weighs these beside the measurements (every field optional)."""

    queries_per_month: int | None = Field(
        None, ge=0, description="Expected query volume; compared with fine-tuning's break-even volume."
    )
    latency_target_ms: float | None = Field(
        None, gt=0, description="Strategies whose measured p95 latency per query is above this are not recommended."
    )
    training_budget_usd: float | None = Field(
        None, ge=0, description="Fine-tuned strategies whose measured fit cost is above this are not recommended."
    )
    training_hardware: Literal["none", "cpu", "gpu"] | None = Field(
        None, description="'none': no machine to train on, so fine-tuning is out."
    )
    data_changes: Literal["rarely", "monthly", "weekly", "daily"] | None = Field(
        None,
        description="How often the data or documents change (a fine-tuned model must be retrained, a rag index "
        "rebuilt); with data.updates the cost of keeping each contender current at this rate joins "
        "its per-query cost.",
    )
    domain: Literal["general", "specialised"] | None = Field(
        None, description="How far the task's language is from everyday text."
    )
    format_control: Literal["loose", "strict"] | None = Field(
        None, description="How exactly outputs must follow a style or format."
    )
    one_model_many_tasks: bool = Field(
        False, description="One deployed base model must serve many tasks (rules out full fine-tuning)."
    )
    tolerance: float | None = Field(
        None,
        ge=0,
        description="The largest loss of the headline metric worth a cheaper contender, in the metric's own units "
        "(0.02 accuracy, 2 chrF). A cheaper contender is recommended over a better-scoring one only when the 90% "
        "paired interval of their difference lies within it (two one-sided tests). Default: 2% of the "
        "metric's scale.",
    )


class MlflowConfig(_Strict):
    """Log every compare of this experiment to MLflow (needs `pip install 'adaptlab[mlflow]'`): a parent run, a child
    run per contender, the recommended solver registered with the alias `champion`."""

    tracking_uri: str | None = Field(
        None,
        min_length=1,
        description="MLflow tracking URI: sqlite:///mlflow.db (a path relative to the working directory, as "
        "MLflow reads it), or a server's http://host:5000; leave out for $MLFLOW_TRACKING_URI, else "
        "sqlite under $ADAPTLAB_HOME/mlflow. --mlflow-uri overrides it.",
    )
    experiment: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="The MLflow experiment the runs go to (created if missing); default: the task's name. The "
        "registered model is always named after the task.",
    )


class ExperimentConfig(_Strict):
    task: TaskConfig
    data: DataConfig
    model: ExperimentModel = Field(
        DEFAULT_MODEL,
        description="The base model every LLM contender uses unless it names its own: the embedded default's "
        "name, a local Hugging Face model folder, a .gguf file, or a Hub id "
        "(Qwen/Qwen2.5-1.5B-Instruct, read from the local Hugging Face cache, never downloaded "
        "unless told); {path|id, revision, download, dtype, device} to choose precision and device; "
        "or {base_url, name, api_key_env} for an OpenAI-compatible endpoint that every prompted "
        "contender then uses (fine-tuned contenders then name a local `model` of their own). The "
        "references need no LLM.",
    )
    seed: int = Field(0, description="Seed for example selection and training; recorded with the results.")
    repeats: int = Field(
        1,
        ge=1,
        le=20,
        description="Fit and measure every seed-dependent contender (fine-tuning, few-shot with random shots) "
        "this many times, seeds seed, seed+1, ...: per-row scores average over repeats, intervals "
        "resample repeats then rows, and the spread is shown. 1 keeps the demo under 10 minutes on a "
        "2-core CPU; a single LoRA run carries seed variance its interval does not show.",
    )
    strategies: list[SerializeAsAny[StrategyConfig]] = Field(
        min_length=1,
        description="The contenders, measured on the same test rows: each a kind (`name`) with its settings and "
        "an optional `id`.",
    )
    baselines: bool = Field(
        True,
        description="Also run the task kind's references (the kinds it names: a trivial one, then one with no "
        "LLM) beside the contenders, unless listed. An LLM contender is recommended only when it beats them.",
    )
    costs: CostConfig = Field(
        default_factory=CostConfig, description="Prices for cost per 1,000 queries, fit cost and break-even volume."
    )
    constraints: ConstraintsConfig = Field(
        default_factory=ConstraintsConfig, description="The team's constraints, weighed by the recommendation."
    )
    mlflow: MlflowConfig | None = Field(
        None,
        description="Log each compare to MLflow: {tracking_uri, experiment}, both optional (`mlflow: {}` logs "
        "with the defaults); leave out to log only with --mlflow.",
    )
    judge: JudgeConfig | None = Field(
        None,
        description="A judge model that compares the contenders' answers row by row after they are measured "
        "(tasks whose answers are text, not labels): {model, rubric, pointwise, rows, trust_threshold, max_tokens}; "
        "`adaptlab judge RUN` does the same for a finished run.",
    )
