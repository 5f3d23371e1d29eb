"""The OpenAI-compatible HTTP API: /v1/models, /v1/chat/completions (stream too), /v1/completions, /health, /ready.

(No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at runtime.)

Every error body is OpenAI-shaped (`{"error": {"message", "type", "code"}}`) and never
holds a stack trace or a server path; serve/guard.py checks every request first (Host,
API key, Content-Type, body size). Streams carry tokens as they are generated; a client
that goes away is dropped from the queue, or its row stops at the next token.
"""


import asyncio
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass

from adaptlab.errors import AdaptlabError
from adaptlab.kinds.context import BaseMismatch
from adaptlab.remote.client import RemoteError
from adaptlab.serve.batcher import Batcher, QueueFull
from adaptlab.serve.guard import ApiError, Guard, json_depth
from adaptlab.serve.models import ModelNotFound, ServedModels
from adaptlab.serve.stream import DONE, Stream, chunk

log = logging.getLogger("adaptlab.serve")
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


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


class LoadFailed(Exception):
    """A version's files failed verification or loading (the server answers 503 for it and serves the rest)."""

    def __init__(self, message: str, public: str | None = None):
        super().__init__(message)
        self.public = public  # what the client may read (no paths); None: a generic sentence


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


def create_app(models: ServedModels, base_name: str, api_key: str | None = None, limits: Limits = Limits(), allowed_hosts: tuple[str, ...] = ()):
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response, StreamingResponse
    from starlette.exceptions import HTTPException

    class EventStream(StreamingResponse):
        """Server-sent events that call `closed` when the response ends, finished or cut off by the client."""

        def __init__(self, events, closed):
            super().__init__(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
            self.closed = closed

        async def __call__(self, scope, receive, send):
            try:
                await super().__call__(scope, receive, send)
            finally:
                self.closed()
                await self.body_iterator.aclose()

    state = {"ready": False, "batcher": None}
    # What clients going away cost: requests dropped from the queue, rows stopped mid-generation,
    # and the tokens those rows still produced after the disconnect (the one in flight).
    stats = {"dropped_queued": 0, "stopped_running": 0, "tokens_after_disconnect": 0}

    def run_batch(key: tuple, payloads: list) -> list:
        """Answers in order, as (text, completion tokens, cut by the token limit, the passages a rag answer was given or None);
        an item may be an exception that belongs to that request alone."""
        model, max_tokens = key
        try:
            solver = models.solver(model)
        except BaseMismatch as exc:  # fitted on another base: the message names both models (never a path)
            raise LoadFailed(str(exc), str(exc)) from None
        except Exception as exc:  # verification or a library's load error: this model fails, the worker goes on
            log.error("loading %s failed: %s: %s", model, type(exc).__name__, exc)
            raise LoadFailed(str(exc)) from None
        contents, streams = [c for c, _ in payloads], [s for _, s in payloads]
        if solver is None:  # the base model itself: batched greedy generation
            from adaptlab.engine.generate import generate
            from adaptlab.engine.lm_solver import _adapter

            with _adapter(models.base, None):
                answers = generate(models.base.model, models.base.tokenizer, contents, models.base.eot_id, models.base.device, max_tokens, sinks=streams)
                return [(a.text, a.tokens, a.cut, None) for a in answers]
        try:
            predictions = solver.predict(contents, sinks=streams) if getattr(solver, "streams", False) else solver.predict(contents)
            return [(p.output, p.completion_tokens, p.cut, list(p.passages) or None) for p in predictions]
        except AdaptlabError as exc:  # e.g. one query too long for the context: answer the others one by one
            if len(payloads) == 1:
                return [exc]
            return [item for payload in payloads for item in run_batch(key, [payload])]

    async def lifespan(app):
        state["batcher"] = app.state.batcher = Batcher(run_batch, limits.max_queue, limits.max_batch, max_wait_s=limits.max_wait_s)
        state["ready"] = True
        yield
        state["ready"] = False  # /ready says 503 while the queue drains
        await asyncio.to_thread(state["batcher"].close)

    app = FastAPI(title="adaptlab", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.stats = stats

    def error(exc: ApiError):
        return Response(exc.body(), status_code=exc.status, headers={k.decode(): v.decode() for k, v in exc.headers()})

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        return error(ApiError(400, "the request body is not valid JSON of the expected shape"))

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):  # Starlette's own 404 and 405, OpenAI-shaped
        messages = {404: f"no route {request.url.path!r}; the API is under /v1", 405: f"{request.method} is not allowed on {request.url.path!r}"}
        return error(ApiError(exc.status_code, messages.get(exc.status_code, str(exc.detail)), code="not_found" if exc.status_code == 404 else None))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):
        log.exception("request failed")
        return error(ApiError(500, "internal error; the server log has the details", "server_error"))

    app.add_middleware(Guard, api_key=api_key, max_body_bytes=limits.max_body_bytes, allowed_hosts=tuple(allowed_hosts))

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/ready")
    async def ready():
        batcher = state["batcher"]
        if not (state["ready"] and batcher and batcher.alive):
            return error(ApiError(503, "not ready", "server_error", retry_after=1))
        if batcher.stalled(limits.stall_s):
            return error(ApiError(503, f"the model worker has made no progress for {limits.stall_s:g} s with requests waiting", "server_error", retry_after=5))
        return {"status": "ready", "waiting": batcher.waiting, "batches": batcher.batches, "batched_requests": batcher.batched_requests, **stats}

    @app.get("/v1/models")
    async def list_models():
        names, stale = await asyncio.to_thread(lambda: ([base_name] + models.names()[1:], models.stale()))
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "adaptlab"} | ({"stale": True, "changed": stale[n]} if n in stale else {}) for n in names]}

    def max_tokens_of(body: dict) -> int:
        value = body.get("max_tokens", body.get("max_completion_tokens"))
        if value is None:
            return min(128, limits.max_tokens)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limits.max_tokens:
            raise ApiError(400, f"max_tokens must be an integer from 1 to {limits.max_tokens}, got {json.dumps(value)[:40]}", code="invalid_max_tokens")
        return value

    async def submit(request, body: dict, prompt_of) -> tuple[str, object, Stream, int]:
        """Check the request, queue it: (model, the batcher's future, its stream, prompt tokens)."""
        model = body.get("model")
        if not isinstance(model, str) or not MODEL_NAME.match(model):
            raise ApiError(404, "model must be a served name: GET /v1/models lists them", code="model_not_found")
        if body.get("n", 1) != 1:
            raise ApiError(400, "only n=1 is supported", code="unsupported_n")
        max_tokens = max_tokens_of(body)
        name = models.base.name if model == base_name else model
        try:
            version = await asyncio.to_thread(models.find, name)  # a registry lookup; loading happens on the worker
        except ModelNotFound as exc:
            raise ApiError(404, str(exc), code="model_not_found") from None
        payload, prompt_tokens = prompt_of(version is None, max_tokens)
        batcher = state["batcher"]
        if batcher is None or not state["ready"]:
            raise ApiError(503, "shutting down", "server_error", retry_after=1)
        stream = Stream(asyncio.get_running_loop(), batcher.beat, wants_text=bool(body.get("stream")))
        try:
            future = batcher.submit((name, max_tokens if version is None else 0), (payload, stream))
        except QueueFull as exc:
            raise ApiError(429, f"the server is busy (too many requests, or too much work, waiting); retry in {exc.retry_after} s", "rate_limit_error", retry_after=exc.retry_after) from None
        return model, future, stream, prompt_tokens

    async def outcome(request, future, stream: Stream, model: str) -> tuple[str, int, bool, list | None]:
        """The answer (text, completion tokens, cut by the token limit, sources); the client going away first drops or stops the request."""
        done = asyncio.wrap_future(future)
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({done, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not done.done():
            abandon(future, stream)
            raise ClientGone
        return answer_of(done, model)

    def abandon(future, stream: Stream) -> None:
        stream.cancelled = True  # a running row stops at its next token
        if state["batcher"].drop(future):  # a queued one leaves the queue
            stats["dropped_queued"] += 1
            return
        stats["stopped_running"] += 1

        def count(_):
            stats["tokens_after_disconnect"] += stream.tokens_after_cancel

        future.add_done_callback(count)

    def answer_of(done, model: str) -> tuple[str, int, bool, list | None]:
        try:
            return done.result()
        except LoadFailed as exc:
            why = exc.public or "its files failed verification or loading"
            raise ApiError(503, f"the model {model!r} cannot be loaded now ({why}); the other models are still served", "server_error", retry_after=30) from None
        except RemoteError as exc:  # a version fitted on an endpoint: that endpoint failed
            log.error("the endpoint of %s failed: %s", model, exc)
            timeout = "no answer within" in str(exc)
            raise ApiError(504 if timeout else 502, f"the endpoint {model!r} was fitted on did not answer {'in time' if timeout else 'properly'}; the server log has the details", "server_error", retry_after=5) from None
        except AdaptlabError as exc:
            raise ApiError(400, str(exc), code="context_length_exceeded" if "context" in str(exc) else None) from None

    def finish_reason(cut: bool) -> str:
        return "length" if cut else "stop"  # OpenAI's words: the token limit ended it, or the model did

    def with_sources(response: dict, sources: list | None) -> dict:
        """A rag version's answer carries the passages it was given: an extra top-level field clients that do not know it ignore."""
        return response | {"sources": sources} if sources else response

    def usage(prompt_tokens: int, completion_tokens: int) -> dict:
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}

    def check_context(ids: list[int], max_tokens: int) -> None:
        if len(ids) + max_tokens > models.base.context_length:
            raise ApiError(400, f"the prompt is {len(ids)} tokens and max_tokens {max_tokens}: over the model's context of {models.base.context_length} tokens; shorten the prompt or lower max_tokens", code="context_length_exceeded")

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await _json(request, limits.max_json_depth)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or len(messages) > limits.max_messages:
            raise ApiError(400, f"messages must be a list of 1 to {limits.max_messages} messages")
        if not all(isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") and isinstance(m.get("content"), str) for m in messages):
            raise ApiError(400, "each message needs a role (system, user or assistant) and string content")
        if sum(len(m["content"]) for m in messages) > limits.max_prompt_chars:
            raise ApiError(400, f"the messages exceed {limits.max_prompt_chars} characters", code="context_length_exceeded")
        if not any(m["content"].strip() for m in messages):
            raise ApiError(400, "every message is empty; send some text", code="empty_prompt")

        def prompt_of(is_base: bool, max_tokens: int):
            if is_base:
                from adaptlab.engine.prompt import encode_messages

                ids = encode_messages(models.base.tokenizer, messages)
                check_context(ids, max_tokens)
                return ids, len(ids)
            users = [m["content"] for m in messages if m["role"] == "user"]
            if not users or not users[-1].strip():
                raise ApiError(400, "a task model answers the last user message; send one with text", code="empty_prompt")
            return users[-1], 0

        model, future, stream, prompt_tokens = await submit(request, body, prompt_of)
        created, rid = int(time.time()), f"chatcmpl-{uuid.uuid4().hex}"
        if not body.get("stream"):
            text, completion_tokens, cut, sources = await outcome(request, future, stream, model)
            return with_sources({"id": rid, "object": "chat.completion", "created": created, "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason(cut)}], "usage": usage(prompt_tokens, completion_tokens)}, sources)
        done = asyncio.wrap_future(future)
        done.add_done_callback(lambda _: stream.close())
        first = asyncio.ensure_future(stream.pieces.get())
        gone = asyncio.ensure_future(_disconnected(request))
        try:  # the first piece or the end decides the status: a failure before any text is still a proper error code
            await asyncio.wait({first, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not first.done():
            first.cancel()
            abandon(future, stream)
            raise ClientGone
        if first.result() is DONE:
            answer_of(done, model)  # raises the request's error, if it failed

        async def events():
            sent, piece = "", first.result()
            try:
                yield chunk(rid, created, model, {"role": "assistant", "content": ""})
                while piece is not DONE:
                    sent += piece
                    yield chunk(rid, created, model, {"content": piece})
                    piece = await stream.pieces.get()
                text, completion_tokens, cut, sources = answer_of(done, model)
                if text.startswith(sent) and text != sent:  # answers that are not generated token by token: a label
                    yield chunk(rid, created, model, {"content": text[len(sent) :]})
                yield chunk(rid, created, model, {}, finish_reason(cut), usage(prompt_tokens, completion_tokens) if (body.get("stream_options") or {}).get("include_usage") else None, sources)
                yield "data: [DONE]\n\n"
            except ApiError as exc:  # failed after the stream began: the error rides in the stream, OpenAI-style
                yield "data: " + exc.body().decode() + "\n\n"

        def closed():
            if not done.done():  # the client went away mid-stream
                abandon(future, stream)

        return EventStream(events(), closed)

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = await _json(request, limits.max_json_depth)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or len(prompt) > limits.max_prompt_chars:
            raise ApiError(400, f"prompt must be a string of at most {limits.max_prompt_chars} characters")
        if not prompt.strip():
            raise ApiError(400, "the prompt is empty; send some text", code="empty_prompt")
        if body.get("stream"):
            raise ApiError(400, "stream is supported on /v1/chat/completions; send this request without it", code="unsupported_stream")

        def prompt_of(is_base: bool, max_tokens: int):
            if is_base:
                from adaptlab.engine.prompt import encode_text

                ids = encode_text(models.base.tokenizer, prompt)
                check_context(ids, max_tokens)
                return ids, len(ids)
            return prompt, 0

        model, future, stream, prompt_tokens = await submit(request, body, prompt_of)
        text, completion_tokens, cut, sources = await outcome(request, future, stream, model)
        return with_sources({"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()), "model": model, "choices": [{"index": 0, "text": text, "finish_reason": finish_reason(cut)}], "usage": usage(prompt_tokens, completion_tokens)}, sources)

    @app.exception_handler(ClientGone)
    async def _gone(request, exc):  # nobody reads this; 499 as nginx logs it, never a 5xx
        return error(ApiError(499, "the client closed the request"))

    return app


async def _json(request, max_depth: int) -> dict:
    raw = await request.body()
    if json_depth(raw) > max_depth:
        raise ApiError(400, f"the JSON body nests deeper than {max_depth} levels")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # "\ud800": a lone surrogate escape parses, but is no text a tokenizer can take
        raise ApiError(400, "the request body holds a lone surrogate escape (like \\ud800), which is not valid Unicode text") from None
    return body


async def _disconnected(request) -> None:
    """Returns when the client has gone away (after the body, the next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
