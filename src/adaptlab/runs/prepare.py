"""From an experiment file's config to what every command runs on: validated data, leakage checked, the task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from adaptlab.config import ExperimentConfig, RemoteModelConfig, TrainConfig
from adaptlab.data import Dataset, check_leakage, load_dataset, split_dev
from adaptlab.errors import ConfigError
from adaptlab.task import AnswerCosts, Task, make_task
from adaptlab.tasks import task_kind, task_kinds


@dataclass(frozen=True)
class Prepared:
    train: Dataset
    test: Dataset
    dev: Dataset | None  # data.dev when given; fine-tuning otherwise splits train
    task: Task
    warnings: list[str]


class _Columns(TypedDict):
    """How every data file of an experiment is read (load_dataset's keyword arguments)."""

    input_col: str
    output_col: str
    abstain: str | None


def prepare(config: ExperimentConfig, root: Path) -> Prepared:
    """Load train, test (and dev) with the column mapping, refuse test rows leaked from them, and infer the task
    (a qa task when the experiment names documents: `"output": null` is then its abstain answer)."""
    kind = config.task.kind or (document_kind().name if config.data.docs else None)
    reads_documents = kind is not None and task_kind(kind).documents
    if config.data.docs and not reads_documents:
        raise ConfigError(
            "data.docs is set, so this is a knowledge task: task.kind must be "
            f"{document_kind().name} (or left out), not {kind!r}"
        )
    if config.data.updates and not config.data.docs:
        raise ConfigError("data.updates changes documents: set data.docs to the documents it changes")
    if reads_documents and not config.data.docs:
        raise ConfigError(
            f"task.kind {kind} answers from documents: set data.docs to a folder of .pdf .md .txt "
            f'.html files (or a .jsonl of {{"id", "text"}})'
        )
    abstains = kind is not None and task_kind(kind).abstains
    columns: _Columns = {
        "input_col": config.data.input_col,
        "output_col": config.data.output_col,
        "abstain": config.task.abstain if abstains else None,
    }
    train = load_dataset(root / config.data.train, min_examples=2, **columns)
    test = load_dataset(root / config.data.test, **columns)
    dev = load_dataset(root / config.data.dev, **columns) if config.data.dev else None
    warnings = train.warnings + test.warnings + check_leakage(train, test, config.data.allow_overlap)
    if dev is not None:
        warnings += dev.warnings + check_leakage(dev, test, config.data.allow_overlap)
    task = make_task(
        config.task.name,
        config.task.instruction,
        train,
        test,
        kind,
        config.task.max_new_tokens,
        None if config.task.stop is None else tuple(config.task.stop),
        _answer_tokens(config.model),
        config.task.abstain,
        config.task.labels,
        _costs(config),
        config.task.stop_loops,
    )
    return Prepared(train, test, dev, task, warnings)


def _costs(config: ExperimentConfig) -> AnswerCosts | None:
    priced = config.task.costs
    return AnswerCosts(**priced.model_dump()) if priced else None


def document_kind():
    """The task kind inferred when the experiment names documents (the first that answers from them: qa)."""
    return next(k for k in task_kinds() if k.documents)


def _answer_tokens(model):
    """Counts an answer's tokens as the model is trained on it (text + end of turn); loads the tokenizer on first use.
    None for an endpoint (no local tokenizer): the task's default answer budget applies, or task.max_new_tokens."""
    from functools import lru_cache

    if isinstance(model, RemoteModelConfig):
        return None

    @lru_cache(maxsize=1)
    def tokenizer():
        from adaptlab.models.base import load_tokenizer

        return load_tokenizer(model)[0]

    def count(text: str) -> int:
        from adaptlab.engine.prompt import encode_text

        return len(encode_text(tokenizer(), text)) + 1

    return count


def resolved(config: ExperimentConfig, root: Path) -> dict:
    """The config with every default filled in and data paths made absolute (what a run folder records)."""
    data = config.model_dump(mode="json")
    data["data"] |= {
        k: str((root / data["data"][k]).resolve())
        for k in ("train", "test", "dev", "docs", "unlabeled")
        if data["data"].get(k)
    }
    if data["data"].get("updates"):
        data["data"]["updates"] = {k: str((root / v).resolve()) for k, v in data["data"]["updates"].items()}
    return data


def documents_for(config: ExperimentConfig, root: Path, base):
    """The experiment's documents (data.docs), chunked with `base`'s tokenizer; None without them."""
    if not config.data.docs:
        return None
    from adaptlab.knowledge.index import Documents

    return Documents(
        root / config.data.docs, base.tokenizer, size=config.data.chunk_tokens, overlap=config.data.chunk_overlap
    )


def equal_data(
    config: ExperimentConfig, train: Dataset, dev: Dataset | None, classify: bool, seed: int | None = None
) -> tuple[Dataset, Dataset | None, dict | None]:
    """The rows every contender learns from, and the dev rows fine-tuning picks its checkpoint on.

    Without a dev file, fine-tuning holds out `dev_fraction` of train (the largest any
    fine-tuned contender asks for, split once, seeded); those rows are then left out of
    every contender's training rows and few-shot pool too, so both sides see the same
    data. Returns (rows, dev, what results.json records of the held-out rows, or None).
    `seed` (default: the experiment's) seeds the split.
    """
    seed = config.seed if seed is None else seed
    if dev is not None:
        return train, dev, None
    fractions = [t.dev_fraction for s in config.strategies if (t := training_of(s)) is not None] + [
        s.tune.dev_fraction for s in config.strategies if s.tune is not None
    ]
    if not fractions or max(fractions) == 0:
        return train, None, None
    rows, held = split_dev(train, max(fractions), seed, classify)
    if held is None:
        return train, None, None
    why = (
        f"the dev split fine-tuning and tuning score on (dev_fraction {max(fractions)}, seed {seed}): "
        f"left out of every contender's training rows and few-shot pool, so all see the same {len(rows)} "
        "rows"
    )
    return rows, held, {"rows": len(held), "lines": [e.line for e in held], "why": why}


def contender_dev(strategy_config, dev: Dataset | None, from_file: bool) -> Dataset | None:
    """The dev rows one contender gets: a dev file goes to every fine-tuned contender; the shared split
    (`equal_data`) only to those asking for one (`dev_fraction` > 0: 0 keeps the last weights)."""
    training = training_of(strategy_config)
    return dev if training is not None and (from_file or training.dev_fraction > 0) else None


def training_of(strategy_config) -> TrainConfig | None:
    """A contender's training settings: its own when it is a fine-tuning kind, its `fine_tune` (rag's RAFT), else
    None."""
    if isinstance(strategy_config, TrainConfig):
        return strategy_config
    tune = getattr(strategy_config, "fine_tune", None)
    return tune if isinstance(tune, TrainConfig) else None
