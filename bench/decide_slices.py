"""The slices bench/decide.py judges the recommendation on: one maker per task kind, each slice a task a team might
bring.

Every slice's test rows are ordered small split first (what a team would have to decide
on), then the large split (what the pick is judged on).

    classify  Banking77 (CC-BY-4.0, PolyAI): label subsets of 5-12 intents, 20 training
              rows per label, 10 + 30 test rows per label.
    generate  Restaurant-8k (CC-BY-4.0, PolyAI; https://github.com/PolyAI-LDN/task-specific-datasets,
              commit 57ec275d, as ../shared/data/restaurant8k/SOURCE.md converted it): a booking
              message -> its slots. 50 training rows, 20 + 40 test rows.
    qa        northwind-benefits (examples/, MIT, Microsoft: PDFs of a fictional company's benefits)
              and pyref-qa (bench/data/pyref-qa, PSF License Version 2: 18 sections of the Python
              Language Reference); small and large splits keep the unanswerable share.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from adaptlab.data import Dataset, Example

SHARED = Path(__file__).parents[2] / "shared" / "data"
EXAMPLES = Path(__file__).parents[1] / "examples"
PYREF = Path(__file__).parent / "data" / "pyref-qa"
ABSTAIN = "I don't know"


@dataclass(frozen=True)
class Slice:
    """One task to recommend for: its rows, the size of the small test split, and (qa) its documents."""

    name: str
    kind: str  # the task kind (adaptlab.tasks)
    instruction: str
    train: Dataset
    test: Dataset  # the small split's rows first, then the large split's
    n_small: int
    seed: int
    docs: Path | None = None  # qa: the documents folder
    max_new_tokens: int | None = None  # generated kinds: the answer limit (None: from the training answers)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def dataset(rows: list[dict], name: str) -> Dataset:
    """Rows {"input", "output" (None: the abstain answer), "sources"?} as a Dataset, lines numbered from 1."""
    return Dataset(
        [
            Example(r["input"], ABSTAIN if r["output"] is None else r["output"], i + 1, tuple(r.get("sources") or ()))
            for i, r in enumerate(rows)
        ],
        name,
    )


# classify: Banking77 ---------------------------------------------------------------------------------------------

BANKING = SHARED / "banking77"
BANKING_SLICES = [(5, 1), (8, 2), (8, 3), (12, 4), (5, 5)]  # (labels, seed)
TRAIN_PER_LABEL, SMALL_PER_LABEL = 20, 10
BANKING_INSTRUCTION = "Route the bank customer's message to the intent label that fits it best."


def banking_slice(n_labels: int, seed: int, train_rows: list[dict], test_rows: list[dict]) -> Slice:
    rng = random.Random(seed)
    labels = sorted(rng.sample(sorted({r["output"] for r in train_rows}), n_labels))

    def pick(pool, label, n):
        return (
            rng.sample([r for r in pool if r["output"] == label], n) if n else [r for r in pool if r["output"] == label]
        )  # noqa: E731

    train = [r for label in labels for r in pick(train_rows, label, TRAIN_PER_LABEL)]
    small, large = [], []
    for label in labels:
        test = pick(test_rows, label, 0)
        rng.shuffle(test)
        small += test[:SMALL_PER_LABEL]
        large += test[SMALL_PER_LABEL:]
    return Slice(
        f"banking{n_labels}-{seed}",
        "classify",
        BANKING_INSTRUCTION,
        dataset(train, "train"),
        dataset(small + large, "test"),
        len(small),
        seed,
    )


def classify_slices(n: int) -> list[Slice]:
    train_rows, test_rows = read_jsonl(BANKING / "train.jsonl"), read_jsonl(BANKING / "test.jsonl")
    return [banking_slice(labels, seed, train_rows, test_rows) for labels, seed in BANKING_SLICES[:n]]


# generate: Restaurant-8k (CC-BY-4.0, PolyAI) ---------------------------------------------------------------------

RESTAURANT = SHARED / "restaurant8k"
SLOTS = ("date", "time", "people", "first_name", "last_name")
GENERATE_TRAIN, GENERATE_SMALL, GENERATE_LARGE = 50, 20, 40
GENERATE_TOKENS = 48  # the longest answers (4-5 slots as JSON) run ~35 tokens; a limit keeps rambling answers cheap


def slot_lines(slots: dict) -> str:
    """{"date": "9th", "time": "10pm"} -> "date: 9th\\ntime: 10pm" (slots in SLOTS order)."""
    return "\n".join(f"{s}: {slots[s]}" for s in SLOTS if s in slots)


def restaurant_rows(path: Path, form: str) -> list[dict]:
    """Distinct messages of a Restaurant-8k file as rows of one form:
    "lines": input the customer's message, output its slots as "slot: value" lines (messages with a slot only);
    "json": input the assistant's last request and the message (as the source gives both), output the slots as
    the source's JSON object ("{}" when the message gives none)."""
    out, seen = [], set()
    for row in read_jsonl(path):
        context, user = row["input"].split("\n", 1)
        message, slots = user.removeprefix("User: "), json.loads(row["output"])
        if message in seen or (form == "lines" and not slots):
            continue
        seen.add(message)
        out.append(
            {"input": message, "output": slot_lines(slots)}
            if form == "lines"
            else {"input": row["input"], "output": row["output"]}
        )
    return out


