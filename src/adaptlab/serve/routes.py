"""The HTTP routes: /health, /ready, /v1/models, /v1/chat/completions (streamed too) and /v1/completions.

(No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at runtime.)

Each route is a plain async function of its request; what they share is the `ServerState` on
`request.app.state.server`. A request is checked (serve/requests.py), queued on its model's
lane, and answered when the worker is done; a client that goes away first is dropped from the
queue, or its row stops at the next token. Streams carry tokens as they are generated.
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from adaptlab.serve.batcher import QueueFull
from adaptlab.serve.failures import ClientGone, api_error_of
from adaptlab.serve.guard import ApiError
from adaptlab.serve.models import ModelNotFound
from adaptlab.serve.requests import (
    chat_messages,
    check_n,
    completion_prompt,
    max_tokens_of,
    model_input,
    model_of,
    read_json,
)
from adaptlab.serve.responses import (
    EventStream,
    chat_completion,
    dropped_header,
    error_response,
    finish_reason,
    text_completion,
    usage,
)
from adaptlab.serve.state import ServerState
from adaptlab.serve.stream import DONE, Stream, chunk
from adaptlab.serve.worker import Answer, turns_dropped


@dataclass(frozen=True)
class Queued:
    """A request on its lane: the name it asked for, the batcher's future for its answer, the stream its answer flows
    through, and what its model answers (a task version's query: text, or a Conversation)."""

    model: str
    future: Future
    stream: Stream
    query: object = None


def server_of(request: Request) -> ServerState:
    """The state of the app the request came to."""
    return request.app.state.server


async def health():
    return {"status": "ok"}


async def ready(request: Request):
    """200 while the worker runs and moves; 503 while starting, draining, or stalled with requests waiting."""
    server = server_of(request)
    batcher, stall_s = server.batcher, server.limits.stall_s
    if not (server.ready and batcher and batcher.alive):
        return error_response(ApiError(503, "not ready", "server_error", retry_after=1))
    if batcher.stalled(stall_s):
        return error_response(
            ApiError(
                503,
                f"the model worker has made no progress for {stall_s:g} s with requests waiting",
                "server_error",
                retry_after=5,
            )
        )
    return {
        "status": "ready",
        "waiting": batcher.waiting,
        "batches": batcher.batches,
        "batched_requests": batcher.batched_requests,
        **server.stats,
    }


async def list_models(request: Request):
    """The base model under its served name, then every task and version; those whose documents changed say so."""
    server = server_of(request)
    names, stale = await asyncio.to_thread(
        lambda: ([server.base_name] + server.models.names()[1:], server.models.stale())
    )
    return {
        "object": "list",
        "data": [
            {"id": n, "object": "model", "created": 0, "owned_by": "adaptlab"}
            | ({"stale": True, "changed": stale[n]} if n in stale else {})
            for n in names
        ],
    }


async def chat(request: Request):
    """A chat answer from the whole conversation: the base model's through its chat template (refused when it overflows
    the context), a task version's through its own prompt (a single question: the last user message), the oldest turns
    left out where they overflow its context, and the answer says how many (usage, x-history-turns-dropped)."""
    limits = server_of(request).limits
    body = await read_json(request, limits.max_json_depth)
    messages = chat_messages(body, limits.max_messages, limits.max_prompt_chars)
    include_usage = stream_usage_of(body)
    queued = await submit(request, body, messages)
    created, rid = int(time.time()), f"chatcmpl-{uuid.uuid4().hex}"
    if not body.get("stream"):
        answer = await outcome(request, queued)
        return JSONResponse(
            chat_completion(rid, created, queued.model, answer), headers=dropped_header(answer.turns_dropped)
        )
    return await chat_stream(request, queued, rid, created, include_usage)


async def completions(request: Request):
    """A text completion of `prompt` (never streamed: stream on /v1/chat/completions)."""
    limits = server_of(request).limits
    body = await read_json(request, limits.max_json_depth)
    prompt = completion_prompt(body, limits.max_prompt_chars)
    queued = await submit(request, body, prompt)
    return text_completion(queued.model, await outcome(request, queued))


ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    ("/health", "GET", health),
    ("/ready", "GET", ready),
    ("/v1/models", "GET", list_models),
    ("/v1/chat/completions", "POST", chat),
    ("/v1/completions", "POST", completions),
]


def stream_usage_of(body: dict) -> bool:
    """Whether a streamed chat's last event carries usage (`stream_options.include_usage`, as OpenAI's clients ask);
    a request that is not streamed has no such event, and its `stream_options` are not read."""
    if not body.get("stream"):
        return False
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, 'stream_options must be an object, like {"include_usage": true}')
    return bool(options.get("include_usage"))


