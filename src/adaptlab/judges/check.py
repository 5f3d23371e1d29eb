"""`adaptlab judge check`: vet a judge on a file of pairs people rated, before trusting it on a run.

A line (JSONL, or a CSV row with these columns):

    {"input": "...", "answer_a": "...", "answer_b": "...", "preference": "a", "reference": "...", "reviewer": "ana"}

`preference` is a, b, tie or both_bad; `reference` and `reviewer` are optional (`id` and
`comment` are read and ignored). Lines with the same input, answers and reference are one
row (the judge is asked once; two reviewers on it give their own agreement). The judge is
asked each row in both orders, as on a run.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adaptlab.errors import DataError, Problem
from adaptlab.judges.judge import Judge, Pair
from adaptlab.judges.verdicts import Verdict
from adaptlab.solver import Progress

PREFERENCES = ("a", "b", "tie", "both_bad")
MAX_PROBLEMS = 20  # bad lines listed before reading stops
FIELDS_HINT = "the fields are input, answer_a, answer_b, preference (a, b, tie or both_bad), reference, reviewer"
AS_SIDE = {"a": "a", "b": "b", "tie": "tie", "both_bad": "tie"}  # both bad: neither is better


class RatedPair(BaseModel):
    """One line of a file of rated pairs."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(min_length=1, description="what both answers answer (a question, a conversation so far)")
    answer_a: str
    answer_b: str
    preference: Literal["a", "b", "tie", "both_bad"] = Field(description="which answer the person preferred")
    reference: str | None = Field(None, description="a good answer, when there is one")
    reviewer: str = Field("anonymous", min_length=1, description="who rated it")
    id: str | None = Field(None, description="the line's own id (ignored)")
    comment: str | None = Field(None, description="the person's comment (ignored)")


def read_rated_pairs(path: Path) -> list[RatedPair]:
    """Every line of a JSONL or CSV file of rated pairs; a DataError lists the bad lines (up to MAX_PROBLEMS), each
    with its number and field."""
    path = Path(path)
    if not path.is_file():
        raise DataError([Problem("missing", str(path), None, None, "no such file", "pass a JSONL or CSV file")])
    problems: list[Problem] = []
    lines = _csv_lines(path, problems) if path.suffix.lower() == ".csv" else _jsonl_lines(path, problems)
    pairs = []
    for number, record in lines:
        try:
            pairs.append(RatedPair.model_validate(record))
        except ValidationError as exc:
            problem = exc.errors()[0]
            value = problem.get("input")
            shown = "" if isinstance(value, dict) else f", got {value!r}"
            problems.append(
                Problem(
                    "invalid",
                    str(path),
                    number,
                    ".".join(str(p) for p in problem["loc"]) or None,
                    f"{problem['msg']}{shown}",
                    FIELDS_HINT,
                )
            )
        if len(problems) >= MAX_PROBLEMS:
            raise DataError(problems, truncated=True)
    if problems:
        raise DataError(problems)
    if not pairs:
        raise DataError([Problem("empty", str(path), None, None, "no rated pairs in it", "one pair per line")])
    return pairs


def _jsonl_lines(path: Path, problems: list[Problem]) -> list[tuple[int, Any]]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except ValueError as exc:
            problems.append(Problem("json", str(path), number, None, f"not JSON ({exc})", "one JSON object per line"))
    return out


def _csv_lines(path: Path, problems: list[Problem]) -> list[tuple[int, Any]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = []
        for record in reader:  # reader.line_num: the line the record ends on (a quoted cell may span lines)
            if None in record:
                problems.append(Problem("csv", str(path), reader.line_num, None, "more cells than the header has"))
                continue
            # a blank optional cell is absent; blank answers stay (an empty answer is an answer)
            rows.append(
                (reader.line_num, {k: v for k, v in record.items() if v != "" or k in ("answer_a", "answer_b")})
            )
    return rows


@dataclass
class CheckOutcome:
    """The judge's verdicts on the file's rows, the people's ratings, and how far they agree."""

    pairs: list[RatedPair]
    rows: list[int]  # each line's row (lines with the same input, answers and reference share one)
    verdicts: list[Verdict]  # one per row
    figures: dict[str, Any] = field(default_factory=dict)


def check_judge(judge: Judge, pairs: list[RatedPair], progress: Progress | None = None) -> CheckOutcome:
    """Ask `judge` about every distinct row of `pairs` in both orders, and measure its agreement with the people."""
    index: dict[tuple, int] = {}
    rows = [index.setdefault((p.input, p.answer_a, p.answer_b, p.reference), len(index)) for p in pairs]
    first = {row: pairs[i] for i, row in reversed(list(enumerate(rows)))}
    items = [
        Pair(row=r, a="a", b="b", input=p.input, answer_a=p.answer_a, answer_b=p.answer_b, reference=p.reference)
        for r, p in sorted(first.items())
    ]
    verdicts = judge.compare(items, progress)
    outcome = CheckOutcome(pairs, rows, verdicts)
    outcome.figures = simple_agreement(pairs, rows, verdicts) | {"judge": judge.identity()}
    outcome.figures["agreement"] = _agreement(pairs, rows, verdicts, judge.config.trust_threshold)
    return outcome


def _agreement(pairs: list[RatedPair], rows: list[int], verdicts: list[Verdict], threshold: float) -> dict:
    """decide.agreement's figures (kappa with its interval, position consistency, length bias, the reviewers' own
    kappa, whether the judge is trusted), as JSON data."""
    from types import SimpleNamespace

    from adaptlab.decide.agreement import agreement

    people = [
        SimpleNamespace(row=r, a="a", b="b", preference=p.preference, reviewer=p.reviewer) for p, r in zip(pairs, rows)
    ]
    judged = [v if not v.identical else SimpleNamespace(**(v.model_dump() | {"consistent": None})) for v in verdicts]
    return agreement(people, judged, threshold=threshold).model_dump(mode="json")


def simple_agreement(pairs: list[RatedPair], rows: list[int], verdicts: list[Verdict]) -> dict[str, Any]:
    """Counts anyone can check by hand: the share of ratings the judge's verdict matches (both_bad as a tie), the share
    of asked verdicts that survived the swap, and how often the longer answer won by the judge and by people."""
    by_row = {v.row: v for v in verdicts}
    matched = sum(by_row[r].preference == AS_SIDE[p.preference] for p, r in zip(pairs, rows))
    asked = [v for v in verdicts if not v.identical]
    decided_people = [(p, by_row[r]) for p, r in zip(pairs, rows) if p.preference in ("a", "b") and by_row[r].longer]
    decided_judge = [v for v in verdicts if v.preference != "tie" and v.longer]
    return {
        "ratings": len(pairs),
        "rows": len(verdicts),
        "raw_agreement": round(matched / len(pairs), 4),
        "position_consistency": round(sum(v.consistent for v in asked) / len(asked), 4) if asked else None,
        "judge_ties": sum(v.preference == "tie" for v in verdicts),
        "unparsed_replies": sum(v.unparsed for v in verdicts),
        "longer_wins_by_judge": _share([v.preference == v.longer for v in decided_judge]),
        "longer_wins_by_people": _share([p.preference == v.longer for p, v in decided_people]),
    }


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None
