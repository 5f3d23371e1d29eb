"""`FineTune`: the `lora` and `full` strategies: train with the one loop, answer with the one engine.

A fine-tuned model is prompted exactly like zero-shot (same chat template, same
instruction, no shots), so the comparison measures what the weights learned.

    lora   a PEFT adapter over the shared base model; switched on only for this solver
    full   every weight of a fresh copy of the base model (the shared one stays untouched)
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from adaptlab.config import FullConfig, LoraConfig
from adaptlab.data import Dataset, split_dev
from adaptlab.engine.lm_solver import LMSolver
from adaptlab.engine.prompt import build_messages, encode_answer, encode_messages
from adaptlab.errors import DataError, Problem
from adaptlab.metrics import row_scores
from adaptlab.finetune.trainer import Hooks, Resume, StepReport, TrainResult, TrainRow, TrainSettings, train
from adaptlab.models import BaseModel, load_base_model
from adaptlab.models.device import bf16_is_fast
from adaptlab.task import Task


class FineTune:
    """Fine-tuning as a Strategy. After `fit`, `result` holds what the loop measured (and whether it was interrupted)."""

    def __init__(self, base: BaseModel, config: LoraConfig | FullConfig, seed: int = 0, on_step: Callable[[StepReport], None] | None = None, dev: Dataset | None = None, checkpoints=None, should_stop: Callable[[], bool] | None = None, resume: Resume | None = None):
        self.base = base
        self.config = config
        self.name = config.name
        self.seed = seed
        self.on_step = on_step
        self.dev = dev  # a separate dev file; None holds out config.dev_fraction of train
        self.checkpoints = checkpoints
        self.should_stop = should_stop
        self.resume = resume
        self.result: TrainResult | None = None

    def fit(self, task: Task, train_set: Dataset, progress=None) -> LMSolver:
        cfg = self.config
        fit_set, dev = (train_set, self.dev) if self.dev is not None else split_dev(train_set, cfg.dev_fraction, self.seed, task.kind == "classify")
        rows = training_rows(self.base, task, fit_set)
        if isinstance(cfg, LoraConfig):
            base, adapter = self.base, attach_lora(self.base, f"{task.name}_{self.name}", cfg, self.seed)
        else:
            base, adapter = fresh_copy(self.base), None
        solver = LMSolver(self.name, base, task, adapter=adapter, owns_model=adapter is None)
        score = (lambda: dev_score(solver, dev)) if dev is not None else None
        bf16 = bf16_is_fast(base.device) if cfg.bf16 == "auto" else bool(cfg.bf16)
        settings = TrainSettings(cfg.epochs, cfg.learning_rate, cfg.batch_size, cfg.warmup_ratio, bf16, self.seed, cfg.gradient_accumulation, cfg.length_grouped, cfg.eval_every, cfg.patience if dev is not None else None)
        hooks = Hooks(self.on_step, score, self.checkpoints, self.should_stop)
        self.result = train(base.model, rows, settings, base.device, base.tokenizer.pad_token_id, hooks, self.resume)
        solver.precision = None  # decide bf16 again on the trained weights
        solver.details = {
            "training": self.result.to_dict(),
            "config": cfg.model_dump(),
            "seed": self.seed,
            "train_hash": train_set.content_hash,
            "train_rows": len(fit_set),
            "dev_rows": len(dev) if dev is not None else 0,
        }
        return solver


def training_rows(base: BaseModel, task: Task, data: Dataset) -> list[TrainRow]:
    """Each example as prompt ids (the zero-shot prompt) and answer ids; too-long ones are an error."""
    rows, problems = [], []
    for e in data:
        row = TrainRow(encode_messages(base.tokenizer, build_messages(task, [], e.input)), encode_answer(base.tokenizer, e.output, base.eot_id))
        if len(row.input_ids) > base.context_length:
            problems.append(Problem("too_long", data.source, e.line, None, f"{len(row.input_ids)} tokens after templating, over the model's context of {base.context_length}", "shorten the example or remove it"))
        rows.append(row)
    if problems:
        raise DataError(problems[:100], truncated=len(problems) > 100)
    return rows


def dev_score(solver: LMSolver, dev: Dataset) -> float:
    """The task's headline metric on the dev rows (accuracy, or chrF for generate tasks)."""
    predicted = [p.output for p in solver.predict(dev.inputs)]
    return float(np.mean(row_scores(solver.task.kind, dev.outputs, predicted)))


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


def fresh_copy(base: BaseModel) -> BaseModel:
    """The base model loaded again from its files, every weight trainable (the shared copy stays as it was)."""
    copy = load_base_model(base.name, device=base.device)
    copy.model.requires_grad_(True)
    return copy
