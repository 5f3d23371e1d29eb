"""What the server answers with, in OpenAI's shapes: a chat completion, a text completion, their usage, an error, a
stream of events.

    >>> usage(Answer("hi", prompt_tokens=12, completion_tokens=2))
    {'prompt_tokens': 12, 'completion_tokens': 2, 'total_tokens': 14}

A conversation too long for a version's context is answered from its recent turns: the
oldest are left out, and the answer says how many, in its usage (an extra field, which
OpenAI's clients keep) and in the `x-history-turns-dropped` header, streamed or not.

    >>> usage(Answer("hi", 12, 2, turns_dropped=2))["history_turns_dropped"], dropped_header(2)
    (2, {'x-history-turns-dropped': '2'})
"""

from __future__ import annotations

import time
import uuid

from starlette.responses import Response, StreamingResponse

from adaptlab.serve.guard import ApiError
from adaptlab.serve.worker import Answer


def error_response(exc: ApiError) -> Response:
    """`exc` as an HTTP response: its status, its OpenAI-shaped body, its headers (Retry-After, x-request-id)."""
    return Response(exc.body(), status_code=exc.status, headers={k.decode(): v.decode() for k, v in exc.headers()})


def finish_reason(cut: bool) -> str:
    """OpenAI's words for why an answer ended: the token limit ended it ("length"), or the model did ("stop")."""
    return "length" if cut else "stop"


def usage(answer: Answer) -> dict:
    """The tokens the answer cost: sent to the model, generated, and both; and the conversation's turns left out of the
    prompt to fit the context, when there were any."""
    tokens = {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }
    return tokens | ({"history_turns_dropped": answer.turns_dropped} if answer.turns_dropped else {})


def dropped_header(turns: int) -> dict[str, str]:
    """The warning header of an answer whose prompt left out the conversation's `turns` oldest turns (none when 0)."""
    return {"x-history-turns-dropped": str(turns)} if turns else {}


def with_sources(response: dict, sources: list | None) -> dict:
    """A rag version's answer carries the passages it was given: an extra top-level field clients that do not know it
    ignore."""
    return response | {"sources": sources} if sources else response


def chat_completion(rid: str, created: int, model: str, answer: Answer) -> dict:
    """A whole (not streamed) chat answer: OpenAI's chat.completion object."""
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": answer.text},
        "finish_reason": finish_reason(answer.cut),
    }
    return with_sources(
        {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": usage(answer),
        },
        answer.sources,
    )


def text_completion(model: str, answer: Answer) -> dict:
    """A /v1/completions answer: OpenAI's text_completion object."""
    choice = {"index": 0, "text": answer.text, "finish_reason": finish_reason(answer.cut)}
    return with_sources(
        {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": usage(answer),
        },
        answer.sources,
    )


class EventStream(StreamingResponse):
    """Server-sent events that call `closed` when the response ends, finished or cut off by the client."""

    def __init__(self, events, closed, headers: dict[str, str] | None = None):
        super().__init__(
            events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"} | (headers or {})
        )
        self.closed = closed

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.closed()
            await self.body_iterator.aclose()  # type: ignore[attr-defined]  # `events` is an async generator
