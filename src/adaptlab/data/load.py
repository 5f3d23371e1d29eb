"""Read data files: JSONL (`{"input","output"}`, `{"prompt","completion"}` or OpenAI chat),
CSV, Parquet, and Hugging Face `datasets` folders written by `save_to_disk`.

Named columns (`input_col`/`output_col`, anything but the default input/output) are read from
every format: a CSV's header, a Parquet or `datasets` column, a JSONL line's fields
(`{"text": ..., "label": ...}`); problems then name those fields.

For Parquet and `datasets` folders, "line" means the 1-based row number.

Every problem carries a code, the file, the 1-based line and the field path; up
to `MAX_PROBLEMS` are collected before giving up, so one run shows them all.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, cast

from adaptlab.data.conversation import History, Turn
from adaptlab.data.dataset import Dataset, Example
from adaptlab.errors import DataError, Problem

MAX_PROBLEMS = 100
MAX_FILE_BYTES = 512 * 1024 * 1024
CHAT_ROLES = {"system", "user", "assistant"}
ROLE_HINTS = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant"}
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system", "user": "user", "assistant": "assistant"}


class _Collector:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def add(self, code: str, line: int | None, field: str | None, message: str, hint: str = ""):
        self.problems.append(Problem(code, self.file, line, field, message, hint))

    @property
    def full(self) -> bool:
        return len(self.problems) >= MAX_PROBLEMS


def load_dataset(
    path: str | Path,
    *,
    min_examples: int = 1,
    input_col: str = "input",
    output_col: str = "output",
    abstain: str | None = None,
) -> Dataset:
    """Read a JSONL or CSV data file into a Dataset, or raise DataError listing every problem.

    CSV files need a header row; `input_col` and `output_col` name the columns to use
    (JSONL fields, Parquet and `datasets` columns too; left at input/output, JSONL also reads
    prompt/completion and chat lines). Knowledge tasks pass `abstain`, their
    "the documents do not say" answer: a JSONL `"output": null` becomes it, and a line's
    optional `"sources"` (a list of strings) are kept with the example, as is an update
    question's `"old_output"` (the answer before the documents changed).
    """
    path = Path(path)
    name = str(path)
    if path.is_dir():
        problems = _Collector(name)
        return _finish(
            _read_table(_datasets_rows(path, problems), input_col, output_col, problems),
            problems,
            name,
            min_examples,
            None,
        )
    raw = _read_bytes(path, name)
    problems = _Collector(name)
    if path.suffix.lower() == ".csv":
        return _finish(_read_csv(raw, input_col, output_col, problems), problems, name, min_examples, None)
    if path.suffix.lower() == ".parquet":
        return _finish(
            _read_table(_parquet_rows(path, problems), input_col, output_col, problems),
            problems,
            name,
            min_examples,
            None,
        )
    columns = None if (input_col, output_col) == ("input", "output") else (input_col, output_col)
    examples, instruction = _read_jsonl(raw, problems, abstain, columns)
    return _finish(examples, problems, name, min_examples, instruction)


def _read_bytes(path: Path, name: str) -> bytes:
    """The file's bytes, a UTF-8 byte-order mark dropped; DataError when there is no such file or it is too large."""
    if not path.is_file():
        raise DataError(
            [
                Problem(
                    "file_not_found",
                    name,
                    None,
                    None,
                    "no such file",
                    "check the path (paths in an experiment file are relative to it)",
                )
            ]
        )
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataError(
            [
                Problem(
                    "file_too_large",
                    name,
                    None,
                    None,
                    f"file is {size / 2**20:.0f} MiB, over the {MAX_FILE_BYTES // 2**20} MiB limit",
                    "split it or sample it",
                )
            ]
        )
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte-order mark is accepted
    return raw


