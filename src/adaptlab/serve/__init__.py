"""`adaptlab serve`: every registered task behind an OpenAI-compatible API, on one base model."""

from adaptlab.serve.app import Limits, create_app
from adaptlab.serve.models import ServedModels

__all__ = ["Limits", "ServedModels", "create_app", "served_name"]


def served_name(base_name: str) -> str:
    """The base model's name as clients send it: its own name, or its folder's name made into a valid model id."""
    import re
    from pathlib import Path

    from adaptlab.serve.requests import MODEL_NAME

    if MODEL_NAME.match(base_name):
        return base_name
    return re.sub(r"[^a-z0-9._-]+", "-", Path(base_name).name.lower()).strip("-._")[:64] or "base"
