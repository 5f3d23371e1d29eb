"""`full`: every weight of a fresh copy of the base model is trained (the shared copy stays untouched).

The result is a whole new model per task: it cannot share one base model with other
tasks, and it is saved (and served) as its own Hugging Face model folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from adaptlab.config import TrainConfig
from adaptlab.engine.lm_solver import LMSolver
from adaptlab.errors import ModelError
from adaptlab.finetune.fit import FineTune
from adaptlab.kinds import Kind
from adaptlab.models import BaseModel, load_base_model
from adaptlab.solver import read_solver_json
from adaptlab.task import Task

NAME = "full"


class FullConfig(TrainConfig):
    """Full fine-tuning: every weight of a copy of the base model is trained."""

    name: Literal["full"]
    learning_rate: float = Field(
        5e-5,
        gt=0,
        description="Peak learning rate; full fine-tuning needs a far smaller one than LoRA (docs/defaults.md).",
    )


def fresh_copy(base: BaseModel) -> BaseModel:
    """The base model loaded again from its files, every weight trainable (the shared copy stays as it was).

    The copy is fp32 whatever the shared one's dtype: AdamW's small updates vanish in bf16 weights, so the
    weights train in fp32 (bf16 only in the autocast compute, where it is fast) and the memory check counts
    fp32 weights, their gradients and AdamW's two moments."""
    try:
        copy = load_base_model(
            {"path": base.name, "revision": base.revision, "dtype": "fp32"}, device=base.device, trained_share=1.0
        )
    except ModelError as exc:
        raise ModelError(
            "full fine-tuning trains an fp32 copy of the whole model, with its gradients and "
            f"AdamW's two moments (16 bytes a parameter), which does not fit: {exc}. "
            "A lower model.dtype does not change this copy: use lora (adapters: ~1% of that), a "
            "smaller model, or a device with more memory (model.device)"
        ) from None
    copy.model.requires_grad_(True)
    return copy


def build(config: FullConfig, ctx) -> FineTune:
    return FineTune(
        ctx.model(config.model),
        config,
        lambda base, task, cfg, seed: (fresh_copy(base), None),
        seed=ctx.seed,
        on_step=ctx.on_step,
        dev=ctx.dev,
        documents=ctx.documents,
        **ctx.extra,
    )


def load(folder: Path, ctx) -> LMSolver:
    """The model folder a full fine-tune saved, loaded as its own model."""
    info = read_solver_json(folder, NAME)
    return LMSolver(NAME, ctx.own_model(folder), Task.from_dict(info["task"]), owns_model=True)


KIND = Kind(
    NAME,
    "fine_tuned",
    FullConfig,
    build=build,
    load=load,
    tier=3,
    own_weights=True,
    short_prompts=True,
    summary="every weight of a copy of the base model",
    space={"learning_rate": ("log", 1e-6, 2e-4), "epochs": ("choice", [1, 2, 3])},
)