def _read_jsonl(
    raw: bytes, problems: _Collector, abstain: str | None, columns: tuple[str, str] | None
) -> tuple[list[Example], str | None]:
    """A JSONL file's examples and instruction (a chat file's one system message), its problems added."""
    examples: list[Example] = []
    instructions: set[str | None] = set()
    formats: dict[str, int] = {}
    if raw.lstrip().startswith(b"["):
        problems.add(
            "json_array",
            1,
            None,
            "the file is a JSON array, but a .jsonl file holds one JSON object per line",
            "write one object per line (e.g. jq -c '.[]' file.json > file.jsonl)",
        )
        raise DataError(problems.problems)
    for number, line_bytes in enumerate(raw.split(b"\n"), start=1):
        if problems.full:
            break
        line_bytes = line_bytes.rstrip(b"\r")  # CRLF line ends are accepted
        if not line_bytes.strip():
            continue
        record = _json_object(line_bytes, number, problems)
        if record is None:
            continue
        parsed = _parse_record(record, number, problems, abstain, columns)
        if parsed is None:
            continue
        fmt, parsed_examples, instruction = parsed
        formats.setdefault(fmt, number)
        instructions.add(instruction)
        examples += parsed_examples
    if len(formats) > 1:
        first, second = sorted(formats.items(), key=lambda kv: kv[1])[:2]
        problems.add(
            "mixed_formats",
            second[1],
            None,
            f"line {first[1]} is in the '{first[0]}' format but this line is '{second[0]}'",
            "use one format per file",
        )
    instruction = next(iter(instructions)) if len(instructions) == 1 else None
    if "conversation" in formats and (plain := _plain_exchanges(examples)):
        examples, instruction = plain
    return examples, instruction


def _json_object(line_bytes: bytes, number: int, problems: _Collector) -> dict | None:
    """One JSONL line as a JSON object, or None with its problem added."""
    try:
        text = line_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add("invalid_utf8", number, None, f"invalid UTF-8 at byte {exc.start}", "save the file as UTF-8")
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add(
            "invalid_json",
            number,
            None,
            f"not valid JSON ({exc.msg} at column {exc.colno})",
            "fix the line or remove it",
        )
        return None
    except ValueError:  # the only other ValueError json raises: an int over Python's digit limit
        problems.add(
            "number_too_long",
            number,
            None,
            f"a number has more than {sys.get_int_max_str_digits()} digits",
            "write it as a string or remove it",
        )
        return None
    except RecursionError:
        problems.add(
            "too_deeply_nested", number, None, "JSON nested too deeply to read", "flatten the line or remove it"
        )
        return None
    if not isinstance(record, dict):
        problems.add(
            "not_an_object",
            number,
            None,
            f"expected a JSON object, got {type(record).__name__}",
            'write {"input": ..., "output": ...}',
        )
        return None
    return record


def _parquet_rows(path: Path, problems: _Collector) -> list[dict]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for unreadable files
        problems.add(
            "invalid_parquet",
            None,
            None,
            f"cannot read this Parquet file ({type(exc).__name__}: {exc})",
            "check that it is a complete Parquet file",
        )
        return []


def _datasets_rows(path: Path, problems: _Collector) -> list[dict]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # FileNotFoundError, ValueError, ... for folders save_to_disk did not write
        problems.add(
            "invalid_datasets_folder",
            None,
            None,
            f"not a folder written by datasets' save_to_disk ({type(exc).__name__}: {exc})",
            "pass a .jsonl/.csv/.parquet file or a save_to_disk folder",
        )
        return []
    if isinstance(loaded, datasets.DatasetDict):
        problems.add(
            "dataset_dict",
            None,
            None,
            f"holds several splits ({', '.join(loaded)})",
            f"pass one split's folder, e.g. {path / next(iter(loaded))}",
        )
        return []
    return loaded.to_list()


def _read_table(rows: list[dict], input_col: str, output_col: str, problems: _Collector) -> list[Example]:
    """Rows of a table (Parquet, `datasets`) in any of the JSONL shapes, or with mapped columns."""
    if not rows:
        return []
    columns = None if (input_col, output_col) == ("input", "output") else (input_col, output_col)
    if columns:
        missing = [c for c in columns if c not in rows[0]]
        for column in missing:
            problems.add(
                "missing_column",
                None,
                column,
                f"no column '{column}' (found: {', '.join(rows[0])})",
                "name the columns with data.input_col and data.output_col",
            )
        if missing:
            return []
    examples = []
    for number, row in enumerate(rows, start=1):
        if problems.full:
            break
        parsed = _parse_record(row, number, problems, columns=columns)
        if parsed is not None:
            examples += parsed[1]
    return examples


