"""What the server answers with, in OpenAI's shapes: a chat completion, a text completion, their usage, an error, a stream of events.

    >>> usage(Answer("hi", prompt_tokens=12, completion_tokens=2))
    {'prompt_tokens': 12, 'completion_tokens': 2, 'total_tokens': 14}
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
    """The tokens the answer cost: sent to the model, generated, and both."""
    return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens, "total_tokens": answer.prompt_tokens + answer.completion_tokens}


def with_sources(response: dict, sources: list | None) -> dict:
    """A rag version's answer carries the passages it was given: an extra top-level field clients that do not know it ignore."""
    return response | {"sources": sources} if sources else response


def chat_completion(rid: str, created: int, model: str, answer: Answer) -> dict:
    """A whole (not streamed) chat answer: OpenAI's chat.completion object."""
    choice = {"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": finish_reason(answer.cut)}
    return with_sources({"id": rid, "object": "chat.completion", "created": created, "model": model, "choices": [choice], "usage": usage(answer)}, answer.sources)


def text_completion(model: str, answer: Answer) -> dict:
    """A /v1/completions answer: OpenAI's text_completion object."""
    choice = {"index": 0, "text": answer.text, "finish_reason": finish_reason(answer.cut)}
    return with_sources({"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()), "model": model, "choices": [choice], "usage": usage(answer)}, answer.sources)


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
