"""Base models (the embedded default, local folders, GGUF files, Hub ids from the local cache) and the sentence
embedder."""

from adaptlab.models.base import BaseModel, load_base_model
from adaptlab.models.spec import ModelSpec

__all__ = ["BaseModel", "ModelSpec", "load_base_model"]