def _finish(
    examples: list[Example], problems: _Collector, name: str, min_examples: int, instruction: str | None
) -> Dataset:
    if not problems.problems and len(examples) < min_examples:
        what = (
            "the file is empty"
            if not examples
            else f"{len(examples)} examples, fewer than the minimum of {min_examples}"
        )
        problems.add("too_few_examples", None, None, what, "add labeled examples")
    if problems.problems:
        raise DataError(problems.problems, truncated=problems.full)
    return Dataset(examples, source=name, instruction=instruction, warnings=_duplicate_warnings(examples, name))


def _read_csv(raw: bytes, input_col: str, output_col: str, problems: _Collector) -> list[Example]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.add("invalid_utf8", line, None, f"invalid UTF-8 at byte {exc.start}", "save the file as UTF-8")
        return []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        problems.add("invalid_csv", 1, None, f"not valid CSV ({exc})", "fix the header row")
        return []
    if header is None:
        return []
    missing = [c for c in (input_col, output_col) if c not in header]
    for column in missing:
        problems.add(
            "missing_column",
            1,
            column,
            f"no column '{column}' (found: {', '.join(header) or 'none'})",
            "name the columns to use with data.input_col and data.output_col",
        )
    if missing:
        return []
    at_in, at_out = header.index(input_col), header.index(output_col)
    examples, start = [], reader.line_num + 1
    while not problems.full:
        try:
            row = next(reader, None)
        except csv.Error as exc:
            problems.add("invalid_csv", start, None, f"not valid CSV ({exc})", "fix the quoting on this line")
            break
        if row is None:
            break
        line, start = start, reader.line_num + 1  # a quoted field may span lines: report where the row starts
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.add(
                "wrong_field_count",
                line,
                None,
                f"{len(row)} fields, but the header has {len(header)}",
                "quote fields that contain commas",
            )
            continue
        if not row[at_in].strip() or not row[at_out].strip():
            problems.add(
                "empty_field",
                line,
                input_col if not row[at_in].strip() else output_col,
                "is empty",
                "fill it or remove the line",
            )
            continue
        examples.append(Example(row[at_in], row[at_out].strip(), line))
    return examples


def _parse_record(
    record: dict, number: int, problems: _Collector, abstain: str | None = None, columns: tuple[str, str] | None = None
):
    """(format, Example, instruction) from one line or row, or None with its problems added; `columns` (input, output)
    names the fields to read instead of the shapes a file may have by itself."""
    if ("messages" in record or "conversations" in record) and not columns:
        return _parse_chat(record, number, problems)
    shapes = (
        {"columns": columns}
        if columns
        else {"input_output": ("input", "output"), "prompt_completion": ("prompt", "completion")}
    )
    for fmt, (in_key, out_key) in shapes.items():
        if columns or in_key in record or out_key in record:
            ok = True
            values: dict[str, Any] = {}  # the fields as read: both strings once `ok` holds
            for key in (in_key, out_key):
                value = record.get(key)
                if key not in record:
                    problems.add(
                        "missing_field",
                        number,
                        key,
                        "is missing",
                        f"every line needs '{in_key}' and '{out_key}'"
                        + (" (data.input_col and data.output_col name them)" if columns else ""),
                    )
                    ok = False
                elif value is None and key == out_key and abstain is not None:
                    value = abstain  # a question the documents do not answer
                elif value is None and key == out_key:
                    problems.add(
                        "wrong_type",
                        number,
                        key,
                        "is null",
                        "write the expected answer; null (a question the documents do not answer) is "
                        "allowed only in knowledge tasks, whose experiment sets data.docs",
                    )
                    ok = False
                elif not isinstance(value, str):
                    problems.add(
                        "wrong_type",
                        number,
                        key,
                        f"expected a string, got {_type_name(value)}",
                        "write the value as a JSON string",
                    )
                    ok = False
                elif not value.strip():
                    problems.add("empty_field", number, key, "is empty", "fill it or remove the line")
                    ok = False
                elif bad := _surrogate_problem(value):
                    problems.add("invalid_unicode", number, key, *bad)
                    ok = False
                values[key] = value
            sources = _sources(record, number, problems)
            old = record.get("old_output")
            if old is not None and (not isinstance(old, str) or not old.strip()):
                problems.add(
                    "wrong_type",
                    number,
                    "old_output",
                    f"expected the answer before the update as a non-empty string, got {_type_name(old)}",
                    'write "old_output": "The deductible is $2,000." or leave the field out',
                )
                ok = False
            if not ok or sources is None:
                return None
            return (
                fmt,
                [Example(values[in_key], values[out_key].strip(), number, sources, old.strip() if old else None)],
                None,
            )
    keys = ", ".join(_printable(k) for k in sorted(record)) or "none"
    problems.add(
        "unknown_format",
        number,
        None,
        f"no 'input'/'output', 'prompt'/'completion', 'messages' or 'conversations' field (found: {keys})",
        'write {"input": ..., "output": ...} per line',
    )
    return None


