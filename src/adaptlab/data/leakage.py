"""Train/test leakage: a test row whose input is also in training measures memory, not skill.

Conversations (`Dataset.conversations`) leak as wholes: a test conversation leaks when any of its turns (the whole
history before an answer, and the answer) is also a turn of a training conversation, or when a training conversation
has its id. The helpers below group a dataset's rows into its conversations for init's split and for the audit.
"""

from __future__ import annotations

from dataclasses import dataclass

from adaptlab.data.conversation import History, Turn
from adaptlab.data.dataset import Dataset, Example
from adaptlab.errors import DataError, Problem


def _key(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class Conversation:
    """One conversation of a dataset: its id, its line, and the indices of its rows (one per answer) in the dataset."""

    id: str
    line: int | None
    rows: tuple[int, ...]
    turns: tuple[Turn, ...]  # every turn up to its last answer (a classified conversation: all its turns)

    @property
    def spoken(self) -> tuple[Turn, ...]:
        return tuple(t for t in self.turns if t.role != "system")

    @property
    def text(self) -> str:
        """The whole conversation written out ("User: ...\\nAssistant: ..."), every spoken turn."""
        return str(History(self.turns, recent=None))

    @property
    def name(self) -> str:
        """How messages name it: its id, and its line when the id is not "line N" already."""
        return self.id if self.id == f"line {self.line}" or self.line is None else f"{self.id} (line {self.line})"


def conversations_of(data: Dataset) -> list[Conversation]:
    """The dataset's conversations in file order; rows of one line (or, in memory, of one id) are one conversation."""
    groups: dict[tuple, list[int]] = {}
    for i, e in enumerate(data.examples):
        groups.setdefault((e.conversation, e.line), []).append(i)
    found = []
    for (conversation, line), rows in groups.items():
        last = data.examples[rows[-1]]
        turns = tuple(last.input.turns) if isinstance(last.input, History) else (Turn("user", last.input),)
        if last.turn is not None or not (isinstance(last.input, History) and last.input.recent is None):
            turns += (Turn("assistant", last.output),)  # the answer is a turn; a classified conversation's label is not
        found.append(
            Conversation(conversation if conversation is not None else f"line {line}", line, tuple(rows), turns)
        )
    return found


def turn_key(e: Example) -> tuple:
    """What a turn is, case and spacing aside: the whole history before the answer (system message aside), and the
    answer; a classified conversation (no turn) is keyed by its turns alone, as a plain input is."""
    if not isinstance(e.input, History):
        return (_key(e.input),)
    history = tuple((t.role, _key(t.content)) for t in e.input.spoken)
    return history if e.turn is None else (history, _key(e.output))


def synthetic_id(e: Example) -> bool:
    """Whether the conversation id is the loader's "line N" (the line had no id): such ids name lines, not
    conversations."""
    return e.conversation == f"line {e.line}"


def conversation_leaks(train: Dataset, test: Dataset) -> list[dict]:
    """Test conversations that leak into train, in test order: {"test_conversation", "test_line", "train_conversation",
    "train_line", "how" ("turn" or "id"), "turns": the test turns found in train}."""
    turns: dict[tuple, Example] = {}
    ids: dict[str, Example] = {}
    for e in train:
        turns.setdefault(turn_key(e), e)
        if not synthetic_id(e):
            ids.setdefault(e.conversation, e)
    leaks = []
    for conversation in conversations_of(test):
        rows = [test.examples[i] for i in conversation.rows]
        found = [(e, turns[turn_key(e)]) for e in rows if turn_key(e) in turns]
        same_id = ids.get(conversation.id) if not synthetic_id(rows[0]) else None
        if not found and same_id is None:
            continue
        other = found[0][1] if found else same_id
        assert other is not None  # a turn found, or the same id (else skipped above)
        leaks.append(
            {
                "test_conversation": conversation.id,
                "test_line": conversation.line,
                "train_conversation": other.conversation,
                "train_line": other.line,
                "how": "turn" if found else "id",
                "turns": [e.turn for e, _ in found],
            }
        )
    return leaks


def _leak_text(leak: dict, train: Dataset) -> str:
    where = f"conversation {leak['train_conversation']} ({train.source} line {leak['train_line']})"
    if leak["how"] == "id":
        return f"conversation id {leak['test_conversation']!r} is also in {train.source} line {leak['train_line']}"
    turns = [t for t in leak["turns"] if t is not None]
    what = (
        f"{len(leak['turns'])} of its turns ({', '.join(map(str, turns))})"
        if turns and len(leak["turns"]) > 1
        else f"its turn {turns[0]}"
        if turns
        else "its turns"
    )
    return f"{what} (history and answer) also in {where}"


def check_leakage(train: Dataset, test: Dataset, allow: bool = False) -> list[str]:
    """Test rows whose input (case and spacing aside) is also a training input; for conversations, test conversations
    with a turn (history and answer) or an id also in training.

    An error listing every pair unless `allow`; then the pairs come back as warnings.
    """
    if train.conversations and test.conversations:
        return _check_conversations(train, test, allow)
    seen: dict[str, int | None] = {}
    for e in train:
        seen.setdefault(_key(e.input), e.line)
    pairs = [(e, seen[_key(e.input)]) for e in test if _key(e.input) in seen]
    if not pairs:
        return []
    if allow:
        return [
            f"{test.source} line {e.line}: its input is also in {train.source} line {n} (allowed by data.allow_overlap)"
            for e, n in pairs
        ]
    problems = [
        Problem(
            "leakage",
            test.source,
            e.line,
            "input",
            f"the same input is in {train.source} line {n}",
            "remove it from one split, or set data.allow_overlap: true",
        )
        for e, n in pairs[:100]
    ]
    raise DataError(problems, truncated=len(pairs) > 100)


def _check_conversations(train: Dataset, test: Dataset, allow: bool) -> list[str]:
    leaks = conversation_leaks(train, test)
    if not leaks:
        return []
    if allow:
        return [
            f"{test.source} line {p['test_line']}: conversation {p['test_conversation']}: "
            f"{_leak_text(p, train)} (allowed by data.allow_overlap)"
            for p in leaks
        ]
    problems = [
        Problem(
            "leakage",
            test.source,
            p["test_line"],
            "id" if p["how"] == "id" else "messages",
            f"conversation {p['test_conversation']}: {_leak_text(p, train)}",
            "split by conversation (a conversation's turns all on one side), or set data.allow_overlap: true",
        )
        for p in leaks[:100]
    ]
    raise DataError(problems, truncated=len(leaks) > 100)


def group_key(e: Example, conversations: bool) -> str:
    """The key a split keeps rows together by: a row's conversation (its id and line), else its input (case and spacing
    aside)."""
    return f"{e.conversation}\0{e.line}" if conversations else _key(e.input)


def linked_conversations(groups: dict[str, list[Example]]) -> dict[str, list[Example]]:
    """Conversations merged (in file order) when they share a turn (history and answer, case and spacing aside) or a
    real id: check_leakage refuses a test conversation with a turn or an id in train."""
    parent = {key: key for key in groups}
    order = {key: n for n, key in enumerate(groups)}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    owner: dict[tuple, str] = {}
    for key, rows in groups.items():
        for mark in [("turn", turn_key(e)) for e in rows] + [
            ("id", e.conversation) for e in rows[:1] if not synthetic_id(e)
        ]:
            if mark not in owner:
                owner[mark] = key
                continue
            a, b = root(owner[mark]), root(key)
            if a != b:  # the earlier conversation's key stands for the group
                parent[max(a, b, key=order.__getitem__)] = min(a, b, key=order.__getitem__)  # every key is in order
    merged: dict[str, list[Example]] = {}
    for key, rows in groups.items():
        merged.setdefault(root(key), []).extend(rows)
    return merged


def rows_by_group(data: Dataset, conversations: bool) -> dict[str, list[Example]]:
    """The rows of each group (`group_key`: a conversation, else an input), in file order."""
    groups: dict[str, list[Example]] = {}
    for e in data:
        groups.setdefault(group_key(e, conversations), []).append(e)
    return groups
