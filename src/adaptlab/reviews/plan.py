"""Which test row and pair of contenders a reviewer sees next, and which answer goes on the left.

The items are every (row, a, b) for the pairs worth comparing (`decide.judged.pairs_worth_comparing`:
every two contenders, less those a trivial reference loses by a wide margin) on the rows where
a's and b's answers differ. Rows where the two answers are the same text (after folding case
and spaces) are left out: there is nothing to judge, and the statistics count them as ties.
Among the other rows the order is random (seeded), not chosen by how far the answers differ:
prediction-powered inference needs the rated rows to be a uniform sample of the rows.

The order deals the pairs round-robin (item k of each pair before item k+1 of any), so the
first 6 x 50 = 300 ratings of a 6-pair run give every comparison 50. Every reviewer begins
with the same first rows of each pair (about SHARED items in all, so two reviewers' own
agreement can be measured), then goes on from an offset of their own in each pair's rows, so
that several reviewers cover different rows first and all of them, in the end, every row.
Each item's left/right order is drawn per reviewer and row and recorded in the rating.

    >>> plan = plan_for(results, "ana", seed=0)          # doctest: +SKIP
    >>> plan.items[0].row, plan.target                   # doctest: +SKIP
    (17, 300)
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from adaptlab.decide.judged import pairs_worth_comparing
from adaptlab.judges.judge import folded
from adaptlab.results import CompareResults
from adaptlab.reviews.ratings import Rating

SHARED = 20  # items every reviewer rates first (rounded up to whole rounds: 24 on a 6-pair run), for their own kappa
PLANNED = 100  # a reviewer's target in all, spread over the pairs: 17 per pair on a 6-pair run
MIN_PER_PAIR = 10  # the least per pair worth a target: under it, agreement with a judge cannot be measured
# (bench/results/judged-cpu.json: with a judge that agrees with people 85% of the time, 27 ratings of a pair give
# +-0.10; people alone need 74; docs/judged.md)


@dataclass(frozen=True)
class Item:
    """One thing to judge: contenders a and b on test row `row`, a's answer on the left when `left` is "a"."""

    row: int
    a: str
    b: str
    left: str  # "a" or "b"

    @property
    def key(self) -> tuple[int, frozenset[str]]:
        return self.row, frozenset((self.a, self.b))

    def token(self, seed: int, salt: str = "") -> str:
        """The item's id on the page: names neither contender, and is the same after a restart; with the run's
        `salt` (review_secret) nobody can compute it from the contender ids."""
        return _digest(f"item|{salt}|{seed}|{self.row}|{self.a}|{self.b}")[:16]


@dataclass(frozen=True)
class Plan:
    """A reviewer's items in the order to show them; `target` of them make the planned amount."""

    reviewer: str
    seed: int
    items: tuple[Item, ...]
    pairs: tuple[tuple[str, str], ...]
    target: int
    skipped_identical: int  # (row, pair)s left out: the two answers are the same text
    salt: str = ""  # the run's review secret: item ids and sides cannot be computed from the contender ids

    def by_token(self) -> dict[str, Item]:
        return {item.token(self.seed, self.salt): item for item in self.items}

    def next_item(self, rated: set[tuple[int, frozenset[str]]]) -> Item | None:
        """The first item the reviewer has not rated (whatever sides they saw it on), or None when all are."""
        return next((item for item in self.items if item.key not in rated), None)

    def rated_of(self, rated: set[tuple[int, frozenset[str]]]) -> int:
        """How many of the plan's items are among `rated`."""
        return sum(item.key in rated for item in self.items)


def plan_for(
    results: CompareResults,
    reviewer: str,
    seed: int | None = None,
    per_pair: int | None = None,
    shared: int = SHARED,
    salt: str = "",
) -> Plan:
    """`reviewer`'s plan over the run's pairs worth comparing and rows where their answers differ (seed: the run's);
    its target is `per_pair` ratings of every pair (default: PLANNED in all, at least MIN_PER_PAIR a pair)."""
    seed = results.seed if seed is None else seed
    pairs = pairs_worth_comparing(results)
    if per_pair is None:
        per_pair = max(MIN_PER_PAIR, -(-PLANNED // max(len(pairs), 1)))
    answers = {s.name: [folded(p.predicted) for p in s.predictions] for s in results.strategies}
    rows = min((len(v) for v in answers.values()), default=0)
    head = -(-shared // len(pairs)) if pairs else 0  # rounds every reviewer shares: ceil(20 / 6) = 4 per pair
    queues, identical = [], 0
    for a, b in pairs:
        differ = [r for r in range(rows) if answers[a][r] != answers[b][r]]
        identical += rows - len(differ)
        random.Random(_digest(f"rows|{seed}|{a}|{b}")).shuffle(differ)
        first, rest = differ[:head], differ[head:]
        if rest:  # the reviewer's own starting point in this pair's rows after the shared ones
            offset = int(_digest(f"offset|{seed}|{reviewer}|{a}|{b}"), 16) % len(rest)
            rest = rest[offset:] + rest[:offset]
        queues.append([(r, a, b) for r in first + rest])
    dealt = [q[k] for k in range(max(map(len, queues), default=0)) for q in queues if k < len(q)]
    items = tuple(Item(r, a, b, _side(seed, reviewer, r, a, b, salt)) for r, a, b in dealt)
    return Plan(
        reviewer=reviewer,
        seed=seed,
        items=items,
        pairs=tuple(pairs),
        target=min(len(items), per_pair * len(pairs)),
        skipped_identical=identical,
        salt=salt,
    )


def rated_keys(ratings: list[Rating], reviewer: str | None = None) -> set[tuple[int, frozenset[str]]]:
    """(row, {a, b}) of each rating (of `reviewer`'s only, when given)."""
    return {(r.row, frozenset((r.a, r.b))) for r in ratings if reviewer is None or r.reviewer == reviewer}


def _side(seed: int, reviewer: str, row: int, a: str, b: str, salt: str = "") -> str:
    return "a" if int(_digest(f"left|{salt}|{seed}|{reviewer}|{row}|{a}|{b}"), 16) % 2 == 0 else "b"


def review_secret(run_dir: Path) -> str:
    """The run's review secret (RUN/ratings/.secret, made once, 128 random bits): mixed into item ids and sides, so a
    reviewer who guesses the contender ids still cannot tell which answer is whose."""
    import secrets

    from adaptlab.files import write_text_atomic

    path = Path(run_dir) / "ratings" / ".secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, secrets.token_hex(16))
    return path.read_text(encoding="utf-8").strip()


def _digest(text: str) -> str:
    """sha256 of `text` in hex: a seed that does not depend on Python's per-process string hashing."""
    return hashlib.sha256(text.encode()).hexdigest()
