"""`rag`: retrieval-augmented prompting: the k passages of the team's documents nearest each question go in its prompt.

In-context learning for knowledge: the weights stay as they are, the documents can
change without training, and every answer can show the passages it was given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from adaptlab.config import MODEL_HELP, ModelChoice, StrategyConfig
from adaptlab.errors import ConfigError
from adaptlab.icl.rag import Rag, RagSolver
from adaptlab.icl.strategies import prompted_solver
from adaptlab.kinds import Kind
from adaptlab.solver import read_solver_json
from adaptlab.task import Task

NAME = "rag"


class RagConfig(StrategyConfig):
    """Retrieved passages in the prompt."""

    name: Literal["rag"]
    k: int = Field(4, gt=0, le=50, description="Passages placed in each prompt (docs/defaults.md: why 4).")
    retriever: Literal["bm25", "dense", "hybrid"] = Field("hybrid", description="bm25: word overlap (bm25s); dense: the sentence embedder's cosine; hybrid: both, fused by reciprocal rank (README: how they were chosen).")
    model: ModelChoice | None = Field(None, description=MODEL_HELP)


def build(config: RagConfig, ctx) -> Rag:
    if ctx.documents is None:
        raise ConfigError(f"strategy {config.key!r} (rag) retrieves from documents: set data.docs in the experiment to a folder of .pdf .md .txt .html files")
    return Rag(ctx.model(config.model), NAME, ctx.documents, config.k, config.retriever)


def load(folder: Path, ctx) -> RagSolver:
    """The saved index (chunks.json, vectors.npy) and prompt, on the model it was fitted on (`ctx.base_for` refuses another)."""
    from adaptlab.knowledge.index import load_index

    info = read_solver_json(folder, NAME)
    retrieval = info["retrieval"]
    index = load_index(folder, retrieval["retriever"], ctx.embedder)
    return RagSolver(prompted_solver(NAME, ctx.base_for(info), Task.from_dict(info["task"])), index, retrieval["k"])


KIND = Kind(NAME, "prompted", RagConfig, build=build, load=load, tier=2, summary="retrieved passages of the documents in every prompt")
