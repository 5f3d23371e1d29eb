"""`adaptlab serve`: the registry's tasks and the base model behind an OpenAI-compatible API."""

from __future__ import annotations

import ipaddress
import os

import typer

from adaptlab.cli import app, err
from adaptlab.models.embedded import EMBEDDED_NAME


@app.command()
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; anything but loopback needs ADAPTLAB_API_KEY."
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    model: str = typer.Option(
        EMBEDDED_NAME, "--model", help="The one base model in memory: the embedded default, a local folder or a .gguf."
    ),
    max_queue: int = typer.Option(
        64, "--max-queue", min=1, help="Requests waiting beyond this get 429 with Retry-After."
    ),
    max_models: int = typer.Option(
        1,
        "--max-models",
        min=1,
        help="Full fine-tuned versions (each a whole model) held in memory beside the base model; the "
        "least recently used is dropped beyond it.",
    ),
    allow_host: list[str] = typer.Option(
        [],
        "--allow-host",
        help="Without an API key only Host headers naming loopback are served (DNS rebinding); add a host "
        "name here to accept it too. Repeatable.",
    ),
) -> None:
    """Serve every registered task (by name: its promoted version; or task@vN) and the base model itself.

    The API key, if any, comes from the ADAPTLAB_API_KEY environment variable. SIGTERM or
    Ctrl-C stops taking requests and finishes the queued ones (up to 30 s).
    """
    import uvicorn

    from adaptlab.errors import ConfigError
    from adaptlab.models import load_base_model
    from adaptlab.registry import default_registry
    from adaptlab.serve import Limits, ServedModels, create_app, served_name

    key = os.environ.get("ADAPTLAB_API_KEY") or None
    if not is_loopback(host) and not key:
        raise ConfigError(
            f"binding {host} exposes the server beyond this machine; set ADAPTLAB_API_KEY first (or bind 127.0.0.1)"
        )
    with err.status(f"loading base model {model}"):
        base = load_base_model(model)
    name = served_name(base.name)
    api = create_app(
        ServedModels(base, default_registry(), max_models=max_models),
        name,
        key,
        Limits(max_queue=max_queue),
        allowed_hosts=tuple(allow_host),
    )
    err.print(
        f"serving base model [bold]{name}[/] and the registry's tasks on http://{host}:{port}/v1"
        + (" (API key required)" if key else "")
    )
    uvicorn.run(api, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
