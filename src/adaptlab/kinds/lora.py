"""`lora`: a PEFT LoRA adapter trained over the shared base model, loss on the answer tokens only.

The adapter is the only new thing: many tasks share one base model in memory, each
switching its own adapter on (the server does exactly that).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from pydantic import Field

from adaptlab.config import TrainConfig
from adaptlab.engine.lm_solver import LMSolver
from adaptlab.errors import AdaptlabError
from adaptlab.finetune.fit import FineTune
from adaptlab.kinds import Kind
from adaptlab.models import BaseModel
from adaptlab.solver import read_solver_json
from adaptlab.task import Task

NAME = "lora"


class LoraConfig(TrainConfig):
    """PEFT LoRA fine-tuning, loss on the answer tokens only."""

    name: Literal["lora"]
    r: int = Field(8, gt=0, description="LoRA rank.")
    alpha: int = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1, description="Module names that get adapters.")
    learning_rate: float = Field(5e-3, gt=0, description="Peak learning rate (linear warm-up, cosine decay); docs/defaults.md: why 5e-3 at 135M parameters.")


def attach_lora(base: BaseModel, name: str, cfg: LoraConfig, seed: int) -> str:
    """Add a fresh LoRA adapter to the shared base model; only its weights will train. Returns its name."""
    import torch
    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel, get_peft_model

    adapter = re.sub(r"\W", "_", name)
    peft_config = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    torch.manual_seed(seed)  # the adapter's initial weights
    model = base.model
    if isinstance(model, PeftModel):
        if adapter in model.peft_config:
            model.delete_adapter(adapter)
        model.add_adapter(adapter, peft_config)
    else:
        model = base.model = get_peft_model(model, peft_config, adapter_name=adapter)
    model.set_adapter(adapter)
    for param_name, param in model.named_parameters():
        param.requires_grad = "lora_" in param_name and f".{adapter}." in param_name
    return adapter


def load_adapter(base: BaseModel, folder: Path, name: str) -> str:
    """Load a saved adapter into `base` under `name` (PEFT multi-adapter); a failed load leaves nothing behind.

    PEFT keeps a failed adapter's name (a retry would find it and answer with no
    weights), and a failed first adapter leaves its layers wrapped around the base
    model's. Both are undone here.
    """
    from peft import PeftConfig, PeftModel

    name = re.sub(r"\W", "_", name)
    model = base.model
    if isinstance(model, PeftModel) and name in model.peft_config:
        return name
    try:
        config = PeftConfig.from_pretrained(str(folder))
    except Exception as exc:
        raise AdaptlabError(f"{Path(folder).name}: adapter_config.json cannot be read ({type(exc).__name__})") from None
    wrapped = model if isinstance(model, PeftModel) else PeftModel(model, config, adapter_name=name)
    try:
        wrapped.load_adapter(str(folder), adapter_name=name)
    except Exception as exc:
        if wrapped is model:
            if name in model.peft_config:
                model.delete_adapter(name)
        else:
            wrapped.unload()  # the base model's own layers back in place
        raise AdaptlabError(f"the adapter does not load onto base model {base.name!r} ({type(exc).__name__}); was it trained on another base?") from None
    base.model = wrapped
    base.model.eval()
    return name


def _prepare(base: BaseModel, task: Task, cfg: LoraConfig, seed: int):
    return base, attach_lora(base, f"{task.name}_{NAME}", cfg, seed)


def build(config: LoraConfig, ctx) -> FineTune:
    return FineTune(ctx.model(config.model), config, _prepare, seed=ctx.seed, on_step=ctx.on_step, dev=ctx.dev, documents=ctx.documents, **ctx.extra)


def load(folder: Path, ctx) -> LMSolver:
    """The adapter in `folder`, loaded into the base model it was trained on (`ctx.base_for` refuses another)."""
    info = read_solver_json(folder, NAME)
    base = ctx.base_for(info)
    return LMSolver(NAME, base, Task.from_dict(info["task"]), adapter=load_saved_adapter(base, folder))


def load_saved_adapter(base: BaseModel, folder: Path) -> str:
    """The adapter a solver saved in `folder`, loaded under a name of its own (one per saved folder)."""
    return load_adapter(base, folder, "v_" + hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:12])


SPACE = {"learning_rate": ("log", 5e-4, 1e-2), "epochs": ("choice", [1, 2, 3, 5]), "r": ("choice", [4, 8, 16])}  # docs/defaults.md: below 5e-4 underfit, above 1e-2 diverged, on both data sets
KIND = Kind(NAME, "fine_tuned", LoraConfig, build=build, load=load, tier=3, short_prompts=True, summary="a LoRA adapter over the shared base model", space=SPACE)
