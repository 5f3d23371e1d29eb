"""`rag`: retrieval-augmented prompting: the k passages of the team's documents nearest each question go in its prompt.

In-context learning for knowledge: the weights stay as they are, the documents can
change without training, and every answer can show the passages it was given.

With `fine_tune: {name: lora, ...}` it is RAFT (finetune/raft.py): a LoRA adapter
trained on the very prompts rag sends, passages included; a fine-tuned contender that
still reads the documents at query time. Saved and served as one version: the index
and the adapter in one folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from adaptlab.config import MODEL_HELP, ModelChoice, StrategyConfig
from adaptlab.engine.lm_solver import LMSolver
from adaptlab.errors import ConfigError
from adaptlab.icl.rag import Rag, RagSolver
from adaptlab.icl.strategies import prompted_solver
from adaptlab.kinds import Kind
from adaptlab.kinds.lora import LoraConfig, load_saved_adapter
from adaptlab.solver import read_solver_json
from adaptlab.task import Task

NAME = "rag"


class RagConfig(StrategyConfig):
    """Retrieved passages in the prompt."""

    name: Literal["rag"]
    k: int = Field(4, gt=0, le=50, description="Passages placed in each prompt (docs/defaults.md: why 4).")
    retriever: Literal["bm25", "dense", "hybrid"] = Field(
        "hybrid",
        description="bm25: word overlap (bm25s); dense: the sentence embedder's cosine; hybrid: both, fused by "
        "reciprocal rank (docs/knowledge.md: how they were chosen).",
    )
    model: ModelChoice | None = Field(None, description=MODEL_HELP)
    fine_tune: LoraConfig | None = Field(
        None,
        description="RAFT: train a LoRA adapter ({name: lora, epochs, learning_rate, ...}) on the training "
        "questions with their retrieved passages in the prompt; it then answers with retrieval as "
        "plain rag does.",
    )
    without_gold: float = Field(
        0.2,
        ge=0,
        le=1,
        description="fine_tune: share of the answerable training rows (those naming sources) whose gold passages "
        "are replaced by the next retrieved ones, so the model learns to cope when retrieval misses "
        "(RAFT's 80/20; docs/defaults.md).",
    )

    @property
    def seeded(self) -> bool:
        return self.fine_tune is not None

    @property
    def family(self) -> str | None:
        return "fine_tuned" if self.fine_tune is not None else None

    @model_validator(mode="after")
    def _local_when_trained(self):
        if self.fine_tune is not None and self.model is not None and not isinstance(self.model, str):
            raise ValueError(
                "fine_tune trains local weights: a rag contender with fine_tune cannot name an endpoint as its model"
            )
        return self


def build(config: RagConfig, ctx):
    if ctx.documents is None:
        raise ConfigError(
            f"strategy {config.key!r} (rag) retrieves from documents: set data.docs in the "
            "experiment to a folder of .pdf .md .txt .html files"
        )
    if config.fine_tune is None:
        return Rag(ctx.model(config.model), NAME, ctx.documents, config.k, config.retriever)
    from adaptlab.finetune.fit import FineTune
    from adaptlab.finetune.raft import Raft
    from adaptlab.kinds.lora import attach_lora

    tune = config.fine_tune.model_copy(update={"model": config.model or config.fine_tune.model, "train_on": "pairs"})
    prepare = lambda base, task, cfg, seed: (base, attach_lora(base, f"{task.name}_{config.key}", cfg, seed))  # noqa: E731 (one adapter per contender)
    fit = FineTune(ctx.model(tune.model), tune, prepare, seed=ctx.seed, on_step=ctx.on_step, dev=ctx.dev)
    return Raft(NAME, fit, ctx.documents, config.k, config.retriever, config.without_gold, ctx.seed)


def load(folder: Path, ctx) -> RagSolver:
    """The saved index (chunks.json, vectors.npy) and prompt (and a RAFT adapter), on the model it was fitted on
    (`ctx.base_for` refuses another)."""
    from adaptlab.knowledge.index import load_index

    info = read_solver_json(folder, NAME)
    retrieval = info["retrieval"]
    index = load_index(folder, retrieval["retriever"], ctx.embedder)
    base, task = ctx.base_for(info), Task.from_dict(info["task"])
    if (Path(folder) / "adapter_config.json").is_file():
        return RagSolver(LMSolver(NAME, base, task, adapter=load_saved_adapter(base, folder)), index, retrieval["k"])
    return RagSolver(prompted_solver(NAME, base, task), index, retrieval["k"])


KIND = Kind(
    NAME,
    "prompted",
    RagConfig,
    build=build,
    load=load,
    tier=2,
    reads_documents=True,
    summary="retrieved passages of the documents in every prompt",
    space={"k": ("choice", [1, 2, 4, 8]), "retriever": ("choice", ["bm25", "dense", "hybrid"])},
)
