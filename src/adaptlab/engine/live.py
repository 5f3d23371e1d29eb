"""`LiveBatch`: the batch a server keeps decoding, which requests join between steps and leave as soon as they end.

`generate` answers a list of prompts known up front; a server's requests arrive while others
are being answered. A `LiveBatch` holds one `Session` (engine/session.py): at each step the
server may `join` the requests waiting on the same lane (the same model, adapter and
settings: a `Generation`) while they fit its row and memory budgets, and `step` hands back
each request whose answer ended. A request's answer is the one it gets alone (greedy decoding;
rows never see each other's columns).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from adaptlab.engine.generate import (
    MAX_BATCH,
    MEMORY_MB,
    Answer,
    AnswerRow,
    Ending,
    Sink,
    bytes_per_token,
    pad_token,
    stop_tokens,
)
from adaptlab.engine.session import Session

if TYPE_CHECKING:
    from adaptlab.models.base import BaseModel

Tag = TypeVar("Tag")  # what the caller knows a row by (the server: the request's index in its batch)
RAW = Ending(loops=False)  # the base model's own answers: only its end of turn and the token limit end them


@dataclass(frozen=True)
class Generation:
    """How one lane's answers are generated: on which model, with which adapter, how long, where they end."""

    base: BaseModel  # the BaseModel: its model, tokenizer, end-of-turn token and device
    max_new_tokens: int  # tokens an answer may have, at most
    ending: Ending = RAW  # stop and end strings, and whether a row that loops ends there
    adapter: str | None = None  # the LoRA adapter on while it runs; None: every adapter off
    prompt: Callable[[Any], list[int]] = field(
        default=list
    )  # a request's input to its prompt's token ids (raises for one that cannot be answered)


class LiveBatch(Generic[Tag]):
    """Rows of one `Generation` decoding together; requests join between steps, within `max_rows` and `memory_mb`.

    >>> live = LiveBatch(Generation(base, 64))             # doctest: +SKIP
    >>> live.join([("request 1", prompt_ids, stream)])     # doctest: +SKIP
    >>> while live.rows:                                    # doctest: +SKIP
    ...     for tag, answer in live.step(): ...            # each request's Answer as soon as it ends
    """

    def __init__(self, generation: Generation, max_rows: int = MAX_BATCH, memory_mb: int = MEMORY_MB):
        base = generation.base
        self.generation, self.max_rows, self.budget = generation, max_rows, memory_mb * 2**20
        self.stops = stop_tokens(base.tokenizer, base.eot_id)
        self.session = Session(base.model, pad_token(base.tokenizer, base.eot_id), base.device)
        self.per_token = bytes_per_token(base.model, False)
        self.tags: dict[AnswerRow, Tag] = {}

    @property
    def rows(self) -> int:
        """Rows still generating."""
        return self.session.live

    def fits(self, prompts: list[list[int]]) -> bool:
        """Whether rows for all of `prompts` fit beside the live ones: at most `max_rows`, their keys and values (prompt
        +
        answer, padded to the longest) within the memory budget. An empty batch takes one row of any length."""
        rows = self.rows + len(prompts)
        if rows <= 1:
            return True
        width = max([self.session.columns] + [len(p) for p in prompts]) + self.generation.max_new_tokens
        return rows <= self.max_rows and rows * width * self.per_token <= self.budget

    def join(self, requests: list[tuple[Tag, list[int], Sink | None]]) -> None:
        """Add (tag, prompt ids, sink) rows: their prompts run now, their first tokens come with the next step."""
        if not requests:
            return
        base, ending = self.generation.base, self.generation.ending
        rows = [AnswerRow(sink, base.tokenizer, ending, self.stops) for _, _, sink in requests]
        self.tags.update((row, tag) for row, (tag, _, _) in zip(rows, requests))
        self.session.join([ids for _, ids, _ in requests], rows, self.generation.max_new_tokens)

    def step(self) -> list[tuple[Tag, Answer]]:
        """One token for every live row; (tag, Answer) of each row that ended with it."""
        return [(self.tags.pop(row), row.finish()) for row in self.session.step()]
