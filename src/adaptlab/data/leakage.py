"""Train/test leakage: a test row whose input is also in training measures memory, not skill."""

from __future__ import annotations

from adaptlab.data.dataset import Dataset
from adaptlab.errors import DataError, Problem


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def check_leakage(train: Dataset, test: Dataset, allow: bool = False) -> list[str]:
    """Test rows whose input (case and spacing aside) is also a training input.

    An error listing every pair unless `allow`; then the pairs come back as warnings.
    """
    seen: dict[str, int | None] = {}
    for e in train:
        seen.setdefault(_key(e.input), e.line)
    pairs = [(e, seen[_key(e.input)]) for e in test if _key(e.input) in seen]
    if not pairs:
        return []
    if allow:
        return [f"{test.source} line {e.line}: its input is also in {train.source} line {n} (allowed by data.allow_overlap)" for e, n in pairs]
    problems = [Problem("leakage", test.source, e.line, "input", f"the same input is in {train.source} line {n}", "remove it from one split, or set data.allow_overlap: true") for e, n in pairs[:100]]
    raise DataError(problems, truncated=len(pairs) > 100)
