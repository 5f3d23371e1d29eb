"""The OpenAI-compatible HTTP API: /v1/models, /v1/chat/completions (stream too), /v1/completions, /health, /ready.

(No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at runtime.)

Every error body is OpenAI-shaped (`{"error": {"message", "type", "code"}}`) and never
holds a stack trace or a server path. With an API key set, every route but /health
and /ready needs `Authorization: Bearer KEY`.
"""


import asyncio
import hmac
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass

from adaptlab.errors import AdaptlabError
from adaptlab.serve.batcher import Batcher, QueueFull
from adaptlab.serve.models import ModelNotFound, ServedModels

log = logging.getLogger("adaptlab.serve")
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_messages: int = 64
    max_tokens: int = 512
    max_prompt_chars: int = 32_000
    max_queue: int = 64
    max_batch: int = 8


class LoadFailed(Exception):
    """A version's files failed verification or loading (the server answers 503 for it and serves the rest)."""


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.retry_after = status, message, kind, code, retry_after


def create_app(models: ServedModels, base_name: str, api_key: str | None = None, limits: Limits = Limits()):
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse

    state = {"ready": False, "batcher": None}

    def run_batch(key: tuple, payloads: list) -> list:
        """Answers in order; an item may be an exception that belongs to that request alone."""
        model, max_tokens = key
        try:
            solver = models.solver(model)
        except AdaptlabError as exc:
            raise LoadFailed(str(exc)) from None
        if solver is None:  # the base model itself: batched greedy generation
            from adaptlab.engine.generate import generate
            from adaptlab.engine.lm_solver import _adapter

            with _adapter(models.base, None):
                return generate(models.base.model, models.base.tokenizer, payloads, models.base.eot_id, models.base.device, max_tokens, batch_size=len(payloads))
        try:
            return [(p.output, p.completion_tokens) for p in solver.predict(payloads)]
        except AdaptlabError as exc:  # e.g. one query too long for the context: answer the others one by one
            if len(payloads) == 1:
                return [exc]
            return [item for payload in payloads for item in run_batch(key, [payload])]

    async def lifespan(app):
        state["batcher"] = app.state.batcher = Batcher(run_batch, limits.max_queue, limits.max_batch)
        state["ready"] = True
        yield
        state["ready"] = False  # /ready says 503 while the queue drains
        await asyncio.to_thread(state["batcher"].close)

    app = FastAPI(title="adaptlab", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def error(exc: ApiError):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse({"error": {"message": exc.message, "type": exc.kind, "param": None, "code": exc.code}}, status_code=exc.status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        return error(ApiError(400, "the request body is not valid JSON of the expected shape"))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):
        log.exception("request failed")
        return error(ApiError(500, "internal error; the server log has the details", "server_error"))

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if request.url.path not in ("/health", "/ready") and api_key:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return error(ApiError(401, "missing or wrong API key (Authorization: Bearer ...)", "authentication_error", "invalid_api_key"))
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limits.max_body_bytes):
            return error(ApiError(413, f"request body over {limits.max_body_bytes} bytes"))
        return await call_next(request)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/ready")
    async def ready():
        batcher = state["batcher"]
        if not (state["ready"] and batcher and batcher.alive):
            return error(ApiError(503, "not ready", "server_error", retry_after=1))
        return {"status": "ready"}

    @app.get("/v1/models")
    async def list_models():
        names = await asyncio.to_thread(lambda: [base_name] + models.names()[1:])
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "adaptlab"} for n in names]}

    async def answer(body: dict, prompt_of) -> tuple[str, str, int, int]:
        """(model, text, prompt tokens, completion tokens) for one request, through the batcher."""
        model = body.get("model")
        if not isinstance(model, str) or not MODEL_NAME.match(model):
            raise ApiError(404, "model must be a served name: GET /v1/models lists them", code="model_not_found")
        if body.get("n", 1) != 1:
            raise ApiError(400, "only n=1 is supported", code="unsupported_n")
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or min(128, limits.max_tokens)
        if not isinstance(max_tokens, int) or not 0 < max_tokens <= limits.max_tokens:
            raise ApiError(400, f"max_tokens must be an integer from 1 to {limits.max_tokens}")
        name = models.base.name if model == base_name else model
        try:
            version = await asyncio.to_thread(models.find, name)  # a registry lookup; loading happens on the worker
        except ModelNotFound as exc:
            raise ApiError(404, str(exc), code="model_not_found") from None
        payload, prompt_tokens = prompt_of(version is None)
        if state["batcher"] is None or not state["ready"]:
            raise ApiError(503, "shutting down", "server_error", retry_after=1)
        try:
            future = state["batcher"].submit((name, max_tokens if version is None else 0), payload)
        except QueueFull:
            raise ApiError(429, "too many requests are waiting; retry shortly", "rate_limit_error", retry_after=1) from None
        try:
            text, completion_tokens = await asyncio.wrap_future(future)
        except LoadFailed as exc:
            log.error("loading %s failed: %s", model, exc)
            raise ApiError(503, f"the model {model!r} cannot be loaded now (its files failed verification or loading); the other models are still served", "server_error", retry_after=30) from None
        except AdaptlabError as exc:
            raise ApiError(400, str(exc), code="context_length_exceeded" if "context" in str(exc) else None) from None
        return model, text, prompt_tokens, completion_tokens

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await _json(request)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or len(messages) > limits.max_messages:
            raise ApiError(400, f"messages must be a list of 1 to {limits.max_messages} messages")
        if not all(isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") and isinstance(m.get("content"), str) for m in messages):
            raise ApiError(400, "each message needs a role (system, user or assistant) and string content")
        if sum(len(m["content"]) for m in messages) > limits.max_prompt_chars:
            raise ApiError(400, f"the messages exceed {limits.max_prompt_chars} characters", code="context_length_exceeded")

        def prompt_of(is_base: bool):
            if is_base:
                from adaptlab.engine.prompt import encode_messages

                ids = encode_messages(models.base.tokenizer, messages)
                if len(ids) + 1 > models.base.context_length:
                    raise ApiError(400, f"the prompt is {len(ids)} tokens, over the model's context of {models.base.context_length}", code="context_length_exceeded")
                return ids, len(ids)
            users = [m["content"] for m in messages if m["role"] == "user"]
            if not users:
                raise ApiError(400, "a task model answers the last user message; send one")
            return users[-1], 0

        model, text, prompt_tokens, completion_tokens = await answer(body, prompt_of)
        created, rid = int(time.time()), f"chatcmpl-{uuid.uuid4().hex}"
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
        if body.get("stream"):
            return StreamingResponse(_chunks(rid, created, model, text), media_type="text/event-stream")
        return {"id": rid, "object": "chat.completion", "created": created, "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}], "usage": usage}

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = await _json(request)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or len(prompt) > limits.max_prompt_chars:
            raise ApiError(400, f"prompt must be a string of at most {limits.max_prompt_chars} characters")

        def prompt_of(is_base: bool):
            if is_base:
                from adaptlab.engine.prompt import encode_text

                ids = encode_text(models.base.tokenizer, prompt)
                return ids, len(ids)
            return prompt, 0

        model, text, prompt_tokens, completion_tokens = await answer(body, prompt_of)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()), "model": model, "choices": [{"index": 0, "text": text, "finish_reason": "stop"}], "usage": usage}

    return app


async def _json(request) -> dict:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _chunks(rid: str, created: int, model: str, text: str):
    """Server-sent events in the OpenAI chunk shape: the role, the text in word-sized pieces, the stop, [DONE]."""

    def event(delta: dict, finish=None) -> str:
        return "data: " + json.dumps({"id": rid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in re.findall(r"\S+\s*|\s+", text):
        yield event({"content": piece})
    yield event({}, "stop")
    yield "data: [DONE]\n\n"
