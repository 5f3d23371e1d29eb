"""`load_unlabeled`: inputs without answers (data.unlabeled), for a teacher to label (runs/distill.py).

A JSONL file of {"input": ...} lines, or a CSV with an `input_col` column; a line that
carries an answer is refused (labeled rows belong in data.train). Problems are
reported as `load_dataset` reports them: file, line, field, and what to do.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from adaptlab.data.dataset import Dataset, Example
from adaptlab.errors import DataError, Problem

MAX_PROBLEMS = 100


def load_unlabeled(path: Path, input_col: str = "input") -> Dataset:
    """data.unlabeled: a JSONL file of {"input": ...} lines (or a CSV with an `input_col` column), inputs only;
    a DataError names the file, line and field of every problem."""
    path, name = Path(path), str(path)
    problems: list[Problem] = []
    if not path.is_file():
        raise DataError(
            [
                Problem(
                    "file_not_found",
                    name,
                    None,
                    None,
                    "no such file (data.unlabeled)",
                    "check the path (paths in an experiment file are relative to it)",
                )
            ]
        )
    try:
        text = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            [Problem("invalid_utf8", name, None, None, f"invalid UTF-8 at byte {exc.start}", "save the file as UTF-8")]
        ) from None
    rows = (
        _csv_rows(text, input_col, name, problems)
        if path.suffix.lower() == ".csv"
        else _jsonl_rows(text, name, problems)
    )
    examples, warnings = [], []
    seen: dict[str, int] = {}
    for line, value, field in rows:
        if not isinstance(value, str):
            problems.append(
                Problem(
                    "wrong_type",
                    name,
                    line,
                    field,
                    f"expected a string, got {'null' if value is None else type(value).__name__}",
                    "write the input as a string",
                )
            )
        elif not value.strip():
            problems.append(Problem("empty_field", name, line, field, "is empty", "fill it or remove the line"))
        else:
            if value.strip() in seen:
                warnings.append(
                    f"{name} line {line}: the same input as line {seen[value.strip()]} (the teacher labels it twice)"
                )
            seen.setdefault(value.strip(), line)
            examples.append(Example(value, "", line))  # no answer yet: the teacher gives it
    if not problems and not examples:
        problems.append(
            Problem(
                "too_few_examples",
                name,
                None,
                None,
                "the file holds no inputs",
                'add {"input": ...} lines for the teacher to label',
            )
        )
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise DataError(problems[:MAX_PROBLEMS], truncated=len(problems) > MAX_PROBLEMS)
    return Dataset(examples, name, warnings=warnings)


def _jsonl_rows(text: str, name: str, problems: list) -> list[tuple[int, object, str]]:
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            problems.append(
                Problem(
                    "invalid_json", name, number, None, "not valid JSON", 'write one {"input": ...} object per line'
                )
            )
            continue
        if not isinstance(record, dict) or "input" not in record:
            problems.append(
                Problem("missing_field", name, number, "input", "is missing", 'write {"input": ...} per line')
            )
        elif record.get("output") is not None:
            problems.append(
                Problem(
                    "has_output",
                    name,
                    number,
                    "output",
                    "data.unlabeled holds inputs only (the teacher answers them)",
                    "move labeled rows to data.train, or remove the field",
                )
            )
        else:
            rows.append((number, record["input"], "input"))
    return rows


def _csv_rows(text: str, input_col: str, name: str, problems: list) -> list[tuple[int, object, str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None) or []
    except csv.Error as exc:
        problems.append(Problem("invalid_csv", name, 1, None, f"not valid CSV ({exc})", "fix the header row"))
        return []
    if input_col not in header:
        problems.append(
            Problem(
                "missing_column",
                name,
                1,
                input_col,
                f"no column '{input_col}' (found: {', '.join(header) or 'none'})",
                "name the input column with data.input_col",
            )
        )
        return []
    at, start = header.index(input_col), reader.line_num + 1
    rows: list[tuple[int, object, str]] = []
    try:
        for row in reader:
            line, start = start, reader.line_num + 1  # a quoted field may span lines: report where the row starts
            if any(cell.strip() for cell in row):
                rows.append((line, row[at] if at < len(row) else "", input_col))
    except csv.Error as exc:
        problems.append(
            Problem("invalid_csv", name, start, None, f"not valid CSV ({exc})", "fix the quoting on this line")
        )
    return rows
