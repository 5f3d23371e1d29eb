"""The OpenAI-compatible HTTP API: /v1/models, /v1/chat/completions (stream too), /v1/completions, /health, /ready.

`create_app` only wires the parts together:

    serve/guard.py      what every request passes first: Host, API key, Content-Type, body size
    serve/requests.py   reading and checking a request's body
    serve/routes.py     the routes, as plain functions of the request
    serve/worker.py     what the model's worker thread runs for a batch (serve/batcher.py)
    serve/responses.py  the OpenAI-shaped answers and the event stream
    serve/failures.py   every failure as an OpenAI-shaped answer with its true status (a bug: 500)
    serve/state.py      the Limits, and the state the routes share

Every error body is OpenAI-shaped (`{"error": {"message", "type", "code"}}`) and never
holds a stack trace or a server path.
"""

from adaptlab.serve.guard import Guard
from adaptlab.serve.models import ServedModels
from adaptlab.serve.requests import MODEL_NAME
from adaptlab.serve.state import Limits, ServerState

__all__ = ["MODEL_NAME", "Limits", "create_app"]


def create_app(
    models: ServedModels,
    base_name: str,
    api_key: str | None = None,
    limits: Limits = Limits(),
    allowed_hosts: tuple[str, ...] = (),
):
    """The FastAPI app serving `models`, the base model under `base_name`; `api_key` None serves loopback Host names
    only."""
    from fastapi import FastAPI

    from adaptlab.serve import failures, routes

    server = ServerState(models, base_name, limits)
    app = FastAPI(title="adaptlab", lifespan=server.lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server, app.state.stats = server, server.stats
    for kind, handler in failures.HANDLERS.items():
        app.add_exception_handler(kind, handler)
    app.add_middleware(Guard, api_key=api_key, max_body_bytes=limits.max_body_bytes, allowed_hosts=tuple(allowed_hosts))
    app.add_middleware(failures.Fallback)  # added last: the outermost of ours, around the Guard too
    for path, method, endpoint in routes.ROUTES:
        app.add_api_route(path, endpoint, methods=[method])
    return app