def _sources(record: dict, number: int, problems: _Collector) -> tuple[str, ...] | None:
    """A line's optional "sources": the passages holding its answer, as document ids ("handbook.pdf#page=3")."""
    value = record.get("sources", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.add(
            "wrong_type",
            number,
            "sources",
            f"expected a list of document ids, got {_type_name(value)}",
            'write "sources": ["handbook.pdf#page=3", "faq.md"]',
        )
        return None
    return tuple(v.strip() for v in value)


def _parse_chat(record: dict, number: int, problems: _Collector):
    """(format, examples, instruction) from an OpenAI chat line (`messages`) or a ShareGPT one (`conversations`).

    One example per assistant turn of weight 1 that follows a user turn, its input the History before it; a
    line with a `label` is one example, the whole conversation classified. Single exchanges become plain
    (question, answer) examples when the whole file holds nothing else (`_plain_exchanges`)."""
    turns = _turns(record, number, problems)
    if turns is None:
        return None
    conversation = record["id"] if isinstance(record.get("id"), str) and record["id"].strip() else f"line {number}"
    if "label" in record:
        label = record["label"]
        if not isinstance(label, str) or not label.strip():
            problems.add(
                "wrong_type",
                number,
                "label",
                f"expected the conversation's label as a non-empty string, got {_type_name(label)}",
                'write "label": "transfer"',
            )
            return None
        return (
            "conversation",
            [Example(History(turns, recent=None), label.strip(), number, conversation=conversation)],
            None,
        )
    examples = []
    for i, turn in enumerate(turns):
        if turn.role == "assistant" and turn.weight and any(t.role == "user" for t in turns[:i]):
            examples.append(
                Example(History(turns[:i]), turn.content.strip(), number, conversation=conversation, turn=i)
            )
    if not examples:
        problems.add(
            "no_assistant",
            number,
            "messages",
            "no assistant answer of weight 1 after a user turn: nothing to learn or test",
            "end each conversation with the assistant's answer",
        )
        return None
    return "conversation", examples, None


def _turns(record: dict, number: int, problems: _Collector) -> tuple[Turn, ...] | None:
    """The line's turns, checked: known roles, text in every turn, at most one system turn (the first), weights 0 or 1
    on assistant turns only, and the last turn the assistant's. None with every problem added."""
    sharegpt = "messages" not in record
    key, role_key, text_key = ("conversations", "from", "value") if sharegpt else ("messages", "role", "content")
    messages = record[key]
    if not isinstance(messages, list) or not messages:
        problems.add(
            "wrong_type",
            number,
            key,
            f"expected a non-empty list of messages, got {_type_name(messages)}",
            f'write "{key}": [{{"{role_key}": "user", "{text_key}": ...}}, ...]',
        )
        return None
    read = [_turn(message, i, f"{key}[{i}]", number, problems, sharegpt) for i, message in enumerate(messages)]
    turns = [t for t in read if t is not None]
    if len(turns) < len(read) or not _in_order(turns, key, number, problems):
        return None
    return tuple(turns)


def _turn(message, i: int, where: str, number: int, problems: _Collector, sharegpt: bool) -> Turn | None:
    """One message of a chat line as a Turn: a known role, text, a weight of 0 or 1; None with every problem added."""
    role_key, text_key = ("from", "value") if sharegpt else ("role", "content")
    ok = True
    if not isinstance(message, dict):
        problems.add(
            "wrong_type",
            number,
            where,
            f"expected an object, got {_type_name(message)}",
            f'write {{"{role_key}": ..., "{text_key}": ...}}',
        )
        return None
    role, content, weight = message.get(role_key), message.get(text_key), message.get("weight", 1)
    if sharegpt and isinstance(role, str):
        role = SHAREGPT_ROLES.get(role, role)
    if not isinstance(role, str):  # a list or object role is unhashable: check the type first
        problems.add(
            "wrong_type",
            number,
            f"{where}.{role_key}",
            f"expected a string, got {_type_name(role)}",
            "roles are system, user and assistant",
        )
        ok = False
    elif role not in CHAT_ROLES:
        hint = (
            f"use '{ROLE_HINTS[role]}' instead of '{role}'"
            if role in ROLE_HINTS and not sharegpt
            else "roles are system, user and assistant" + (" (ShareGPT: system, human, gpt)" if sharegpt else "")
        )
        problems.add("unknown_role", number, f"{where}.{role_key}", f"unknown role {role!r}", hint)
        ok = False
    if not isinstance(content, str):
        problems.add(
            "wrong_type",
            number,
            f"{where}.{text_key}",
            f"expected a string, got {_type_name(content)}",
            "write the content as a JSON string",
        )
        ok = False
    elif not content.strip():
        problems.add(
            "empty_field",
            number,
            f"{where}.{text_key}",
            f"turn {i} ({role}) is empty",
            "write its text or remove the turn",
        )
        ok = False
    elif bad := _surrogate_problem(content):
        problems.add("invalid_unicode", number, f"{where}.{text_key}", *bad)
        ok = False
    if weight not in (0, 1) or isinstance(weight, bool) or (weight == 0 and role != "assistant"):
        problems.add(
            "wrong_type",
            number,
            f"{where}.weight",
            f"expected 0 or 1 on an assistant turn, got {json.dumps(weight)[:20]} on a {role} turn",
            "weight 0 keeps an assistant turn as context only; leave it out elsewhere",
        )
        ok = False
    if not ok:
        return None
    return Turn(cast(str, role), cast(str, content), weight)  # role and content are strings (checked above)


def _in_order(turns: list[Turn], key: str, number: int, problems: _Collector) -> bool:
    """Whether a conversation's turns come in an order it can have: at most one system turn, the first, and the last
    turn the assistant's; False with the problem added."""
    roles = [t.role for t in turns]
    if roles.count("system") > 1 or ("system" in roles and roles[0] != "system"):
        second = [i for i, r in enumerate(roles) if r == "system"][1 if roles[0] == "system" else 0]
        problems.add(
            "misplaced_system",
            number,
            f"{key}[{second}]",
            "a conversation has at most one system message, and it comes first",
            "merge the system messages into the first turn",
        )
        return False
    if roles[-1] != "assistant":
        problems.add(
            "ends_on_user",
            number,
            f"{key}[{len(roles) - 1}]",
            f"the conversation ends on a {roles[-1]} turn, which nothing answers",
            "end it with the assistant's answer or remove the last turn",
        )
        return False
    return True


def _plain_exchanges(examples: list[Example]) -> tuple[list[Example], str | None] | None:
    """A chat file of single exchanges (an optional system message, one question, one answer) read as plain
    (question, answer) examples, its system message the task's instruction; None when any line is a conversation."""
    if any(not isinstance(e.input, History) or len(e.input.spoken) != 1 or e.input.recent is None for e in examples):
        return None
    systems = {cast(History, e.input).system for e in examples}  # every input a History (checked above)
    plain = [Example(cast(History, e.input).spoken[0].content, e.output, e.line) for e in examples]
    return plain, (next(iter(systems)) if len(systems) == 1 else None)


def _duplicate_warnings(examples: list[Example], name: str) -> list[str]:
    seen: dict[tuple[str, str], int | None] = {}
    warnings = []
    for e in examples:
        key = (e.input.strip(), e.output)
        if key in seen:
            warnings.append(f"{name} line {e.line}: duplicate of line {seen[key]}")
        else:
            seen[key] = e.line
    return warnings


def _surrogate_problem(text: str) -> tuple[str, str] | None:
    """Message and hint for a lone UTF-16 surrogate (a `\\ud800` escape with no pair), which cannot be written as
    UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"contains a lone surrogate \\u{ord(text[exc.start]):04x} at character {exc.start + 1}, "
            "which is not valid text",
            "fix the \\u escape (surrogates come in pairs) or remove it",
        )
    return None


def _printable(text: str) -> str:
    """`text` with any lone surrogate written as a backslash escape, so a message about it can be printed."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _type_name(value) -> str:
    return (
        "null"
        if value is None
        else {
            "str": "string",
            "int": "number",
            "float": "number",
            "bool": "boolean",
            "list": "list",
            "dict": "object",
        }.get(type(value).__name__, type(value).__name__)
    )
