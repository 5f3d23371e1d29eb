"""`FineTune`: fine-tuning as a Strategy: train with the one loop, answer with the one engine.

A fine-tuned model is prompted exactly like zero-shot (same chat template, same
instruction, no shots), so the comparison measures what the weights learned. What
differs between methods is only which weights train, given by `prepare`: a PEFT
adapter over the shared base model (kinds/lora.py), or every weight of a fresh copy
(kinds/full.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Generic, TypeVar

import numpy as np

from adaptlab.config import TrainConfig
from adaptlab.data import Dataset, split_dev
from adaptlab.data.conversation import History
from adaptlab.data.split import whole_conversations
from adaptlab.engine.lm_solver import LMSolver
from adaptlab.engine.prompt import (
    build_messages,
    encode_answer,
    encode_messages,
    encode_text,
)
from adaptlab.errors import AdaptlabError, ConfigError, DataError, Problem
from adaptlab.finetune.loss import TrainRow, mean_loss
from adaptlab.finetune.trainer import (
    Hooks,
    Resume,
    StepReport,
    TrainResult,
    TrainSettings,
    train,
)
from adaptlab.metrics import row_scores
from adaptlab.models import BaseModel
from adaptlab.models.device import bf16_is_fast
from adaptlab.task import Task

ConfigT = TypeVar("ConfigT", bound=TrainConfig)  # the kind's own settings (lora's LoraConfig, ...)
Prepare = Callable[
    [BaseModel, Task, ConfigT, int], tuple[BaseModel, "str | None"]
]  # -> (model to train, adapter name or None: every weight)


class FineTune(Generic[ConfigT]):
    """Fine-tuning as a Strategy. After `fit`, `result` holds what the loop measured (and whether it was
    interrupted)."""

    def __init__(
        self,
        base: BaseModel,
        config: ConfigT,
        prepare: Prepare[ConfigT],
        seed: int = 0,
        on_step: Callable[[StepReport], None] | None = None,
        dev: Dataset | None = None,
        checkpoints=None,
        should_stop: Callable[[], bool] | None = None,
        resume: Resume | None = None,
        documents=None,
    ):
        self.base = base
        self.config = config
        self.prepare = prepare
        self.name = config.name
        self.seed = seed
        self.on_step = on_step
        self.dev = dev  # a separate dev file; None holds out config.dev_fraction of train
        self.checkpoints = checkpoints
        self.should_stop = should_stop
        self.resume = resume
        self.documents = documents  # train_on documents: the experiment's documents (knowledge.Documents)
        self.result: TrainResult | None = None
        self.reading: TrainResult | None = None  # train_on documents: the pass over the documents' text
        if config.train_on == "documents" and documents is None:
            raise ConfigError(
                f"strategy {config.key!r} has train_on: documents, but the experiment names no documents: set data.docs"
            )

    def fit(self, task: Task, train_set: Dataset, dev: Dataset | None = None, progress=None) -> LMSolver:
        cfg = self.config
        fit_set, dev = fit_and_dev(task, train_set, dev if dev is not None else self.dev, cfg, self.seed)
        rows = training_rows(self.base, task, fit_set)
        base, adapter = self.prepare(self.base, task, cfg, self.seed)
        solver = LMSolver(self.name, base, task, adapter=adapter, owns_model=adapter is None)
        bf16 = bf16_is_fast(base.device) if cfg.bf16 == "auto" else bool(cfg.bf16)
        settings = TrainSettings(
            cfg.epochs,
            cfg.learning_rate,
            cfg.batch_size,
            cfg.warmup_ratio,
            bf16,
            self.seed,
            cfg.gradient_accumulation,
            cfg.length_grouped,
            cfg.eval_every,
            cfg.patience if dev is not None else None,
            cfg.max_batch_tokens,
        )
        metric, dev_rows, score = dev_scorer(solver, dev, cfg, settings) if dev is not None else (None, 0, None)

        def on_step(report: StepReport) -> None:
            if self.on_step:
                self.on_step(report)
            if progress:
                progress(1)  # one optimizer step

        offset = 0
        if (
            cfg.train_on == "documents" and self.resume is None
        ):  # a resumed run's checkpoint already holds what the documents taught
            offset = self._read_documents(base, settings, rows, on_step)
        after_reading = (
            (
                lambda report: on_step(
                    replace(report, step=report.step + offset, total_steps=report.total_steps + offset)
                )
            )
            if offset
            else on_step
        )
        hooks = Hooks(after_reading, score, self.checkpoints, self.should_stop)
        self.result = train(base.model, rows, settings, base.device, base.tokenizer.pad_token_id, hooks, self.resume)
        solver.reset_precision()  # decide bf16 again on the trained weights
        solver.details = {
            "training": self.result.to_dict(),
            "config": cfg.model_dump(),
            "seed": self.seed,
            "train_hash": train_set.content_hash,
            "train_rows": len(fit_set),
            "dev_rows": len(dev) if dev is not None else 0,
            "dev_metric": metric,  # what best_dev_score measures: accuracy, chrf or loglik
            "dev_metric_rows": dev_rows,
        }
        if self.reading is not None:
            solver.details["documents_training"] = self.reading.to_dict() | {"passages": len(self.documents.chunks)}
        return solver

    def _read_documents(self, base: BaseModel, settings: TrainSettings, pair_rows: list[TrainRow], on_step) -> int:
        """Continued training on every passage of the documents (loss on every token but the first), with the one loop.
        Progress counts these steps before the pairs' ones; returns how many there were."""
        rows = document_rows(base, self.documents.chunks)
        reading = replace(settings, epochs=self.config.document_epochs, eval_every=None, patience=None)
        pair_steps = math.ceil(len(pair_rows) / settings.batch_size) * settings.epochs

        def report(r: StepReport) -> None:
            on_step(
                replace(r, total_steps=r.total_steps + pair_steps, rows=())
            )  # rows index the passages, not the training lines

        self.reading = train(
            base.model,
            rows,
            reading,
            base.device,
            base.tokenizer.pad_token_id,
            Hooks(report, None, None, self.should_stop),
        )
        return self.reading.total_steps


