"""What every route of one server shares: its `Limits`, the served models, the batcher that runs them, and what
disconnects cost.

One `ServerState` per app, on `app.state.server`; the routes (serve/routes.py) read it from
their request, so they are plain functions.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from adaptlab.serve.batcher import Batcher
from adaptlab.serve.stream import Stream
from adaptlab.serve.worker import run_batch

if TYPE_CHECKING:
    from adaptlab.models import BaseModel
    from adaptlab.registry.store import Version


class Models(Protocol):
    """What the server asks of its models: serve.models.ServedModels, or a stand-in with the same methods."""

    @property
    def base(self) -> BaseModel: ...

    def names(self) -> list[str]: ...

    def stale(self) -> dict[str, list[str]]: ...

    def find(self, name: str) -> Version | None: ...

    def reads_whole(self, version: Version) -> bool: ...

    def solver(self, name: str) -> Any: ...


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_messages: int = 64
    max_tokens: int = 512
    max_prompt_chars: int = 32_000
    max_json_depth: int = 16  # a chat request needs 4 ({"messages": [{...}]}); deeper is hostile
    max_queue: int = 64
    max_wait_s: float = 60.0  # a request that would wait longer than this behind the queued work gets 429 at once
    max_batch: int = 8
    stall_s: float = 60.0  # /ready answers 503 when work waits and the worker has not moved for this long


def no_disconnects() -> dict[str, int]:
    """What clients going away cost: requests dropped from the queue, rows stopped mid-generation,
    and the tokens those rows still produced after the disconnect (the one in flight)."""
    return {"dropped_queued": 0, "stopped_running": 0, "tokens_after_disconnect": 0}


@dataclass
class ServerState:
    """One server's shared state: `batcher` exists, and `ready` is True, between the app's startup and shutdown."""

    models: Models  # ServedModels, or anything with its find/solver/names/stale/base
    base_name: str  # the base model's name as clients send it
    limits: Limits
    batcher: Batcher | None = None
    ready: bool = False
    stats: dict[str, int] = field(default_factory=no_disconnects)

    @asynccontextmanager
    async def lifespan(self, app):
        """Start the model's worker; at shutdown, /ready says 503 while the queue drains."""
        limits = self.limits
        self.batcher = app.state.batcher = Batcher(
            partial(run_batch, self.models), limits.max_queue, limits.max_batch, max_wait_s=limits.max_wait_s
        )
        self.ready = True
        yield
        self.ready = False
        await asyncio.to_thread(self.batcher.close)

    def abandon(self, future, stream: Stream) -> None:
        """The client went away: a queued request leaves the queue, a running row stops at its next token (counted in
        `stats`)."""
        stream.cancelled = True
        assert self.batcher is not None  # started by `lifespan` before any request
        if self.batcher.drop(future):
            self.stats["dropped_queued"] += 1
            return
        self.stats["stopped_running"] += 1

        def count(_):
            self.stats["tokens_after_disconnect"] += stream.tokens_after_cancel

        future.add_done_callback(count)
