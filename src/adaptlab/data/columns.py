"""Which fields of a data file hold the input and the output: the names a file has, and a guess from common ones.

>>> guess_pair(("id", "Text", "label"))
('Text', 'label')
>>> guess_pair(("review", "stars")) is None
True
"""

from __future__ import annotations

import csv
import json
from itertools import islice
from pathlib import Path

# Names teams and public data sets give the two sides, most specific first: a file with both `question` and
# `text` (the passage) asks the question; one with `answer` and `label` answers.
INPUT_NAMES = (
    "input",
    "prompt",
    "question",
    "query",
    "instruction",
    "utterance",
    "sentence",
    "text",
    "message",
    "content",
    "review",
    "document",
)
OUTPUT_NAMES = (
    "output",
    "completion",
    "answer",
    "response",
    "label",
    "intent",
    "category",
    "class",
    "target",
    "sentiment",
    "summary",
)
CHAT_FIELD = "messages"  # OpenAI chat fine-tuning lines: no columns to choose
JSONL_LINES_READ = 20  # the fields of the first lines' objects, in case an optional one is missing from the first


def file_columns(path: str | Path) -> tuple[str, ...]:
    """A data file's column names, in file order: a CSV's header, a Parquet file's or `datasets` folder's columns,
    the fields of a JSONL file's first object lines; () when it cannot be read (loading it then names the problem)."""
    path = Path(path)
    try:
        if path.is_dir():
            return _datasets_columns(path)
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return tuple(pq.read_schema(path).names)
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
            if suffix == ".csv":
                return tuple(next(csv.reader(f), []))
            return _jsonl_fields(f)
    except Exception:  # noqa: BLE001  unreadable in any of many ways: load_dataset reports each with its line
        return ()


def _jsonl_fields(lines) -> tuple[str, ...]:
    fields: dict[str, None] = {}
    objects = (_object(line) for line in lines if line.strip())
    for record in islice((r for r in objects if r is not None), JSONL_LINES_READ):
        fields.update(dict.fromkeys(record))
    return tuple(fields)


def _object(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _datasets_columns(path: Path) -> tuple[str, ...]:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    return () if isinstance(loaded, datasets.DatasetDict) else tuple(loaded.column_names)


def guess_pair(
    columns: tuple[str, ...], input_col: str | None = None, output_col: str | None = None
) -> tuple[str, str] | None:
    """(input, output) columns: the ones given, else the first of INPUT_NAMES / OUTPUT_NAMES present (case aside);
    None when a side has no known name."""
    by_name = {c.strip().lower(): c for c in reversed(columns)}  # the first of two spellings wins

    def pick(names: tuple[str, ...], taken: str | None) -> str | None:
        return next((by_name[n] for n in names if n in by_name and by_name[n] != taken), None)

    source = input_col or pick(INPUT_NAMES, output_col)
    target = output_col or pick(OUTPUT_NAMES, source)
    return (source, target) if source and target else None