def fit_and_dev(
    task: Task, train: Dataset, dev: Dataset | None, cfg: TrainConfig, seed: int
) -> tuple[Dataset, Dataset | None]:
    """The rows to train on and the dev rows that pick the best checkpoint: a given dev file, else
    `dev_fraction` of train held out (stratified by label on classify tasks; whole conversations on conversation
    data, whose training rows are then one per conversation). Decided here only."""
    if dev is None:
        train, dev = split_dev(train, cfg.dev_fraction, seed, task.spec.labelled)
    return (train if task.spec.labelled else whole_conversations(train)), dev


def training_rows(base: BaseModel, task: Task, data: Dataset) -> list[TrainRow]:
    """Each example as prompt ids (the zero-shot prompt) and answer ids; too-long ones are an error. A turn of a
    conversation is learned with every learned assistant turn before it (`conversation_row`)."""
    rows, problems = [], []
    for e in data:
        if isinstance(e.input, History) and not task.spec.labelled:
            row = conversation_row(base, task, e.input, e.output)
        else:
            row = TrainRow(
                encode_messages(base.tokenizer, build_messages(task, [], e.input)),
                encode_answer(base.tokenizer, e.output, base.eot_id),
            )
        if len(row.input_ids) > base.context_length:
            problems.append(
                Problem(
                    "too_long",
                    data.source,
                    e.line,
                    None,
                    f"{len(row.input_ids)} tokens after templating, over the model's context of {base.context_length}",
                    "shorten the example or remove it",
                )
            )
        rows.append(row)
    if problems:
        raise DataError(problems[:100], truncated=len(problems) > 100)
    return rows


def conversation_row(base: BaseModel, task: Task, history: History, answer: str) -> TrainRow:
    """The conversation up to `answer` as one row, the loss on every assistant turn of weight 1 and on `answer`.

    Each assistant turn is placed where the chat template puts it: after the prompt the turns before it make
    (the zero-shot prompt of that turn). A template that renders earlier turns differently once later ones
    follow (some drop an earlier answer's reasoning) has no such place: an error then, never a turn silently
    left unlearned.
    """
    messages = build_messages(task, [], history)
    last = encode_answer(base.tokenizer, answer, base.eot_id)
    ids = encode_messages(base.tokenizer, messages) + last
    spans = [(len(ids) - len(last), len(ids))]
    for at, turn in enumerate(messages):
        if turn["role"] == "assistant" and _weight(history, at):
            start = len(encode_messages(base.tokenizer, messages[:at]))
            said = encode_answer(base.tokenizer, turn["content"], base.eot_id)
            if ids[start : start + len(said)] != said:
                raise AdaptlabError(
                    f"{base.name}'s chat template renders an earlier assistant turn "
                    f"({turn['content'][:40]!r}) differently once later turns follow, so a "
                    "conversation cannot be trained in one pass with it; "
                    "train on single exchanges (one assistant answer per line), or use a model whose "
                    "template keeps earlier turns as written"
                )
            spans.append((start, start + len(said)))
    first = min(s for s, _ in spans)
    learn = [False] * (len(ids) - first)
    for start, end in spans:
        learn[start - first : end - first] = [True] * (end - start)
    return TrainRow(ids[:first], ids[first:], tuple(learn))


def _weight(history: History, at: int) -> int:
    """The weight of build_messages' message `at` (after its system turn) in the history's spoken turns."""
    return history.spoken[at - 1].weight


def document_rows(base: BaseModel, chunks) -> list[TrainRow]:
    """Each passage as a row learned whole: its first token is the prompt, every later one is predicted."""
    rows = []
    for chunk in chunks:
        ids = encode_text(base.tokenizer, chunk.text)[: base.context_length]
        if len(ids) > 1:
            rows.append(TrainRow(ids[:1], ids[1:]))
    return rows


def dev_scorer(
    solver: LMSolver, dev: Dataset, cfg: TrainConfig, settings: TrainSettings
) -> tuple[str, int, Callable[[], float]]:
    """How the dev split is scored (cfg.dev_metric resolved): the metric's name, the rows it reads, and the scoring
    function (higher is better)."""
    task, base = solver.task, solver.base
    if cfg.dev_metric == "loglik" or (cfg.dev_metric == "auto" and task.generates):
        rows = training_rows(base, task, dev)
        return (
            "loglik",
            len(rows),
            lambda: (
                -mean_loss(
                    base.model, rows, base.tokenizer.pad_token_id, base.device, settings.bf16, settings.max_batch_tokens
                )
            ),
        )
    if task.generates:
        dev = Dataset(dev.examples[: cfg.dev_generate_rows], dev.source)
    return task.metric, len(dev), lambda: dev_score(solver, dev)


def dev_score(solver: LMSolver, dev: Dataset) -> float:
    """The task's headline metric on the dev rows (accuracy, or chrF for generate tasks)."""
    predicted = [p.output for p in solver.predict(dev.inputs)]
    return float(np.mean(row_scores(solver.task.spec, dev.outputs, predicted, solver.task.scoring)))
