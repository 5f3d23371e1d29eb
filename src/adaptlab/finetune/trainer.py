"""The training loop (the only one): AdamW, warm-up then cosine decay, loss on answer tokens only.

It trains whatever parameters of `model` require grad (a LoRA adapter or every
weight), scores a dev split with the task metric to keep the best weights and stop
early, and checkpoints everything needed to continue bit-exactly after a crash.

The loss itself (answer tokens only, the shared prefix once per step, micro-batches
under a token budget) is finetune/loss.py.

Distributed. Under `accelerate launch` (WORLD_SIZE > 1) the model is wrapped by
accelerate (DDP), every rank walks the same seeded batch order and takes its
share of each batch, and rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from adaptlab.engine.session import native_attention
from adaptlab.finetune.distributed import Dist
from adaptlab.finetune.loss import (
    TrainRow,
    autocast_bf16,
    batch_loss,
    micro_batches,
    prefix_cache,
    shared_prefix,
    shares_prefix,
    token_budget,
)

GROUP_SPAN = 4  # length grouping sorts windows of this many batches (small: batches still vary between epochs)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    learning_rate: float
    batch_size: int
    warmup_ratio: float
    bf16: bool
    seed: int
    gradient_accumulation: int = 1
    length_grouped: bool = True
    eval_every: int | None = None  # steps; None scores the dev split after each epoch
    patience: int | None = None  # dev scores without improvement before stopping
    max_batch_tokens: int | None = (
        None  # padded tokens per micro-batch; None: CPU_BATCH_TOKENS on a CPU, unbounded elsewhere
    )


@dataclass
class TrainState:
    """Where training stands: all a checkpoint needs, besides tensors, to continue exactly."""

    step: int = 0
    epoch: int = 0  # the epoch in progress (0-based)
    batch: int = 0  # batches of that epoch already done
    tokens: int = 0
    seconds: float = 0.0
    epoch_loss_sum: float = 0.0
    epoch_losses: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)  # {"step", "epoch", "score"}
    best_score: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    stopped_early: bool = False


@dataclass
class TrainResult:
    state: TrainState
    total_steps: int
    bf16: bool
    world_size: int = 1
    interrupted: bool = False  # stopped on request after checkpointing; resumable
    restored_best: bool = False  # the best dev-scored weights were put back at the end

    def to_dict(self) -> dict:
        s = self.state
        return {
            "steps": s.step,
            "total_steps": self.total_steps,
            "tokens": s.tokens,
            "seconds": s.seconds,
            "tokens_per_second": s.tokens / s.seconds if s.seconds else None,
            "epoch_losses": s.epoch_losses,
            "evals": s.evals,
            "best_dev_score": s.best_score,
            "best_step": s.best_step,
            "stopped_early": s.stopped_early,
            "restored_best": self.restored_best,
            "bf16": self.bf16,
            "world_size": self.world_size,
            "interrupted": self.interrupted,
        }


@dataclass(frozen=True)
class StepReport:
    step: int
    total_steps: int
    epoch: int  # 1-based
    loss: float
    tokens_per_second: float
    rows: tuple[int, ...] = ()  # indices of the training rows of this step (every rank's)
    dev_score: float | None = None  # set when the dev split was scored after this step

    def describe(self) -> str:
        """The progress line: epoch, loss, speed, and the dev score when there is one."""
        dev = f" dev {self.dev_score:.3f}" if self.dev_score is not None else ""
        return f"epoch {self.epoch} loss {self.loss:.4f} {self.tokens_per_second:.0f} tok/s{dev}"


class Checkpoints(Protocol):
    """Where the loop saves and finds its checkpoints (finetune.checkpoint.CheckpointFolder)."""

    def due(self, step: int) -> bool: ...

    def save(self, state: TrainState, trainable: dict, optimizer, scheduler, best: dict | None, dist: Dist) -> None: ...


@dataclass
class Hooks:
    """What the caller plugs into the loop; every hook is optional."""

    on_step: Callable[[StepReport], None] | None = None
    evaluate: Callable[[], float] | None = None  # dev score, higher is better; None: no dev split
    checkpoints: Checkpoints | None = None
    should_stop: Callable[[], bool] | None = None  # e.g. SIGTERM arrived: checkpoint and return


@dataclass
class Resume:
    """A checkpoint's content, loaded (finetune.checkpoint.load_checkpoint)."""

    state: TrainState
    trainable: dict
    optimizer: dict
    scheduler: dict
    rng: dict
    best: dict | None


