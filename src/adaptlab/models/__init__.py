"""Base models (the embedded default, local folders, GGUF files) and the sentence embedder."""

from adaptlab.models.base import BaseModel, load_base_model

__all__ = ["BaseModel", "load_base_model"]