async def submit(request: Request, body: dict, prompt: str | list[dict]) -> Queued:
    """Check the rest of the request (model, n, max_tokens, context) and queue it on its model's lane."""
    server = server_of(request)
    model = model_of(body)
    check_n(body)
    max_tokens = max_tokens_of(body, server.limits.max_tokens)
    name = server.models.base.name if model == server.base_name else model
    try:
        version = await asyncio.to_thread(server.models.find, name)  # a registry lookup; loading happens on the worker
    except ModelNotFound as exc:
        raise ApiError(404, str(exc), code="model_not_found") from None
    # a labelled task classifies a conversation whole, every message in the text its solver reads, as it was measured
    whole = version is not None and await asyncio.to_thread(server.models.reads_whole, version)
    payload = model_input(server.models.base, prompt, version is None, max_tokens, whole)
    batcher = server.batcher
    if batcher is None or not server.ready:
        raise ApiError(503, "shutting down", "server_error", retry_after=1)
    stream = Stream(asyncio.get_running_loop(), batcher.beat, wants_text=bool(body.get("stream")))
    try:  # a lane per model and, for the base model, per max_tokens (a version's own settings decide its length)
        future = batcher.submit((name, max_tokens if version is None else 0), (payload, stream))
    except QueueFull as exc:
        raise ApiError(
            429,
            f"the server is busy (too many requests, or too much work, waiting); retry in {exc.retry_after} s",
            "rate_limit_error",
            retry_after=exc.retry_after,
        ) from None
    return Queued(model, future, stream, payload)


async def outcome(request: Request, queued: Queued) -> Answer:
    """The request's answer; the client going away first drops or stops the request (ClientGone)."""
    done = asyncio.wrap_future(queued.future)
    if await client_left_first(request, done):
        raise give_up(request, queued)
    return answer_of(done, queued.model)


def answer_of(done: asyncio.Future, model: str) -> Answer:
    """The finished request's Answer, or the ApiError its failure (its own or its whole batch's) is answered with."""
    try:
        return done.result()
    except Exception as exc:
        raise api_error_of(exc, model) from None


async def chat_stream(request: Request, queued: Queued, rid: str, created: int, include_usage: bool) -> EventStream:
    """A streamed chat answer. The first piece or the end decides the status: a failure before any text is still a
    proper error code."""
    done = asyncio.wrap_future(queued.future)
    done.add_done_callback(lambda _: queued.stream.close())
    first = asyncio.ensure_future(queued.stream.pieces.get())
    if await client_left_first(request, first):
        first.cancel()
        raise give_up(request, queued)
    if first.result() is DONE:
        answer_of(done, queued.model)  # raises the request's error, if it failed

    def closed():
        if not done.done():  # the client went away mid-stream
            server_of(request).abandon(queued.future, queued.stream)

    # The first piece comes after the prompt was built: how many of a conversation's turns it left out is known now.
    headers = dropped_header(turns_dropped(queued.query))
    return EventStream(
        chat_events(queued, done, first.result(), (rid, created, queued.model), include_usage), closed, headers
    )


async def chat_events(queued: Queued, done: asyncio.Future, piece, head: tuple[str, int, str], include_usage: bool):
    """The stream's events: the role, each piece as generated, any rest of the answer, the finish (with usage if asked),
    [DONE].
    `head` is each chunk's (id, created, model)."""
    sent = ""
    try:
        yield chunk(*head, {"role": "assistant", "content": ""})
        while piece is not DONE:
            sent += piece
            yield chunk(*head, {"content": piece})
            piece = await queued.stream.pieces.get()
        answer = answer_of(done, queued.model)
        if (
            answer.text.startswith(sent) and answer.text != sent
        ):  # answers that are not generated token by token: a label
            yield chunk(*head, {"content": answer.text[len(sent) :]})
        yield chunk(*head, {}, finish_reason(answer.cut), usage(answer) if include_usage else None, answer.sources)
        yield "data: [DONE]\n\n"
    except ApiError as exc:  # failed after the stream began: the error rides in the stream, OpenAI-style
        yield "data: " + exc.body().decode() + "\n\n"


async def client_left_first(request: Request, waiting: asyncio.Future) -> bool:
    """Wait for `waiting` or for the client to disconnect, whichever comes first; True when the client went first."""
    gone = asyncio.ensure_future(disconnected(request))
    try:
        await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    return not waiting.done()


def give_up(request: Request, queued: Queued) -> ClientGone:
    """The client went away before its answer: the request leaves the queue, or its row stops; the ClientGone to
    raise."""
    server_of(request).abandon(queued.future, queued.stream)
    return ClientGone()


async def disconnected(request: Request) -> None:
    """Returns when the client has gone away (after the body, the next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
