"""`Lora`: train a PEFT LoRA adapter on the task, prompted exactly like zero-shot."""

from __future__ import annotations

import re

from adaptlab.config import LoraConfig
from adaptlab.data import Dataset
from adaptlab.engine.lm_solver import LMSolver
from adaptlab.engine.prompt import build_messages, encode_answer, encode_messages
from adaptlab.errors import DataError, Problem
from adaptlab.finetune.trainer import TrainRow, TrainSettings, train
from adaptlab.models import BaseModel
from adaptlab.models.device import bf16_is_fast
from adaptlab.task import Task


class Lora:
    """LoRA fine-tuning: one adapter per task over the shared base model."""

    name = "lora"

    def __init__(self, base: BaseModel, config: LoraConfig | None = None, seed: int = 0, on_step=None):
        self.base = base
        self.config = config or LoraConfig(name="lora")
        self.seed = seed
        self.on_step = on_step  # called with a StepReport after each optimizer step

    def fit(self, task: Task, train_set: Dataset, progress=None) -> LMSolver:
        import torch
        from peft import LoraConfig as PeftLoraConfig
        from peft import PeftModel, get_peft_model

        cfg = self.config
        rows = training_rows(self.base, task, train_set)
        adapter = re.sub(r"\W", "_", f"{task.name}_{self.name}")
        peft_config = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
        torch.manual_seed(self.seed)  # the adapter's initial weights
        model = self.base.model
        if isinstance(model, PeftModel):
            if adapter in model.peft_config:
                model.delete_adapter(adapter)
            model.add_adapter(adapter, peft_config)
        else:
            model = self.base.model = get_peft_model(model, peft_config, adapter_name=adapter)
        model.set_adapter(adapter)
        for name, param in model.named_parameters():
            param.requires_grad = "lora_" in name and f".{adapter}." in name
        bf16 = bf16_is_fast(self.base.device) if cfg.bf16 == "auto" else bool(cfg.bf16)
        settings = TrainSettings(cfg.epochs, cfg.learning_rate, cfg.batch_size, cfg.warmup_ratio, bf16, self.seed)
        stats = train(model, rows, settings, self.base.device, self.base.tokenizer.pad_token_id, self.on_step)
        details = {"training": stats.to_dict(), "config": cfg.model_dump(), "seed": self.seed, "train_hash": train_set.content_hash}
        return LMSolver(self.name, self.base, task, adapter=adapter, details=details)


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

