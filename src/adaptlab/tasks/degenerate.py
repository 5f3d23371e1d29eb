"""Degenerate answers: one answer (or nearly one) for most test rows, or answers cut at the token limit.

"Nearly one answer" is found in steps, each looser than the one before, and the finding says which step found it:

1. the same text;
2. the same once case, spacing and end punctuation are folded (`fold`);
3. the same once every run of digits is folded too ("SELECT 1; -- 7" and "select 1; -- 30" are one answer);
4. at least ALIKE similar, character by character (difflib's ratio), to one of the commonest folded answers.

A contender whose commonest answer covers SAME_ANSWER_SHARE of the test rows is flagged, unless the expected
answers are that answer nearly as often (within EXPECTED_MARGIN): a generator that answers "{}" where most
references are "{}" is right, not degenerate. qa also flags one answer plus abstentions covering that share
(`one_answer_or_none`).

    >>> print(*same_answer([f"SELECT 1; -- {n}" for n in range(1, 31)]))  # doctest: +ELLIPSIS
    gave nearly the same answer ('SELECT 1; -- 1', differing only in numbers, case or spacing) to 100% of the test ...
    >>> same_answer(["{}"] * 9 + ['{"a": 1}'], expected=["{}"] * 8 + ['{"a": 1}', '{"b": 2}'])
    []
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from difflib import SequenceMatcher

SAME_ANSWER_SHARE = 0.8  # a contender giving one answer to this share of the test rows is degenerate
CUT_SHARE = 0.5  # ... or whose answers hit the token limit on this share of them
ALIKE = 0.9  # two folded answers this similar count as one: difflib's ratio, 2 x matching characters / both lengths
EXPECTED_MARGIN = 0.1  # ... unless the expected answers are that answer on a share within this of the contender's
CENTRES = 5  # the commonest folded answers tried as the centre of the similar ones


def fold(text: str, digits: bool = True) -> str:
    """`text` lower-cased, its spacing collapsed, end punctuation stripped and (with `digits`) every digit run one #.

    >>> fold("  SELECT 1;  --  42. "), fold("It is $1,500!", digits=False)
    ('select #; -- #', 'it is $1,500')
    """
    out = " ".join(text.lower().split()).rstrip(".!?;:, ")
    return re.sub(r"\d+", "#", out) if digits else out


@dataclass(frozen=True)
class Commonest:
    """The answer given most often, at one step of likeness."""

    answer: str  # as the contender gave it most often
    rows: int  # how many answers count as it
    how: str  # the step in words: "" for the same text
    alike: Callable[[str], bool]  # whether another answer counts as it


def commonest(answers: list[str], near: bool = True) -> Iterator[Commonest]:
    """The commonest answer at each step (the same text, then with `near` folded, folded with digits, similar)."""
    if not answers:
        return
    steps: list[tuple[str, Callable[[str], str]]] = [("", str)]
    if near:
        steps += [
            ("differing only in case, spacing or end punctuation", _fold_keeping_digits),
            ("differing only in numbers, case or spacing", fold),
        ]
    for how, key in steps:
        keys = [key(a) for a in answers]
        top, rows = Counter(keys).most_common(1)[0]
        yield Commonest(_given(answers, keys, top), rows, how, _keyed(key, top))
    if near:
        yield _similar(answers)


def _fold_keeping_digits(text: str) -> str:
    return fold(text, digits=False)


def _keyed(key: Callable[[str], str], top: str) -> Callable[[str], bool]:
    return lambda t: key(t) == top


def _similar(answers: list[str]) -> Commonest:
    """The folded answer with the most answers at least ALIKE similar to it, of the CENTRES commonest. A centre is
    given up once too many answers are unlike it for SAME_ANSWER_SHARE of them to be alike (its `rows` are then
    those counted so far): on 400 varied answers of ~260 characters that is ~0.3 s instead of ~1 s."""
    keys = [fold(a) for a in answers]
    unlike_at_most = len(keys) - math.ceil(SAME_ANSWER_SHARE * len(keys))
    best = None
    for centre, _ in Counter(keys).most_common(CENTRES):
        alike, rows, unlike = _alike_to(centre), 0, 0
        for k in keys:
            if alike(k):
                rows += 1
            else:
                unlike += 1
                if unlike > unlike_at_most:
                    break
        if best is None or rows > best.rows:
            how = f"or one at least {ALIKE:.0%} alike, character by character"
            best = Commonest(_given(answers, keys, centre), rows, how, _folded(alike))
    assert best is not None  # answers is not empty
    return best


def _folded(alike: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda t: alike(fold(t))


def _alike_to(centre: str) -> Callable[[str], bool]:
    """Whether a folded answer is at least ALIKE similar to `centre` (the cheap upper bounds first)."""
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(centre)  # difflib indexes the second sequence once
    seen: dict[str, bool] = {}

    def alike(key: str) -> bool:
        if key not in seen:
            matcher.set_seq1(key)
            seen[key] = key == centre or (
                matcher.real_quick_ratio() >= ALIKE and matcher.quick_ratio() >= ALIKE and matcher.ratio() >= ALIKE
            )
        return seen[key]

    return alike


def _given(answers: list[str], keys: list[str], key: str) -> str:
    """The answer given most often among those whose key is `key`."""
    return Counter(a for a, k in zip(answers, keys) if k == key).most_common(1)[0][0]


def same_answer(
    predicted: list[str],
    what: str = "answer",
    expected: list[str] | None = None,
    near: bool = True,
    declines: Callable[[str], bool] | None = None,
) -> list[str]:
    """A finding when one answer (with `near`: nearly one, see the module) is given to SAME_ANSWER_SHARE or more of
    the rows, unless `expected` is that answer nearly as often; `declines` (qa: is it an abstention?) keeps
    abstentions out of the count.

    >>> same_answer(["x"] * 4 + ["y"], expected=list("abcde"))
    ["gave the same answer ('x') to 80% of the test rows (4 of 5)"]
    """
    n = len(predicted)
    answers = [p for p in predicted if not (declines and declines(p))]
    for top in commonest(answers, near):  # the first step that finds one answer on the share decides
        if top.rows >= SAME_ANSWER_SHARE * n:
            their = _share(expected, top.alike)
            if their is not None and their >= top.rows / n - EXPECTED_MARGIN:
                return []  # the expected answers are it about as often: the contender answers like them
            return [f"gave {_named(top, what)} to {_of(top.rows, n)}{_theirs(their)}"]
    return []


def one_answer_or_none(
    predicted: list[str], declines: Callable[[str], bool], expected: list[str] | None = None
) -> list[str]:
    """A finding when one answer (nearly, as `same_answer` finds it) is SAME_ANSWER_SHARE of the answers given and,
    with the abstentions (`declines`), covers that share of the rows: 75% one answer and 25% "I don't know". Not
    when the expected answers are that answer or an abstention nearly as often.

    >>> print(*one_answer_or_none(["Ten days."] * 6 + ["I don't know"] * 2, lambda t: "know" in t))
    gave the same answer ('Ten days.') to 75% of the test rows (6 of 8) and abstained on 25% of the test rows (2 of 8)
    """
    n = len(predicted)
    answers = [p for p in predicted if not declines(p)]
    declined = n - len(answers)
    for top in commonest(answers):
        both = top.rows + declined
        if top.rows >= max(2, SAME_ANSWER_SHARE * len(answers)) and both >= SAME_ANSWER_SHARE * n:
            their = _share(expected, _either(declines, top.alike))
            if their is not None and their >= both / n - EXPECTED_MARGIN:
                return []
            return [
                f"gave {_named(top, what='answer')} to {_of(top.rows, n)} and abstained on {_of(declined, n)}"
                + _theirs(their, "that answer or an abstention")
            ]
    return []


def _either(first: Callable[[str], bool], second: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda t: first(t) or second(t)


def _named(top: Commonest, what: str) -> str:
    return (
        f"nearly the same {what} ({_clip(top.answer)!r}, {top.how})"
        if top.how
        else f"the same {what} ({_clip(top.answer)!r})"
    )


def _of(rows: int, n: int) -> str:
    return f"{rows / n:.0%} of the test rows ({rows} of {n})"


def _share(expected: list[str] | None, alike: Callable[[str], bool]) -> float | None:
    return sum(alike(e) for e in expected) / len(expected) if expected else None


def _theirs(share: float | None, what: str = "that answer") -> str:
    return f", where {share:.0%} of the expected answers are {what}" if share else ""


def cut_answers(cut: list[bool]) -> list[str]:
    """A finding when CUT_SHARE or more of the answers ran to the token limit (generated kinds check it)."""
    if not cut:
        return []
    share = sum(cut) / len(cut)
    return (
        [f"ran to the token limit on {share:.0%} of the test rows (answers cut, often repeating themselves)"]
        if share >= CUT_SHARE
        else []
    )


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."
