"""People's ratings of two contenders' answers on one test row, kept in the run folder: RUN/ratings/<reviewer>.jsonl.

One JSON line per rating, appended, flushed and fsynced before the page hears it is saved,
so a rating survives the page, the server or the machine going down right after the click.
Each reviewer has a file of their own; a lock per file (a thread lock and an advisory
`flock` for other processes) keeps concurrent writers to whole lines. A reviewer may change
their mind: the latest rating of a (reviewer, row, pair) wins.

    >>> r = Rating(row=3, a="lora", b="nearest", preference="b", reviewer="ana")
    >>> PREFERENCE_VALUE[oriented(r, "nearest", "lora").preference]
    1.0
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adaptlab.errors import ConfigError, DataError, Problem

Preference = Literal["a", "b", "tie", "both_bad"]
PREFERENCE_VALUE: dict[str, float] = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}  # from a's side
REVIEWER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")  # a safe file name: no path, no dot-file
FOLDER = "ratings"
MAX_PROBLEMS = 100  # bad lines listed before an import stops reading
MAX_IMPORT_BYTES = 64 << 20  # 64 MiB: ~300k ratings with comments; more is surely the wrong file
IMPORT_FIELDS = ("row", "a", "b", "preference", "reviewer", "score_a", "score_b", "comment", "left", "at", "source")
FIELDS_HINT = (
    "the fields are row (0-based test row), a and b (contender ids), preference (a, b, tie or both_bad) and optional "
    "reviewer, score_a, score_b (1-5), comment"
)


class Rating(BaseModel):
    """One person's verdict on contenders a and b on one test row.

    >>> Rating(row=0, a="lora", b="few_shot", preference="tie", score_a=4).value
    0.5
    """

    model_config = ConfigDict(extra="forbid")

    row: int = Field(ge=0, description="the test row's 0-based index, as in results.json's predictions")
    a: str = Field(min_length=1, description="a contender's id")
    b: str = Field(min_length=1, description="the other contender's id")
    preference: Preference = Field(description="a or b: that answer is better; tie; both_bad: neither is usable")
    reviewer: str = Field("anonymous", description="who rated it (the name of their file in RUN/ratings/)")
    score_a: int | None = Field(None, ge=1, le=5, description="a's answer on its own, 1 (useless) to 5 (perfect)")
    score_b: int | None = Field(None, ge=1, le=5, description="b's answer on its own, 1-5")
    comment: str | None = Field(None, description="what the reviewer noted")
    left: Literal["a", "b"] | None = Field(None, description="which of a and b the page showed on the left")
    at: str = Field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"),
        description="when it was saved (ISO 8601, UTC)",
    )
    source: Literal["page", "import"] = Field("page", description="rated on the review page, or imported")

    @field_validator("reviewer")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        check_reviewer(value)
        return value

    @model_validator(mode="after")
    def _two_contenders(self) -> Rating:
        if self.a == self.b:
            raise ValueError(f"a and b must be two different contenders, got {self.a!r} twice")
        return self

    @property
    def value(self) -> float:
        """The preference as a number from a's side: a 1.0, b 0.0, tie or both bad 0.5."""
        return PREFERENCE_VALUE[self.preference]


def check_reviewer(name: str) -> str:
    """`name` if it is a safe reviewer name (it names a file); ValueError saying what is allowed otherwise."""
    if not isinstance(name, str) or not REVIEWER_NAME.fullmatch(name):
        raise ValueError(
            f"reviewer name {name!r} is not allowed: use 1-64 letters, digits, '.', '_', '-' or '@', starting with "
            "a letter or digit (it names the reviewer's file)"
        )
    return name


_FLIP = {"a": "b", "b": "a", "tie": "tie", "both_bad": "both_bad"}


def oriented(rating: Rating, a: str, b: str) -> Rating:
    """`rating` told from a's side: a and b swapped (and the preference, scores and `left` with them) when it was
    given the other way round. ValueError if it is not about a and b."""
    if (rating.a, rating.b) == (a, b):
        return rating
    if (rating.a, rating.b) != (b, a):
        raise ValueError(f"the rating is about {rating.a} and {rating.b}, not {a} and {b}")
    return rating.model_copy(
        update={
            "a": a,
            "b": b,
            "preference": _FLIP[rating.preference],
            "score_a": rating.score_b,
            "score_b": rating.score_a,
            "left": None if rating.left is None else _FLIP[rating.left],
        }
    )


def ratings_folder(run_dir: Path) -> Path:
    return Path(run_dir) / FOLDER


