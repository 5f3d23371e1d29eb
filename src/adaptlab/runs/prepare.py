"""From an experiment file's config to what every command runs on: validated data, leakage checked, the task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adaptlab.config import ExperimentConfig
from adaptlab.data import Dataset, check_leakage, load_dataset
from adaptlab.task import Task, make_task


@dataclass(frozen=True)
class Prepared:
    train: Dataset
    test: Dataset
    dev: Dataset | None  # data.dev when given; fine-tuning otherwise splits train
    task: Task
    warnings: list[str]


def prepare(config: ExperimentConfig, root: Path) -> Prepared:
    """Load train, test (and dev) with the column mapping, refuse test rows leaked from them, and infer the task."""
    columns = {"input_col": config.data.input_col, "output_col": config.data.output_col}
    train = load_dataset(root / config.data.train, min_examples=2, **columns)
    test = load_dataset(root / config.data.test, **columns)
    dev = load_dataset(root / config.data.dev, **columns) if config.data.dev else None
    warnings = train.warnings + test.warnings + check_leakage(train, test, config.data.allow_overlap)
    if dev is not None:
        warnings += dev.warnings + check_leakage(dev, test, config.data.allow_overlap)
    task = make_task(config.task.name, config.task.instruction, train, test, config.task.kind, config.task.max_new_tokens, tuple(config.task.stop), _answer_tokens(config.model))
    return Prepared(train, test, dev, task, warnings)


def _answer_tokens(model: str):
    """Counts an answer's tokens as the model is trained on it (text + end of turn); loads the tokenizer on first use."""
    from functools import lru_cache

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
    data["data"] |= {k: str((root / data["data"][k]).resolve()) for k in ("train", "test", "dev") if data["data"].get(k)}
    return data