def train(
    model,
    rows: list[TrainRow],
    settings: TrainSettings,
    device: str,
    pad_id: int,
    hooks: Hooks | None = None,
    resume: Resume | None = None,
) -> TrainResult:
    """Train the parameters of `model` that require grad on `rows`; returns what it measured."""
    import torch

    hooks = hooks or Hooks()
    dist = Dist.from_env(device)
    torch.manual_seed(settings.seed)
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    params = list(named.values())
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    per_epoch = math.ceil(len(rows) / settings.batch_size)
    total = per_epoch * settings.epochs
    warmup = int(total * settings.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_scale(step, warmup, total))
    state, best = TrainState(), None
    if resume:
        _restore(resume, named, optimizer, scheduler)
        state, best = resume.state, resume.best
    runner = dist.wrap(model)
    shared = shared_prefix(rows) if shares_prefix(device, dist.world) else []
    lengths = [len(r.input_ids) - len(shared) for r in rows]
    result = TrainResult(state, total, settings.bf16, dist.world)
    start = time.perf_counter() - state.seconds

    def score_dev() -> float | None:
        nonlocal best
        if hooks.evaluate is None:
            return None
        model.eval()
        with torch.random.fork_rng(devices=[]):  # scoring must not shift the dropout stream
            score = float(hooks.evaluate())
        model.train()
        state.evals.append({"step": state.step, "epoch": state.epoch + 1, "score": score})
        if state.best_score is None or score > state.best_score:
            state.best_score, state.best_step, state.bad_evals = score, state.step, 0
            best = {n: p.detach().clone() for n, p in named.items()}
        else:
            state.bad_evals += 1
            state.stopped_early = settings.patience is not None and state.bad_evals >= settings.patience
        return score

    # engine/session.py: _training_attention
    attention = native_attention(model, training=True) if device == "cpu" else contextlib.nullcontext()
    attention.__enter__()
    model.train()
    try:
        while state.epoch < settings.epochs and not state.stopped_early:
            batches = epoch_batches(lengths, settings.batch_size, settings.seed, state.epoch, settings.length_grouped)
            while state.batch < len(batches) and not state.stopped_early:
                batch = batches[state.batch]
                loss, tokens = _step(
                    runner, model, [rows[i] for i in dist.share(batch)], shared, pad_id, device, settings, dist
                )
                _apply_gradients(params, optimizer, scheduler)
                state.step += 1
                state.batch += 1
                state.tokens += dist.sum(tokens)
                state.epoch_loss_sum += loss
                state.seconds = time.perf_counter() - start
                score = score_dev() if settings.eval_every and state.step % settings.eval_every == 0 else None
                epoch_done = state.batch == len(batches)
                if epoch_done:
                    state.epoch_losses.append(state.epoch_loss_sum / len(batches))
                    state.epoch_loss_sum = 0.0
                    if not settings.eval_every:
                        score = score_dev()
                    state.epoch, state.batch = state.epoch + 1, 0
                stop = bool(hooks.should_stop and dist.any(hooks.should_stop()))
                # before the checkpoint: a crash between them must not leave a checkpointed step unlogged
                if hooks.on_step:
                    hooks.on_step(_step_report(state, total, settings.epochs, loss, batch, score))
                if hooks.checkpoints and (stop or hooks.checkpoints.due(state.step)):
                    hooks.checkpoints.save(state, named, optimizer, scheduler, best, dist)
                if stop:
                    result.interrupted = True
                    return result
                if epoch_done:
                    break
    finally:
        model.eval()
        attention.__exit__(None, None, None)
    if best is not None and state.best_step != state.step:
        _copy_weights(best, named)
        result.restored_best = True
    dist.check_in_sync(params)
    return result