def reviewer_file(run_dir: Path, reviewer: str) -> Path:
    """RUN/ratings/<reviewer>.jsonl (the name checked first, so it can never point elsewhere)."""
    return ratings_folder(run_dir) / f"{check_reviewer(reviewer)}.jsonl"


def read_reviewer_file(path: Path) -> list[Rating]:
    """Every rating in one reviewer's file, in the order saved. A last line cut short by a kill mid-write is left
    out (it was never acknowledged); any other bad line is a DataError naming it."""
    path = Path(path)
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    ratings, problems = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        torn = number == len(lines)  # no newline after it: its write never finished
        try:
            ratings.append(Rating.model_validate_json(line))
        except ValidationError as exc:
            if torn:
                continue
            problems.append(
                Problem(
                    "invalid",
                    str(path),
                    number,
                    _loc(exc),
                    exc.errors()[0]["msg"],
                    "adaptlab writes this file; fix or remove that line",
                )
            )
    if problems:
        raise DataError(problems[:MAX_PROBLEMS], truncated=len(problems) > MAX_PROBLEMS)
    return ratings


def load_ratings(run_dir: Path) -> list[Rating]:
    """Every reviewer's ratings in the run folder; of several by one reviewer on one (row, pair), the latest."""
    folder = ratings_folder(run_dir)
    latest: dict[tuple[str, int, frozenset[str]], Rating] = {}
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for rating in read_reviewer_file(path):
            key = (rating.reviewer, rating.row, frozenset((rating.a, rating.b)))
            latest.pop(key, None)  # re-inserted: the order is that of the latest word
            latest[key] = rating
    return list(latest.values())


_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path.resolve(), threading.Lock())


def append_rating(run_dir: Path, rating: Rating) -> Path:
    """Append `rating` to its reviewer's file and fsync it before returning (returns the file)."""
    return _append(reviewer_file(run_dir, rating.reviewer), [rating])


