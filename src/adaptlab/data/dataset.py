"""`Example` and `Dataset`: validated (input, output) pairs with a content hash."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from adaptlab.data.conversation import History


@dataclass(frozen=True)
class Example:
    """One labeled example; `line` is its 1-based line in the source file."""

    input: str
    output: str
    line: int | None = None
    sources: tuple[str, ...] = ()  # knowledge tasks: the passages that hold the answer ("handbook.pdf#page=3")
    old_output: str | None = None  # update questions: the answer before the documents changed (the stale fact)
    conversation: str | None = (
        None  # conversations: the id of the conversation this answer is a turn of (its "id", else "line N")
    )
    turn: int | None = None  # ... and the answer's index in that conversation's messages


@dataclass(frozen=True)
class Dataset:
    """Examples read from one file, in file order.

    >>> ds = Dataset([Example("card lost", "lost_card")], source="train.jsonl")
    >>> ds.outputs
    ['lost_card']
    """

    examples: list[Example]
    source: str = "<memory>"
    instruction: str | None = None  # the system message shared by every chat example
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self):
        return iter(self.examples)

    @property
    def inputs(self) -> list[str]:
        return [e.input for e in self.examples]

    @property
    def outputs(self) -> list[str]:
        return [e.output for e in self.examples]

    @property
    def conversations(self) -> bool:
        """Whether the examples are turns of conversations (their inputs are histories)."""
        return any(e.conversation is not None for e in self.examples)

    def label_counts(self) -> Counter:
        return Counter(self.outputs)

    @property
    def content_hash(self) -> str:
        """sha256 of the examples' content, independent of file format and line ends."""
        digest = hashlib.sha256()
        for e in self.examples:
            turns = [[t.role, t.content, t.weight] for t in e.input.turns] if isinstance(e.input, History) else e.input
            digest.update(json.dumps([turns, e.output], ensure_ascii=False).encode())
            digest.update(b"\n")
        return digest.hexdigest()
