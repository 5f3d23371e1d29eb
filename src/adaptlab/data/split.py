"""`split_dev`: hold out part of a training set to pick the best fine-tuning checkpoint."""

from __future__ import annotations

import random
from collections import defaultdict

from adaptlab.data.dataset import Dataset

MIN_DEV_ROWS = 8  # fewer than this scores too coarsely to choose between checkpoints


def split_dev(data: Dataset, fraction: float, seed: int, stratify: bool) -> tuple[Dataset, Dataset | None]:
    """(train, dev): a seeded `fraction` of the rows as dev, proportionally per label when `stratify`.

    Returns the data unchanged and no dev set when the fraction is 0 or would
    hold out fewer than MIN_DEV_ROWS rows.

    >>> from adaptlab.data import Example
    >>> rows = Dataset([Example(f"q{i}", "ab"[i % 2], i + 1) for i in range(40)])
    >>> train, dev = split_dev(rows, 0.25, seed=0, stratify=True)
    >>> len(train), len(dev), sorted(dev.label_counts().values())
    (30, 10, [5, 5])
    """
    count = int(len(data) * fraction)
    if count < MIN_DEV_ROWS:
        return data, None
    if data.conversations:
        return _split_conversations(data, fraction, seed)
    rng = random.Random(seed)
    order = list(range(len(data)))
    rng.shuffle(order)
    if stratify:  # interleave labels so any prefix of `order` holds each label in proportion
        groups: dict[str, list[int]] = defaultdict(list)
        for i in order:
            groups[data.examples[i].output].append(i)
        rank = {i: (n + 0.5) / len(members) for members in groups.values() for n, i in enumerate(members)}
        order.sort(key=lambda i: rank[i])
    held = set(order[:count])
    keep = [e for i, e in enumerate(data.examples) if i not in held]
    dev = [e for i, e in enumerate(data.examples) if i in held]
    return Dataset(keep, data.source, data.instruction), Dataset(dev, f"{data.source} (dev split)", data.instruction)


def _split_conversations(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Whole conversations held out, never single turns: no turn of a dev conversation is trained on."""
    ids = list(dict.fromkeys(e.conversation for e in data))
    random.Random(seed).shuffle(ids)
    held = set(ids[: max(1, round(len(ids) * fraction))]) if len(ids) > 1 else set()
    keep = [e for e in data if e.conversation not in held]
    dev = [e for e in data if e.conversation in held]
    if len(dev) < MIN_DEV_ROWS:
        return data, None
    return Dataset(keep, data.source, data.instruction), Dataset(dev, f"{data.source} (dev split)", data.instruction)


def whole_conversations(data: Dataset) -> Dataset:
    """One example per conversation, its last answer, whose history holds every turn before it: trained as one row
    with every learned assistant turn in it (finetune/fit.py). Data that is not conversations is returned as it is."""
    if not data.conversations:
        return data
    last = {e.conversation: e for e in data}  # file order: the last turn of each conversation wins
    return Dataset(list(last.values()), data.source, data.instruction, data.warnings)