def _append(path: Path, ratings: list[Rating]) -> Path:
    """Append whole lines under the file's locks, flush and fsync; the folder too when the file is new."""
    new_folder = not path.parent.is_dir()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(r.model_dump_json(exclude_none=True) + "\n" for r in ratings).encode()
    with _lock_for(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _flock(fd)
            size = _mend(fd, path)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            created = size == 0
        finally:
            os.close(fd)  # closing releases the flock
    if created or new_folder:
        _fsync_dir(path.parent)
        if new_folder:
            _fsync_dir(path.parent.parent)
    return path


def _flock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: the thread lock alone (one server process)
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def _mend(fd: int, path: Path) -> int:
    """Make the file end with a whole line before appending (under its lock); returns its size.

    A last line without its newline is a write a kill cut short: never acknowledged, so it is cut off (the reader
    skips it too). A last line that is a whole rating missing only its newline (a hand edit) gets the newline.
    """
    size = os.fstat(fd).st_size
    if not size:
        return 0
    with path.open("rb") as f:
        f.seek(max(0, size - (1 << 16)))
        tail = f.read()
    if tail.endswith(b"\n"):
        return size
    start = tail.rfind(b"\n") + 1  # the torn line's first byte within `tail` (0: it began before; see below)
    if start == 0 and size > len(tail):
        start = len(tail)  # a last line over 64 KiB is surely not a rating: keep it, on its own line
    last = tail[start:]
    try:
        Rating.model_validate_json(last)
    except ValidationError:
        if start < len(tail):
            os.ftruncate(fd, size - len(last))
            return size - len(last)
    os.write(fd, b"\n")
    return size + 1


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the file itself is synced
        pass
    finally:
        os.close(fd)


# ---- import -------------------------------------------------------------------------------------------------


def run_contenders_and_rows(run_dir: Path) -> tuple[list[str], int]:
    """The run's contender ids and its number of test rows, from RUN/results.json."""
    from adaptlab.results import load_results

    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no results.json; pass a folder `adaptlab compare` wrote")
    results = load_results(path)
    rows = len(results.strategies[0].predictions) if results.strategies else 0
    return [s.name for s in results.strategies], rows


def import_ratings(run_dir: Path, file: Path, reviewer: str | None = None) -> list[Rating]:
    """Read ratings made elsewhere (JSONL, or CSV by its suffix) and append them to the run's reviewer files.

    Every line is checked first (row within the run's test rows, a and b two of its contenders, the preference,
    scores 1-5, the reviewer's name); one bad line is a DataError naming the file, the line and the field, and
    nothing is written. `reviewer` names lines that name none (default "anonymous"). Returns what was imported.
    """
    file = Path(file)
    contenders, rows = run_contenders_and_rows(run_dir)
    default = check_reviewer(reviewer) if reviewer else "anonymous"
    ratings: list[Rating] = []
    problems: list[Problem] = []
    for number, record in _records(file, problems):
        rating = _rating(file, number, record, contenders, rows, default, problems)
        if rating is not None:
            ratings.append(rating)
        if len(problems) >= MAX_PROBLEMS:
            raise DataError(problems, truncated=True)
    if problems:
        raise DataError(problems)
    if not ratings:
        raise DataError([Problem("empty", str(file), None, None, "no ratings in it", f"one per line; {FIELDS_HINT}")])
    by_reviewer: dict[str, list[Rating]] = {}
    for rating in ratings:
        by_reviewer.setdefault(rating.reviewer, []).append(rating)
    for name, theirs in by_reviewer.items():
        _append(reviewer_file(run_dir, name), theirs)  # one write per reviewer: whole lines, one fsync
    return ratings


def _records(file: Path, problems: list[Problem]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line, its fields) for each non-blank line; unreadable lines go to `problems`."""
    name = str(file)
    if not file.is_file():
        raise DataError([Problem("missing", name, None, None, "no such file", "pass a JSONL or CSV file of ratings")])
    if file.stat().st_size > MAX_IMPORT_BYTES:
        raise DataError(
            [Problem("too_large", name, None, None, f"over {MAX_IMPORT_BYTES >> 20} MiB", "split it into files")]
        )
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = raw[: exc.start].count(b"\n") + 1
        raise DataError([Problem("encoding", name, bad, None, "not valid UTF-8", "save the file as UTF-8")]) from None
    if file.suffix.lower() == ".csv":
        yield from _csv_records(name, text, problems)
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem("json", name, number, None, f"not valid JSON ({exc.msg})", "one object a line"))
            continue
        if not isinstance(record, dict):
            problems.append(
                Problem("not_object", name, number, None, f"a {type(record).__name__}, not an object", FIELDS_HINT)
            )
            continue
        yield number, record


def _csv_records(name: str, text: str, problems: list[Problem]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [f for f in ("row", "a", "b", "preference") if f not in header]
    if missing:
        raise DataError(
            [Problem("columns", name, 1, missing[0], f"no column {', '.join(missing)} in the header", FIELDS_HINT)]
        )
    reader.fieldnames = header
    for record in reader:
        number = reader.line_num  # the line the row ended on (a quoted comment may span lines)
        if None in record:
            problems.append(Problem("columns", name, number, None, "more cells than the header has", FIELDS_HINT))
            continue
        cells = {k: (v.strip().replace("\r\n", "\n") if isinstance(v, str) else v) for k, v in record.items() if k}
        if not any(cells.values()):
            continue
        yield number, {k: v for k, v in cells.items() if v not in ("", None)}  # an empty cell: the field left out


def _rating(
    file: Path,
    number: int,
    record: dict[str, Any],
    contenders: list[str],
    rows: int,
    reviewer: str,
    problems: list[Problem],
) -> Rating | None:
    """The line as a Rating checked against the run, or None with its problem recorded."""

    def problem(field: str | None, message: str, hint: str = FIELDS_HINT) -> Rating | None:
        problems.append(Problem("invalid", str(file), number, field, message, hint))
        return None  # the line is left out; the import fails with every problem found

    unknown = [k for k in record if k not in IMPORT_FIELDS]
    if unknown:
        return problem(unknown[0], f"unknown field {unknown[0]!r}")
    for field in ("row", "score_a", "score_b"):
        value = record.get(field)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
            record[field] = int(value)  # CSV cells are text
        elif isinstance(value, float) and value.is_integer():
            record[field] = int(value)
    record = record | {"source": "import", "reviewer": record.get("reviewer", reviewer)}
    if "preference" in record and isinstance(record["preference"], str):
        record["preference"] = record["preference"].strip().lower()
    try:
        rating = Rating.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _loc(exc)
        shown = "" if where is None else f", got {record.get(where)!r}"
        message = str(first["msg"]).removeprefix("Value error, ")
        return problem(where, f"{message}{shown}" if where and where in record else message)
    if rating.row >= rows:
        return problem("row", f"row {rating.row} is not a test row of this run (it has rows 0-{rows - 1})")
    for field in ("a", "b"):
        if getattr(rating, field) not in contenders:
            return problem(
                field,
                f"{getattr(rating, field)!r} is not a contender of this run",
                f"use one of {', '.join(contenders)}",
            )
    return rating


def _loc(exc: ValidationError) -> str | None:
    return ".".join(str(p) for p in exc.errors()[0]["loc"]) or None