def _restore(resume: Resume, named: dict, optimizer, scheduler) -> None:
    """Put a checkpoint's trainable weights, optimizer and scheduler state and random streams back."""
    _copy_weights(resume.trainable, named)
    optimizer.load_state_dict(resume.optimizer)
    scheduler.load_state_dict(resume.scheduler)
    set_rng_state(resume.rng)


def _copy_weights(values: dict, named: dict) -> None:
    """Copy saved tensors (name -> tensor) into the trainable parameters of the same names, in place."""
    import torch

    with torch.no_grad():
        for name, value in values.items():
            named[name].copy_(value)


def _apply_gradients(params: list, optimizer, scheduler) -> None:
    """The optimizer step on the gathered gradients (clipped to norm 1), the schedule advanced, the gradients freed."""
    import torch

    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def _step_report(
    state: TrainState, total: int, epochs: int, loss: float, batch: list[int], score: float | None
) -> StepReport:
    """What `on_step` hears of the step just taken; an epoch just finished is still the one reported."""
    return StepReport(
        state.step,
        total,
        min(state.epoch + (state.batch > 0), epochs),
        loss,
        state.tokens / max(state.seconds, 1e-9),
        tuple(batch),
        score,
    )


def _step(
    runner,
    model,
    batch: list[TrainRow],
    shared: list[int],
    pad_id: int,
    device: str,
    settings: TrainSettings,
    dist: Dist,
) -> tuple[float, int]:
    """One optimizer step's gradients, over micro-batches; the loss is the mean over the batch's answer tokens."""
    import torch

    parts = micro_batches(
        batch, len(shared), settings.gradient_accumulation, token_budget(settings.max_batch_tokens, device)
    )
    answer_tokens = sum(r.learned for r in batch)
    prefix = leaves = None
    if shared:  # run once for the whole step; the micro-batches gather its gradient, sent back through it at the end
        with autocast_bf16(device, settings.bf16):
            prefix = prefix_cache(model, shared, device, recompute=len(parts) > 1)
        leaves = [
            (k.detach().requires_grad_(k.requires_grad), v.detach().requires_grad_(v.requires_grad)) for k, v in prefix
        ]
    total = 0.0
    for i, part in enumerate(parts):
        sync = contextlib.nullcontext() if i == len(parts) - 1 or dist.world == 1 else runner.no_sync()
        with sync, autocast_bf16(device, settings.bf16):
            loss = batch_loss(runner if dist.world > 1 else model, part, shared, pad_id, device, leaves)
            loss = loss * (sum(r.learned for r in part) / answer_tokens)
        loss.backward()  # frees this micro-batch's activations before the next one runs
        total += loss.item()
    if prefix is not None:
        assert leaves is not None  # made with the prefix
        pairs = [
            (t, leaf.grad)
            for kv, kv_leaves in zip(prefix, leaves)
            for t, leaf in zip(kv, kv_leaves)
            if leaf.grad is not None
        ]
        if pairs:
            torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
    return total, sum(len(r.input_ids) for r in batch)


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, grouped: bool = True) -> list[list[int]]:
    """The row indices of each batch of one epoch: a pure function of (seed, epoch), so a resumed run replays it.

    Grouped: the seeded shuffle is cut into windows of GROUP_SPAN batches, each
    window is sorted by length and cut into batches, and the batches are shuffled
    (what Hugging Face's LengthGroupedSampler does), so padding stays small
    without ordering the epoch by length.
    """
    import torch

    generator = torch.Generator().manual_seed(seed * 1000003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if not grouped:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    span = batch_size * GROUP_SPAN
    batches = []
    for start in range(0, len(order), span):
        window = sorted(order[start : start + span], key=lambda i: -lengths[i])
        batches += [window[i : i + batch_size] for i in range(0, len(window), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def _lr_scale(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def rng_state() -> dict:
    """The random streams training draws from (dropout; python's for completeness)."""
    import random

    import torch

    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]) + [random.getstate()[2]]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import random

    import torch

    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((3, tuple(python[:-1]), python[-1]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
