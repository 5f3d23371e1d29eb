"""How a failure becomes an answer: OpenAI-shaped, with its true status, never a stack trace or a server path in a body.

    the client's mistake                    4xx saying what to send instead (ApiError, raised by the checks);
                                            a query too long for the context 400, messages the model's chat
                                            template refuses 400 (its own words), a model there is not 404
    overload                                429 with Retry-After (a full queue), 503 with Retry-After (out of
                                            memory, starting or shutting down)
    a version this server cannot serve      503 naming why: the files that failed verification, or the base
                                            model it was fitted on
    a version's endpoint failed             502, or 504 when it did not answer in time
    the client left                         499
    anything else: a bug                    500 with a request id

A 500 (and an out-of-memory 503) carries a fresh request id, in the `x-request-id` header
and the error body; the full traceback goes to the server log under that id. A 500 says
nothing else: a bug does not look like overload, and invites no retry. The `Fallback`
middleware gives that answer to an exception no handler caught.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.exceptions import RequestValidationError
from jinja2.exceptions import TemplateError
from starlette.exceptions import HTTPException

from adaptlab.errors import MessagesRefused, QueryTooLong
from adaptlab.remote.client import RemoteError
from adaptlab.serve.guard import ApiError, send_error
from adaptlab.serve.models import ModelNotFound
from adaptlab.serve.responses import error_response
from adaptlab.serve.worker import LoadFailed, Unservable, out_of_memory

log = logging.getLogger("adaptlab.serve")
LOGGED_AS = "adaptlab request id "  # the note an exception carries once its traceback is logged


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


def api_error_of(exc: Exception, model: str) -> ApiError:
    """What the client of `model` is told when its request (or its whole batch) failed with `exc`."""
    if isinstance(exc, QueryTooLong):  # this request's own query: the client shortens it
        return ApiError(400, str(exc), code="context_length_exceeded")
    refused = refused_error(exc)
    if refused is not None:  # this request's own messages: the client sends ones the template accepts
        return refused
    if isinstance(exc, ModelNotFound):
        return ApiError(404, str(exc), code="model_not_found")
    if isinstance(exc, Unservable):  # retrying will not help: no Retry-After
        return ApiError(
            503, f"the model {model!r} cannot be served ({exc}); the other models are still served", "server_error"
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
    if isinstance(exc, LoadFailed):
        rid = logged(exc, f"model {model!r}")
        return ApiError(
            500,
            f"the model {model!r} cannot be loaded: an internal error, logged under request id {rid}; "
            "the other models are still served",
            "server_error",
            request_id=rid,
        )
    return unexpected(exc, f"model {model!r}")


def refused_error(exc: BaseException) -> ApiError | None:
    """The 400 for messages the model's chat template refuses (`MessagesRefused`, or the template's own error:
    engine/lm_solver.py `refused_messages`), in the template's words; None for any other error."""
    from adaptlab.engine.lm_solver import refused_messages

    refused = exc if isinstance(exc, MessagesRefused) else refused_messages(exc)
    return None if refused is None else ApiError(400, str(refused), code="invalid_messages")


def unexpected(exc: BaseException, where: str) -> ApiError:
    """The answer to a failure no rule covers: out of memory 503 with Retry-After, anything else (a bug) 500; each with
    a new request id its traceback is logged under."""
    rid = logged(exc, where)
    if out_of_memory(exc):
        return ApiError(
            503,
            f"the server ran out of memory on this request; retry in a few seconds (request id {rid})",
            "server_error",
            retry_after=5,
            request_id=rid,
        )
    return ApiError(
        500,
        f"internal error; report request id {rid}: the server log has the details under it",
        "server_error",
        request_id=rid,
    )


def logged(exc: BaseException, where: str) -> str:
    """A new request id, with `exc`'s traceback logged under it.

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
    return rid


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


async def on_template_error(request, exc: TemplateError):
    """The base model's chat template raised while a route built its prompt: refusing the messages is the client's
    400, a template that does not compile a bug (500)."""
    return error_response(refused_error(exc) or unexpected(exc, f"{request.method} {request.url.path}"))


async def on_client_gone(request, exc: ClientGone):
    """Nobody reads this; 499 as nginx logs it, never a 5xx."""
    return error_response(ApiError(499, "the client closed the request"))


HANDLERS: dict[type[Exception], Callable[..., Any]] = {  # each handler takes its own exception type
    ApiError: on_api_error,
    RequestValidationError: on_invalid_body,
    HTTPException: on_http_error,
    ClientGone: on_client_gone,
    TemplateError: on_template_error,
}


class Fallback:
    """ASGI middleware around the app: an exception nothing else answered gets `unexpected`'s answer (a bug: 500).

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