GENERATE_FORMS = {
    "lines": "List the booking details the customer's message gives, one per line as 'slot: value' (slots: "
    "date, time, people, first_name, last_name), each value copied as written.",
    "json": "Extract the booking details the customer's message gives as a JSON object with only the keys "
    "among date, time, people, first_name, last_name that it mentions, each value copied as written; "
    "{} when it gives none.",
}
GENERATE_SLICES = [("lines", 1), ("json", 2), ("json", 3)]


def restaurant_slice(form: str, seed: int) -> Slice:
    rng = random.Random(seed)
    train = rng.sample(restaurant_rows(RESTAURANT / "train.jsonl", form), GENERATE_TRAIN)
    seen = {r["input"] for r in train}
    test = rng.sample(
        [r for r in restaurant_rows(RESTAURANT / "test.jsonl", form) if r["input"] not in seen],
        GENERATE_SMALL + GENERATE_LARGE,
    )
    return Slice(
        f"restaurant-{form}-{seed}",
        "generate",
        GENERATE_FORMS[form],
        dataset(train, "train"),
        dataset(test, "test"),
        GENERATE_SMALL,
        seed,
        max_new_tokens=GENERATE_TOKENS,
    )


def generate_slices(n: int) -> list[Slice]:
    return [restaurant_slice(form, seed) for form, seed in GENERATE_SLICES[:n]]


# qa: northwind-benefits (MIT), pyref-qa (PSF License Version 2) --------------------------------------------------

QA_TOKENS = 64  # pyref answers run 5-35 tokens; northwind's ~70 words are cut (every contender alike; extract is not)
QA_SMALL_SHARE = 1 / 3
NORTHWIND = EXAMPLES / "northwind-benefits"
NORTHWIND_MOVED = 20  # training questions moved to the test rows, so the large split has 40
NORTHWIND_INSTRUCTION = (
    "Answer the employee's question about Contoso's benefits. If the documents do not say, answer \"I don't know.\""
)
PYREF_INSTRUCTION = (
    "Answer the question about the Python language from its reference manual. If the documents do not "
    'say, answer "I don\'t know."'
)


def small_first(rows: list[dict], rng: random.Random) -> tuple[list[dict], int]:
    """The rows shuffled, QA_SMALL_SHARE of the answerable and of the unanswerable ones first, and that count."""
    groups = [[r for r in rows if r["output"] is not None], [r for r in rows if r["output"] is None]]
    small, large = [], []
    for group in groups:
        rng.shuffle(group)
        n = round(len(group) * QA_SMALL_SHARE)
        small += group[:n]
        large += group[n:]
    rng.shuffle(small)
    rng.shuffle(large)
    return small + large, len(small)


def northwind_slice(seed: int) -> Slice:
    rng = random.Random(seed)
    train = read_jsonl(NORTHWIND / "train.jsonl")
    rng.shuffle(train)
    test, n_small = small_first(read_jsonl(NORTHWIND / "test.jsonl") + train[:NORTHWIND_MOVED], rng)
    return Slice(
        f"northwind-{seed}",
        "qa",
        NORTHWIND_INSTRUCTION,
        dataset(train[NORTHWIND_MOVED:], "train"),
        dataset(test, "test"),
        n_small,
        seed,
        docs=NORTHWIND / "docs",
        max_new_tokens=QA_TOKENS,
    )


def pyref_slice(seed: int) -> Slice:
    test, n_small = small_first(read_jsonl(PYREF / "test.jsonl"), random.Random(seed))
    return Slice(
        f"pyref-{seed}",
        "qa",
        PYREF_INSTRUCTION,
        dataset(read_jsonl(PYREF / "train.jsonl"), "train"),
        dataset(test, "test"),
        n_small,
        seed,
        docs=PYREF / "docs",
        max_new_tokens=QA_TOKENS,
    )


def qa_slices(n: int) -> list[Slice]:
    return [make(seed) for make, seed in [(pyref_slice, 1), (northwind_slice, 2), (northwind_slice, 3)][:n]]


MAKERS = {"classify": classify_slices, "generate": generate_slices, "qa": qa_slices}
DEFAULT_SLICES = {"classify": 3, "generate": 3, "qa": 3}
