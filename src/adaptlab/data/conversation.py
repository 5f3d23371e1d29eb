"""Conversations as data: the turns before an assistant's answer (`History`) and the turns themselves (`Turn`).

A conversation file (OpenAI chat fine-tuning lines with many turns, or ShareGPT's
`{"conversations": [{"from", "value"}]}`) becomes one example per assistant turn
that is learned and tested (`weight` 1, OpenAI's field): its input is the `History`
before that turn, its output the turn's text; a labelled line is one example, the whole
conversation. A `History` is a string, so everything that reads inputs as text
(similarity, retrieval, the classifiers without an LLM, the audit, results.json) reads
its recent turns written out (a labelled conversation's: every turn); prompts read
`turns`, the messages themselves, and send them through the model's chat template. A
chat request's messages make the same History (`history_of`), so a served version reads
what it was measured on.

    >>> turns = Turn("user", "What's my balance?"), Turn("assistant", "In checking or savings?")
    >>> turns += (Turn("user", "Checking."),)
    >>> h = History(turns)
    >>> str(h)
    "User: What's my balance?\\nAssistant: In checking or savings?\\nUser: Checking."
    >>> [t.role for t in h.turns], len(h.dropping(2).turns)
    (['user', 'assistant', 'user'], 1)
"""

from __future__ import annotations

from dataclasses import dataclass

RECENT_TURNS = (
    6  # a history's text (what similarity and retrieval read) holds its last turns, the ones that decide the answer
)
SPEAKERS = {"user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class Turn:
    """One message of a conversation; `weight` 0 marks an assistant turn kept as context, never learned or tested."""

    role: str  # system, user or assistant
    content: str
    weight: int = 1

    def message(self) -> dict:
        return {"role": self.role, "content": self.content}


class History(str):
    """The turns before an answer, as one input: its text is the last `recent` turns written out (every turn when
    `recent` is None), `turns` holds them all (a system turn first, if the conversation has one)."""

    turns: tuple[Turn, ...]
    recent: int | None

    def __new__(cls, turns: tuple[Turn, ...], recent: int | None = RECENT_TURNS):
        spoken = [t for t in turns if t.role != "system"]
        shown = spoken if recent is None else spoken[-recent:]
        made = super().__new__(cls, "\n".join(f"{SPEAKERS[t.role]}: {t.content}" for t in shown))
        made.turns, made.recent = tuple(turns), recent
        return made

    def __reduce__(self):  # copies and pickles keep the turns, not just the text
        return (History, (self.turns, self.recent))

    @property
    def system(self) -> str | None:
        """The conversation's own system message, if it has one."""
        return next((t.content for t in self.turns if t.role == "system"), None)

    @property
    def spoken(self) -> tuple[Turn, ...]:
        """The user and assistant turns, in order."""
        return tuple(t for t in self.turns if t.role != "system")

    def asking(self, text: str) -> History:
        """This history with its last turn (the user's, to be answered) reading `text` instead (rag: the passages, then
        it)."""
        last = self.turns[-1]
        return History(self.turns[:-1] + (Turn(last.role, text, last.weight),), self.recent)

    def whole(self) -> History:
        """This history with every turn in its text (a labelled conversation is classified whole)."""
        return History(self.turns, recent=None)

    def dropping(self, n: int) -> History:
        """This history without its `n` oldest spoken turns (its system turn kept); it still starts on a user turn."""
        spoken = list(self.spoken)[n:]
        while spoken and spoken[0].role != "user":
            spoken.pop(0)
        system = tuple(t for t in self.turns if t.role == "system")
        return History(system + tuple(spoken), self.recent)


def messages_of(query: str) -> list[dict]:
    """The chat messages a query stands for: a History's spoken turns, or one user message."""
    if isinstance(query, History):
        return [t.message() for t in query.spoken]
    return [{"role": "user", "content": query}]


def history_of(messages: list[dict], whole: bool = False) -> History | None:
    """The History a chat request's messages make when they hold a conversation, as a conversation file's line is read
    (data/load.py): the turns up to the last user turn, the one to answer, its text the recent ones (an assistant turn
    before that user turn makes it a conversation); `whole` (a labelled task, which classifies a conversation): every
    message, a last assistant turn too, all in its text (any assistant turn makes it one). None for a single question,
    which is answered as plain text."""
    turns = tuple(Turn(m["role"], m["content"]) for m in messages)
    roles = [t.role for t in turns]
    if "user" not in roles:
        return None
    if whole:
        return History(turns, recent=None) if "assistant" in roles else None
    last_user = len(roles) - 1 - roles[::-1].index("user")
    if "assistant" not in roles[:last_user]:
        return None
    return History(turns[: last_user + 1])


def input_json(query: str) -> str | dict:
    """An input as saved files hold it: plain text, or a History's turns (`input_from_json` reads both back)."""
    if isinstance(query, History):
        return {"turns": [[t.role, t.content, t.weight] for t in query.turns], "recent": query.recent}
    return query


def input_from_json(value: str | dict) -> str:
    return History(tuple(Turn(*t) for t in value["turns"]), value["recent"]) if isinstance(value, dict) else value
