"""How a failure becomes an answer: OpenAI-shaped, never a 500, never a stack trace or a server path in a body.

Known failures keep their status: a version that cannot be loaded 503, its endpoint 502 or
504, a query it refuses 400, a client that left 499. Anything else (a torch RuntimeError,
out of memory, a bug) is a 503 with Retry-After and a fresh request id, sent in the
`x-request-id` header and the error body; the full traceback goes to the server log under
that id. The client can retry, and whoever runs the server can find what happened. The
`Fallback` middleware gives that answer to an exception no handler caught, so no route can
answer 500 whatever it raises.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from adaptlab.errors import AdaptlabError
from adaptlab.remote.client import RemoteError
from adaptlab.serve.guard import ApiError, send_error
from adaptlab.serve.responses import error_response
from adaptlab.serve.worker import LoadFailed

log = logging.getLogger("adaptlab.serve")
LOGGED_AS = "adaptlab request id "  # the note an exception carries once its traceback is logged


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


def api_error_of(exc: Exception, model: str) -> ApiError:
    """What the client of `model` is told when its request (or its whole batch) failed with `exc`."""
    if isinstance(exc, LoadFailed):
        why = exc.public or "its files failed verification or loading"
        return ApiError(
            503,
            f"the model {model!r} cannot be loaded now ({why}); the other models are still served",
            "server_error",
            retry_after=30,
        )
    if isinstance(exc, RemoteError):  # a version fitted on an endpoint: that endpoint failed
        log.error("the endpoint of %s failed: %s", model, exc)
        timeout = "no answer within" in str(exc)
        return ApiError(
            504 if timeout else 502,
            f"the endpoint {model!r} was fitted on did not answer "
            f"{'in time' if timeout else 'properly'}; the server log has the details",
            "server_error",
            retry_after=5,
        )
    if isinstance(exc, AdaptlabError):
        return ApiError(400, str(exc), code="context_length_exceeded" if "context" in str(exc) else None)
    return unexpected(exc, f"model {model!r}")


def unexpected(exc: BaseException, where: str) -> ApiError:
    """A 503 with a new request id for a failure no rule covers; its traceback is logged under that id.

    A batch-wide failure reaches every request of the batch as one exception: its traceback
    is logged once, under the first request's id, and each other request logs a line that
    names that id (eight tracebacks of one out-of-memory error would bury the log).
    """
    rid = f"req_{uuid.uuid4().hex}"
    first = next((note[len(LOGGED_AS) :] for note in getattr(exc, "__notes__", ()) if note.startswith(LOGGED_AS)), None)
    if first:
        log.error("request %s (%s) failed with the error whose traceback is logged under request %s", rid, where, first)
    else:
        exc.add_note(LOGGED_AS + rid)  # printed with the traceback, so the id is found in any log that shows it
        log.error("request %s (%s) failed: %s", rid, where, type(exc).__name__, exc_info=exc)
    message = (
        f"the server failed on this request ({type(exc).__name__}); retry in a few seconds, and if it "
        f"keeps failing, report request id {rid}: the server log has the details under it"
    )
    return ApiError(503, message, "server_error", retry_after=5, request_id=rid)


async def on_api_error(request, exc: ApiError):
    return error_response(exc)


async def on_invalid_body(request, exc: RequestValidationError):
    return error_response(ApiError(400, "the request body is not valid JSON of the expected shape"))


async def on_http_error(request, exc: HTTPException):
    """Starlette's own 404 and 405, OpenAI-shaped."""
    messages = {
        404: f"no route {request.url.path!r}; the API is under /v1",
        405: f"{request.method} is not allowed on {request.url.path!r}",
    }
    return error_response(
        ApiError(
            exc.status_code,
            messages.get(exc.status_code, str(exc.detail)),
            code="not_found" if exc.status_code == 404 else None,
        )
    )


async def on_client_gone(request, exc: ClientGone):
    """Nobody reads this; 499 as nginx logs it, never a 5xx."""
    return error_response(ApiError(499, "the client closed the request"))


HANDLERS: dict[type[Exception], Callable[..., Any]] = {  # each handler takes its own exception type
    ApiError: on_api_error,
    RequestValidationError: on_invalid_body,
    HTTPException: on_http_error,
    ClientGone: on_client_gone,
}


class Fallback:
    """ASGI middleware around the app: an exception nothing else answered becomes `unexpected`'s 503, never a 500.

    Once a response has started (a stream cut by a failure) its status is sent: the failure is
    logged under a request id and the response ends there.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            error = unexpected(exc, f"{scope['method']} {scope['path']}")
            if not started:
                await send_error(send, error)
