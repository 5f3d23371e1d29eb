"""The training loop (the only one): AdamW, warm-up then cosine decay, loss on answer tokens only.

Every row of a task starts with the same tokens (system turn, label list, user
header), so each batch runs that shared prefix once, with gradients, and the rows'
own tokens on a copy of its cache: with a 70-token prefix and 25-token rows, a
batch of 8 costs 70 + 8 x 25 = 270 tokens instead of 760. The math is the same
as running each row whole (the tests check loss and gradients); only LoRA
dropout's noise on the prefix is shared by the rows of a batch.

It pays where compute is the limit (CPUs). On a GPU a small batch is bound by
kernel launches, and two passes cost more than one: bench/cuda_check.py measured
whole rows at 9.6k tok/s vs 5.8k shared on an H100 (SmolLM2-135M shape, LoRA r8),
so there each row runs whole.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from adaptlab.engine.kv import run_with_cache
from adaptlab.engine.scoring import common_prefix

IGNORE = -100  # label id the loss skips (prompt tokens and padding)


@dataclass(frozen=True)
class TrainRow:
    """One example as the model sees it: prompt and answer ids; only the answer is learned."""

    prompt: list[int]
    answer: list[int]

    @property
    def input_ids(self) -> list[int]:
        return self.prompt + self.answer

    @property
    def labels(self) -> list[int]:
        return [IGNORE] * len(self.prompt) + self.answer


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    learning_rate: float
    batch_size: int
    warmup_ratio: float
    bf16: bool
    seed: int


@dataclass
class TrainStats:
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    epoch_losses: list[float] = field(default_factory=list)
    bf16: bool = False

    def to_dict(self) -> dict:
        return {**asdict(self), "tokens_per_second": self.tokens / self.seconds if self.seconds else None}


@dataclass(frozen=True)
class StepReport:
    step: int
    total_steps: int
    epoch: int
    loss: float
    tokens_per_second: float


def train(model, rows: list[TrainRow], settings: TrainSettings, device: str, pad_id: int, on_step: Callable[[StepReport], None] | None = None) -> TrainStats:
    """Train the parameters of `model` that require grad on `rows`; returns what it measured."""
    import torch

    torch.manual_seed(settings.seed)
    order_rng = torch.Generator().manual_seed(settings.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    per_epoch = math.ceil(len(rows) / settings.batch_size)
    total = per_epoch * settings.epochs
    warmup = int(total * settings.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_scale(step, warmup, total))
    shared = shared_prefix(rows) if device == "cpu" else []
    stats = TrainStats(bf16=settings.bf16)
    start = time.perf_counter()
    model.train()
    try:
        for epoch in range(settings.epochs):
            order = torch.randperm(len(rows), generator=order_rng).tolist()
            losses = []
            for b in range(per_epoch):
                batch = [rows[i] for i in order[b * settings.batch_size : (b + 1) * settings.batch_size]]
                with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=settings.bf16):
                    loss = batch_loss(model, batch, shared, pad_id, device)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                stats.steps += 1
                stats.tokens += sum(len(r.input_ids) for r in batch)
                stats.seconds = time.perf_counter() - start
                if on_step:
                    on_step(StepReport(stats.steps, total, epoch + 1, losses[-1], stats.tokens / stats.seconds))
            stats.epoch_losses.append(sum(losses) / len(losses))
    finally:
        model.eval()
    return stats


def _lr_scale(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def shared_prefix(rows: list[TrainRow]) -> list[int]:
    """Prompt tokens every row starts with, leaving each row at least one prompt token of its own."""
    if not rows:
        return []
    return common_prefix([r.prompt for r in rows])[: min(len(r.prompt) for r in rows) - 1]


def batch_loss(model, batch: list[TrainRow], shared: list[int], pad_id: int, device: str):
    """Mean cross-entropy over the batch's answer tokens, running the shared prefix once."""
    import torch

    if not shared:
        input_ids, labels, mask = _collate(batch, pad_id, device)
        return model(input_ids=input_ids, attention_mask=mask, labels=labels, use_cache=False).loss
    _, prefix = run_with_cache(model, torch.tensor([shared], device=device), logits_to_keep=1)
    own = [TrainRow(r.prompt[len(shared) :], r.answer) for r in batch]
    input_ids, labels, _ = _collate(own, pad_id, device)  # right padding: never attended by real tokens
    out, _ = run_with_cache(model, input_ids, prefix, len(shared), labels=labels)
    return out.loss


def _collate(batch: list[TrainRow], pad_id: int, device: str):
    """Right-pad a batch to its own longest row (dynamic padding)."""
    import torch

    width = max(len(r.input_ids) for r in batch)
    ids = [r.input_ids + [pad_id] * (width - len(r.input_ids)) for r in batch]
    labels = [r.labels + [IGNORE] * (width - len(r.labels)) for r in batch]
    mask = [[1] * len(r.input_ids) + [0] * (width - len(r.input_ids)) for r in batch]
    return (torch.tensor(ids, device=device), torch.tensor(labels, device=device), torch.tensor(mask, device=device))
