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
from adaptlab.knowledge.retrieval import KINDS, Index, make_retriever


@dataclass
class KnowledgeIndex:
    chunks: list[Chunk]
    retriever: Index
    files: dict[str, str]  # document name -> sha256 of its bytes
    rebuilt: list[str] = field(default_factory=list)  # documents read and chunked by this build (the rest came from the cache)

    def search(self, queries: list[str], k: int) -> list[list[tuple[Chunk, float]]]:
        return [[(self.chunks[i], score) for i, score in hits] for hits in self.retriever.search(queries, k)]


def build_index(path: str | Path, tokenizer, kind: str = "hybrid", embedder=None, size: int = 256, overlap: int = 32) -> KnowledgeIndex:
    """Chunks of every document under `path` and a `kind` retriever over them; every unreadable file is listed in one error."""
    from adaptlab.home import adaptlab_home

    if kind not in KINDS:
        raise ValueError(f"retriever {kind!r}: use one of {', '.join(KINDS)}")
    settings = f"{size}-{overlap}-{_tokenizer_id(tokenizer)}"
    cache = adaptlab_home() / "chunks"
    cache.mkdir(parents=True, exist_ok=True)
    chunks_by_file, files, rebuilt, problems = [], {}, [], []
    for f, name in document_files(path):
        digest = sha256_file(f)
        files[name] = digest
        stored = cache / f"{hashlib.sha256(f'{digest}/{name}/{settings}'.encode()).hexdigest()}.json"
        if stored.is_file():
            chunks_by_file.append([Chunk(**c) for c in json.loads(stored.read_text(encoding="utf-8"))])
            continue
        try:
            chunks = chunk_pages(read_file(f, name), tokenizer, size, overlap)
        except DataError as exc:
            problems += exc.problems
            continue
        write_json(stored, [asdict(c) for c in chunks])
        chunks_by_file.append(chunks)
        rebuilt.append(name)
    if problems:
        raise DataError(problems[:100], truncated=len(problems) > 100)
    chunks = [c for group in chunks_by_file for c in group]
    if not chunks:
        raise DataError([Problem("no_text", str(path), None, None, "the documents hold no text to index", "add documents with text")])
    vectors = None
    if kind != "bm25":  # each file's vectors, cached by their texts
        from adaptlab.models.embedder import encode_cached

        vectors = np.concatenate([encode_cached(embedder, [c.text for c in group]) for group in chunks_by_file if group])
    return KnowledgeIndex(chunks, make_retriever(kind, [c.text for c in chunks], embedder, vectors), files, rebuilt)


def _tokenizer_id(tokenizer) -> str:
    """What tells tokenizers apart in the cache key: its name and vocabulary size."""
    return f"{getattr(tokenizer, 'name_or_path', type(tokenizer).__name__)}:{len(tokenizer)}".replace("/", "_")
