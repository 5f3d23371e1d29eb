"""Durable file writes: fsync, sha256, and files or folders that are complete or absent, never half-written."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from adaptlab.errors import AdaptlabError


def fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(*paths: Path) -> str:
    """sha256 of the files' bytes, in the order given, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temp file beside `path`, fsync it, and rename it over `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    fsync(tmp)
    os.replace(tmp, path)


def write_json(path: Path, data) -> None:
    """`data` as indented UTF-8 JSON, written atomically (complete or absent, never half)."""
    import json

    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_text_new(path: Path, text: str) -> None:
    """Create `path` holding `text`; FileExistsError if it exists, so of two processes only one can create it."""
    with Path(path).open("x", encoding="utf-8") as f:
        f.write(text)


def new_folder(parent: Path, stem: str) -> Path:
    """Create and return `parent/<UTC time>-<stem>-<6 hex digits>`: unique even for two runs started in the same
    second."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    while True:  # 16M suffixes per second and stem; mkdir, not exists(), decides who gets a name
        folder = parent / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{stem}-{secrets.token_hex(3)}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


@contextmanager
def atomic_folder(target: Path):
    """Yield a new temp folder beside `target`; on success it is renamed to `target`, on failure removed.

    Only that temp folder is ever deleted: a `target` that exists (before the work
    or by the time of the rename) is refused and left as it is.
    """
    target = Path(target)
    if target.exists():
        raise AdaptlabError(f"{target} already exists; remove it or choose another folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent)
    )  # its own name: never another writer's
    try:
        yield tmp
        for path in tmp.rglob("*"):
            if path.is_file():
                fsync(path)
        if target.exists():
            raise AdaptlabError(
                f"{target} appeared while it was being written (another process?); it was left as it "
                "is, remove it and try again"
            )
        os.rename(tmp, target)  # a non-empty folder at `target` makes this fail, never replaced
        fsync(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
