"""`Stream`: one request's answer, handed from the model's worker thread to the request's event loop as it is made.

Every request gets one, streamed or not: `cancelled` is how its client's disconnect
reaches the running batch (the row stops at its next token), and each piece is the
worker's heartbeat for the /ready watchdog.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

DONE = None  # the queue's end marker


class Stream:
    """A `Sink` (engine/generate.py) whose pieces go to an asyncio queue on `loop`."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, beat: Callable[[], None] = lambda: None, wants_text: bool = True
    ):
        self.loop = loop
        self.wants_text = wants_text  # False: a plain (non-streamed) request, only its cancel flag and tokens matter
        self.pieces: asyncio.Queue = asyncio.Queue()
        self.cancelled = False
        self.tokens = 0  # generated for this request, counted on the worker thread
        self.tokens_after_cancel = 0  # ... of them after its client went away (at most the one in flight)
        self._beat = beat

    def token(self) -> None:
        self._beat()
        self.tokens += 1
        self.tokens_after_cancel += self.cancelled

    def put(self, text: str) -> None:
        if not self.cancelled:  # the engine only puts text for streams that want it
            self.loop.call_soon_threadsafe(self.pieces.put_nowait, text)

    def close(self) -> None:
        """No more pieces (called on the loop once the request's future is done)."""
        self.pieces.put_nowait(DONE)


def chunk(
    rid: str,
    created: int,
    model: str,
    delta: dict,
    finish: str | None = None,
    usage: dict | None = None,
    sources: list | None = None,
) -> str:
    """One server-sent event in OpenAI's chat.completion.chunk shape (a rag answer's last one carries its `sources`)."""
    body = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    if sources:
        body["sources"] = sources
    return "data: " + json.dumps(body) + "\n\n"
