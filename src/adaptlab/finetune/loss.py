"""The training loss: mean cross-entropy over answer tokens, computed lean.

Shared prefix (CPU only). Every row of a task starts with the same tokens (system
turn, label list, user header), so each step runs that prefix once, with
gradients, and the rows' own tokens on its cache: with a 70-token prefix and
25-token rows, 8 rows cost 70 + 8 x 25 = 270 tokens instead of 760. Its
micro-batches gather the gradient of the prefix's keys and values, sent back
through the prefix once at the end of the step (the cache lives for one step).
The math is the same as running each row whole (the tests check loss and
gradients); only LoRA dropout's noise on the prefix is shared by the rows of a
step. On a GPU a small batch is bound by kernel launches and two passes cost more
than one (bench/cuda_check.py: whole rows 9.6k tok/s vs 5.8k shared on an H100),
and under DDP each rank must run one forward per backward, so there rows run whole.

Memory. Activations cost ~2.5 MB per token (SmolLM2-135M, LoRA r8 on every linear
layer, fp32, LoRA dropout on: a third of that is its copies of the inputs; the default
is no dropout), so a batch runs as micro-batches of at most `max_batch_tokens` padded
tokens and peak memory follows
that budget, not batch size x the longest row. Logits are computed only where the
next token is an answer token: 49,152 fp32 values per position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from adaptlab.engine.kv import KV, run_with_cache
from adaptlab.engine.scoring import common_prefix

IGNORE = -100  # label id the loss skips (prompt tokens and padding)
# micro-batch widths over this, on a CPU, in steps of it: few distinct shapes, so oneDNN reuses its kernels and their
# memory (a LoRA epoch on booking-sql in bf16, 256-token micro-batches, dropout 0.05, fused attention: 2.65 GB peak
# instead of 3.53 unpadded, 73 s against 70; bench/results/lora-memory-cpu.json)
CPU_PAD_TO = 64
# micro-batch budget on a CPU: with CPU_PAD_TO and the other defaults (LoRA dropout 0, the explicit training attention),
# a LoRA epoch on every linear layer of booking-sql peaks at 2.52 GB RSS, against 3.72 GB at 512 unpadded with dropout
# 0.05 and the fused attention, in 0.72x the time (bench/results/lora-memory-cpu.json)
CPU_BATCH_TOKENS = 256


@dataclass(frozen=True)
class TrainRow:
    """One example as the model sees it: prompt and answer ids; only the answer is learned.

    A conversation is one row whose answer runs from its first learned assistant turn to its end: `learn`
    marks the answer tokens learned (assistant turns of weight 1), the user turns between them are context.
    """

    prompt: list[int]
    answer: list[int]
    learn: tuple[bool, ...] | None = None  # per answer token; None: every one

    @property
    def input_ids(self) -> list[int]:
        return self.prompt + self.answer

    @property
    def labels(self) -> list[int]:
        if self.learn is None:
            return [IGNORE] * len(self.prompt) + self.answer
        return [IGNORE] * len(self.prompt) + [a if keep else IGNORE for a, keep in zip(self.answer, self.learn)]

    @property
    def learned(self) -> int:
        """How many tokens the loss is the mean over."""
        return len(self.answer) if self.learn is None else sum(self.learn)


def shared_prefix(rows: list[TrainRow]) -> list[int]:
    """Prompt tokens every row starts with, leaving each row at least one prompt token of its own."""
    if not rows:
        return []
    return common_prefix([r.prompt for r in rows])[: min(len(r.prompt) for r in rows) - 1]


def token_budget(max_batch_tokens: int | None, device: str) -> float:
    """The micro-batch budget in padded tokens: the setting, else CPU_BATCH_TOKENS on a CPU and no bound on a GPU
    (there a 135M model's batch fits easily, and a small batch is bound by kernel launches, so splitting it costs
    time)."""
    return max_batch_tokens or (CPU_BATCH_TOKENS if device == "cpu" else math.inf)


def micro_batches(batch: list[TrainRow], skip: int, accumulation: int, max_tokens: float) -> list[list[TrainRow]]:
    """`batch` cut into at least `accumulation` micro-batches of at most `max_tokens` padded tokens each.

    Rows go longest first, so each micro-batch pads to its own first row; a row
    longer than `max_tokens` runs alone. `skip` leading tokens of every row (the
    shared prefix) run once per step and are not counted. Peak memory follows
    the budget, not the batch: 8 rows x 300 tokens at a budget of 1,024 run as 3+3+2.
    """
    per = math.ceil(len(batch) / accumulation)
    parts: list[list[TrainRow]] = []
    for row in sorted(batch, key=lambda r: -len(r.input_ids)):
        part = parts[-1] if parts else None
        if part and len(part) < per and (len(part) + 1) * (len(part[0].input_ids) - skip) <= max_tokens:
            part.append(row)
        else:
            parts.append([row])
    return parts


def batch_loss(model, batch: list[TrainRow], shared: list[int], pad_id: int, device: str, prefix: KV | None = None):
    """Mean cross-entropy over the batch's answer tokens, running the shared prefix once (or on `prefix`, its cache,
    when given).

    Logits are computed only where the next token is an answer token: the output
    layer is 49,152 wide, so 8 rows x 300 positions of fp32 logits are 472 MB (and
    as much again for log-softmax and its gradient); 8 x 150 answer tokens, half that.
    """
    import torch

    if not shared:
        input_ids, labels, mask = _collate(batch, pad_id, device)
        keep, targets = _answer_positions(labels)
        logits = model(input_ids=input_ids, attention_mask=mask, logits_to_keep=keep, use_cache=False).logits
        return torch.nn.functional.cross_entropy(logits.float(), targets)
    if prefix is None:
        prefix = prefix_cache(model, shared, device)
    own = [TrainRow(r.prompt[len(shared) :], r.answer, r.learn) for r in batch]
    input_ids, labels, _ = _collate(own, pad_id, device)  # right padding: never attended by real tokens
    keep, targets = _answer_positions(labels)
    out, _ = run_with_cache(model, input_ids, prefix, len(shared), logits_to_keep=keep)
    return torch.nn.functional.cross_entropy(out.logits.float(), targets)


def mean_loss(
    model, rows: list[TrainRow], pad_id: int, device: str, bf16: bool = False, max_batch_tokens: int | None = None
) -> float:
    """Mean cross-entropy over `rows`' answer tokens, without gradients (teacher forcing); dropout is the caller's (eval
    mode)."""
    import torch

    shared = shared_prefix(rows) if shares_prefix(device, 1) else []
    total = 0.0
    with torch.inference_mode(), autocast_bf16(device, bf16):
        prefix = prefix_cache(model, shared, device) if shared else None
        for part in micro_batches(rows, len(shared), 1, token_budget(max_batch_tokens, device)):
            total += batch_loss(model, part, shared, pad_id, device, prefix).item() * sum(r.learned for r in part)
    return total / sum(r.learned for r in rows)


def prefix_cache(model, shared: list[int], device: str, recompute: bool = False) -> KV:
    """The shared prefix's keys and values (with gradients unless disabled): one row, one pass.

    `recompute`: keep none of its activations; the backward pass runs it again, with
    the same dropout. A step of several micro-batches does so: otherwise they would
    live beside every micro-batch's (260 prefix tokens x ~1.4 MB = 350 MB), for
    ~4% more compute (one more forward of the prefix: 260 x 2N against 8 rows x
    ~600 tokens x 4N); a step of one micro-batch keeps them, as they are needed then anyway.
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    def run(ids):
        return [t for layer in run_with_cache(model, ids, logits_to_keep=1)[1] for t in layer]

    ids = torch.tensor([shared], device=device)
    flat = checkpoint(run, ids, use_reentrant=False) if recompute and torch.is_grad_enabled() else run(ids)
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _answer_positions(labels):
    """Which positions predict an answer token ([batch, n] bool; the model keeps only their logits), and those tokens in
    the same order."""
    import torch

    following = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = following != IGNORE
    return keep, following[following != IGNORE]


def _collate(batch: list[TrainRow], pad_id: int, device: str):
    """Right-pad a batch to its own longest row (dynamic padding); on a CPU a width over CPU_PAD_TO tokens is rounded up
    to a multiple of it."""
    import torch

    width = max(len(r.input_ids) for r in batch)
    if (
        device == "cpu" and width > CPU_PAD_TO
    ):  # short rows (a classification's ~25 tokens) are not padded: that would cost more than it saves
        width = -(-width // CPU_PAD_TO) * CPU_PAD_TO
    ids = [r.input_ids + [pad_id] * (width - len(r.input_ids)) for r in batch]
    labels = [r.labels + [IGNORE] * (width - len(r.labels)) for r in batch]
    mask = [[1] * len(r.input_ids) + [0] * (width - len(r.input_ids)) for r in batch]
    return (torch.tensor(ids, device=device), torch.tensor(labels, device=device), torch.tensor(mask, device=device))


def shares_prefix(device: str, world: int) -> bool:
    """Run the shared prefix once per step: on one CPU process only (the module docstring says why)."""
    return device == "cpu" and world == 1


def autocast_bf16(device: str, bf16: bool):
    import torch

    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16)
