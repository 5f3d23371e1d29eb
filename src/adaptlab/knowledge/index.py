"""A documents folder as a searchable index, rebuilt only for the files that changed.

Each file's chunks are kept under $ADAPTLAB_HOME/chunks by the file's sha256 and the
chunk settings (size, overlap, tokenizer), as JSON; their vectors by their texts'
sha256 (`models.embedder.encode_cached`, NumPy files). A second build reads and embeds
only new or changed files. BM25 is rebuilt from all chunks every time (5 s at 100k
chunks: bench/results/rag-cpu.json), which is simpler than patching it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from adaptlab.errors import DataError, Problem
from adaptlab.files import sha256_file, write_json
from adaptlab.knowledge.documents import Chunk, chunk_pages, document_files, read_file
from adaptlab.knowledge.retrieval import KINDS, Index, embedder_for, make_retriever


@dataclass
class KnowledgeIndex:
    chunks: list[Chunk]
    retriever: Index
    files: dict[str, str]  # document name -> sha256 of its bytes
    rebuilt: list[str] = field(
        default_factory=list
    )  # documents read and chunked by this build (the rest came from the cache)
    kind: str = "bm25"
    vectors: np.ndarray | None = None  # dense and hybrid: the chunks' embeddings

    def search(self, queries: list[str], k: int) -> list[list[tuple[Chunk, float]]]:
        return [[(self.chunks[i], score) for i, score in hits] for hits in self.retriever.search(queries, k)]

    def save(self, folder: Path) -> dict:
        """chunks.json (+ vectors.npy) in `folder`: JSON and NumPy only, no pickle. Returns what solver.json records of
        it."""
        folder = Path(folder)
        write_json(folder / "chunks.json", {"files": self.files, "chunks": [asdict(c) for c in self.chunks]})
        if self.vectors is not None:
            np.save(folder / "vectors.npy", np.asarray(self.vectors, dtype=np.float32), allow_pickle=False)
        return {
            "retriever": self.kind,
            "chunks": len(self.chunks),
            "documents": self.files,
            "chunks_sha256": sha256_file(folder / "chunks.json"),
        }


def load_index(folder: Path, kind: str, embedder=None) -> KnowledgeIndex:
    """The index a solver saved (`KnowledgeIndex.save`); BM25 is rebuilt from the chunks, vectors are read back, or,
    where vectors.npy is missing (a registered version keeps only .json and .safetensors files), embedded again
    (from the embeddings cache when it has them)."""
    from adaptlab.errors import AdaptlabError

    folder = Path(folder)
    try:
        saved = json.loads((folder / "chunks.json").read_text(encoding="utf-8"))
        chunks = [Chunk(**c) for c in saved["chunks"]]
        stored = folder / "vectors.npy"
        vectors = np.load(stored, allow_pickle=False) if kind != "bm25" and stored.is_file() else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AdaptlabError(
            f"{folder}: the saved passages (chunks.json, vectors.npy) cannot be read "
            f"({type(exc).__name__}); register the version again"
        ) from None
    texts = [c.text for c in chunks]
    embedder = embedder_for(kind, embedder)
    if kind != "bm25" and vectors is None:
        from adaptlab.models.embedder import encode_cached

        vectors = encode_cached(embedder, texts)
    return KnowledgeIndex(chunks, make_retriever(kind, texts, embedder, vectors), saved["files"], [], kind, vectors)


def build_index(
    path: str | Path,
    tokenizer,
    kind: str = "hybrid",
    embedder=None,
    size: int = 256,
    overlap: int = 32,
    updates: str | Path | None = None,
) -> KnowledgeIndex:
    """Chunks of every document under `path` and a `kind` retriever over them; every unreadable file is listed in one
    error.

    `updates`: a folder of changed documents, each replacing the file of its name under `path`. Those
    are read, chunked and embedded afresh whatever the caches hold, so the build's time is what
    absorbing the change costs; the other files come from the caches as usual."""
    from adaptlab.home import adaptlab_home

    if kind not in KINDS:
        raise ValueError(f"retriever {kind!r}: use one of {', '.join(KINDS)}")
    embedder = embedder_for(kind, embedder)
    settings = f"{size}-{overlap}-{_tokenizer_id(tokenizer)}"
    cache = adaptlab_home() / "chunks"
    cache.mkdir(parents=True, exist_ok=True)
    chunks_by_file, files, rebuilt, problems = [], {}, [], []
    listed = dict((name, f) for f, name in document_files(path))
    fresh = {name: f for f, name in document_files(updates)} if updates is not None else {}
    for name, f in sorted((listed | fresh).items()):
        digest = sha256_file(f)
        files[name] = digest
        stored = cache / f"{hashlib.sha256(f'{digest}/{name}/{settings}'.encode()).hexdigest()}.json"
        if stored.is_file() and name not in fresh:
            chunks_by_file.append((name, [Chunk(**c) for c in json.loads(stored.read_text(encoding="utf-8"))]))
            continue
        try:
            chunks = chunk_pages(read_file(f, name), tokenizer, size, overlap)
        except DataError as exc:
            problems += exc.problems
            continue
        write_json(stored, [asdict(c) for c in chunks])
        chunks_by_file.append((name, chunks))
        rebuilt.append(name)
    if problems:
        raise DataError(problems[:100], truncated=len(problems) > 100)
    chunks = [c for _, group in chunks_by_file for c in group]
    if not chunks:
        raise DataError(
            [
                Problem(
                    "no_text", str(path), None, None, "the documents hold no text to index", "add documents with text"
                )
            ]
        )
    vectors = None
    if kind != "bm25":  # each file's vectors, cached by their texts
        from adaptlab.models.embedder import encode_cached

        vectors = np.concatenate(
            [
                np.asarray(embedder.encode([c.text for c in g]), dtype=np.float32)
                if name in fresh
                else encode_cached(embedder, [c.text for c in g])
                for name, g in chunks_by_file
                if g
            ]
        )
    return KnowledgeIndex(
        chunks, make_retriever(kind, [c.text for c in chunks], embedder, vectors), files, rebuilt, kind, vectors
    )


def _tokenizer_id(tokenizer) -> str:
    """What tells tokenizers apart in the cache key: its name and vocabulary size."""
    return f"{getattr(tokenizer, 'name_or_path', type(tokenizer).__name__)}:{len(tokenizer)}".replace("/", "_")


class Documents:
    """An experiment's documents (data.docs): each retriever kind's index built on first use, with its build time.

    Strategies share it: rag retrieves from it, fine-tuning with `train_on: documents` reads its passages.
    """

    def __init__(
        self,
        path: str | Path,
        tokenizer,
        embedder=None,
        size: int = 256,
        overlap: int = 32,
        updates: str | Path | None = None,
    ):
        self.path, self.tokenizer, self.embedder, self.size, self.overlap = (
            Path(path),
            tokenizer,
            embedder,
            size,
            overlap,
        )
        self.updates = (
            Path(updates) if updates is not None else None
        )  # changed documents replacing those of the same name (`build_index`)
        self.built: dict[str, KnowledgeIndex] = {}
        self.seconds: dict[
            str, float
        ] = {}  # retriever kind -> seconds its build took (chunk cache hits make later ones quick)

    def index(self, kind: str = "bm25") -> KnowledgeIndex:
        if kind not in self.built:
            import time

            start = time.perf_counter()
            self.built[kind] = build_index(
                self.path, self.tokenizer, kind, self.embedder, self.size, self.overlap, self.updates
            )
            self.seconds[kind] = time.perf_counter() - start
        return self.built[kind]

    @property
    def chunks(self) -> list[Chunk]:
        return self._any().chunks

    @property
    def files(self) -> dict[str, str]:
        """Document name -> sha256 of its bytes."""
        return self._any().files

    def updated(self, updates: str | Path) -> Documents:
        """These documents after a change: the files in `updates` replace those of the same name."""
        return Documents(self.path, self.tokenizer, self.embedder, self.size, self.overlap, updates)

    def _any(self) -> KnowledgeIndex:
        """An index already built (all hold the same passages), else the cheapest to build."""
        return next(iter(self.built.values())) if self.built else self.index("bm25")
