"""`Registry`: datasets, runs, solver versions `task@vN` with their files, and the promoted version of each task.

Under `$ADAPTLAB_HOME/registry/`: `registry.db` (SQLite) and `artifacts/<task>/<id>/`.
A version's files (safetensors and JSON only) are written to `artifacts/.tmp-<id>/`,
each fsynced and hashed (sha256), the folder renamed into place and fsynced, and
only then is the row committed. So a kill at any point leaves either no row (and at
worst an unreferenced folder, which `check` reports and ignores) or a row whose files
are all there; every load verifies the hashes first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from adaptlab.errors import AdaptlabError, ConfigError
from adaptlab.files import fsync, sha256_file
from adaptlab.registry.db import connect

ALLOWED_SUFFIXES = (
    ".safetensors",
    ".json",
    ".jinja",
)  # weights, configs, a tokenizer's chat template: never code or pickle
REF = re.compile(r"^(?P<task>[a-z0-9][a-z0-9._-]{0,63})(?:@v(?P<version>[1-9][0-9]{0,8}))?$")


class RegistryError(AdaptlabError):
    """A registry entry is missing, corrupt, or asked for in a form it cannot have."""


class FilesUnverified(RegistryError):
    """A version's files are missing or do not match their sha256; `files` names them (file names, never paths)."""

    def __init__(self, message: str, files: list[str]):
        super().__init__(message)
        self.files = files


@dataclass(frozen=True)
class Version:
    task: str
    version: int
    strategy: str  # the kind (adaptlab.kinds) that loads it
    run_id: str | None
    folder: Path
    files: dict[str, str]  # file name -> sha256
    lineage: dict
    created: str
    promoted: bool = False
    contender: str | None = None  # the contender's id in its experiment (None: named after its kind)

    @property
    def ref(self) -> str:
        return f"{self.task}@v{self.version}"

    def to_dict(self) -> dict:
        return {
            "ref": self.ref,
            "strategy": self.strategy,
            "contender": self.contender or self.strategy,
            "run_id": self.run_id,
            "folder": str(self.folder),
            "files": self.files,
            "lineage": self.lineage,
            "created": self.created,
            "promoted": self.promoted,
        }


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'task' or 'task@vN', validated before anything touches the disk."""
    match = REF.match(ref or "")
    if not match:
        raise ConfigError(
            f"{ref!r} is not a task name or task@vN (lower-case letters, digits, '.', '_', '-'; versions from v1)"
        )
    return match["task"], int(match["version"]) if match["version"] else None


class Registry:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.artifacts = self.root / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.db = connect(self.root / "registry.db")

    def close(self) -> None:
        self.db.close()

    # --- writing ---

    def add_dataset(self, sha256: str, source: str, rows: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO datasets VALUES (?, ?, ?, ?)", (sha256, source, rows, _now()))

    def add_run(
        self, run_id: str, kind: str, folder: str | None, config: dict, metrics: dict | None, status: str
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, kind, folder, json.dumps(config), json.dumps(metrics), status, _now()),
        )

    def add_version(
        self,
        task: str,
        strategy: str,
        source: Path,
        lineage: dict,
        run_id: str | None = None,
        extra: dict[str, dict] | None = None,
        contender: str | None = None,
    ) -> Version:
        """Copy the weight, JSON and tokenizer files of `source` (plus `extra` JSON files) in as the task's next version
        of kind `strategy`."""
        parse_ref(task)
        files = (
            sorted(p for p in Path(source).iterdir() if p.is_file() and p.suffix in ALLOWED_SUFFIXES) if source else []
        )
        if not files and not extra:
            raise RegistryError(f"{source}: no .safetensors or .json files to register")
        key = uuid.uuid4().hex
        tmp = self.artifacts / f".tmp-{key}"
        tmp.mkdir()
        hashes = {}
        for path in files:
            shutil.copyfile(path, tmp / path.name)
            hashes[path.name] = _fsync_and_hash(tmp / path.name)
        for name, content in (extra or {}).items():
            if not name.endswith(".json"):
                raise RegistryError(f"extra artifact {name!r}: only JSON files can be written")
            (tmp / name).write_text(json.dumps(content, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            hashes[name] = _fsync_and_hash(tmp / name)
        fsync(tmp)
        final = self.artifacts / task / key
        final.parent.mkdir(exist_ok=True)
        os.replace(tmp, final)
        fsync(final.parent)
        return self._insert_version(task, strategy, run_id, final, hashes, lineage, contender)

    def _insert_version(
        self, task, strategy, run_id, folder: Path, hashes: dict, lineage: dict, contender: str | None
    ) -> Version:
        created = _now()
        self.db.execute(
            "BEGIN IMMEDIATE"
        )  # versions are numbered under the write lock: concurrent writers never collide
        try:
            version = self._next_version(task)
            self.db.execute(
                "INSERT INTO versions (task, version, strategy, run_id, folder, files, lineage, "
                "created, contender) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    task,
                    version,
                    strategy,
                    run_id,
                    str(folder.relative_to(self.root)),
                    json.dumps(hashes),
                    json.dumps(lineage, ensure_ascii=False),
                    created,
                    contender,
                ),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return Version(task, version, strategy, run_id, folder, hashes, lineage, created, contender=contender)

    def _next_version(self, task: str) -> int:
        return self.db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE task = ?", (task,)).fetchone()[
            0
        ]

    def promote(self, ref: str) -> Version:
        version = self.get(ref, verify=True)
        self.db.execute(
            "INSERT INTO promotions VALUES (?, ?, ?) ON CONFLICT(task) DO UPDATE SET version = "
            "excluded.version, promoted = excluded.promoted",
            (version.task, version.version, _now()),
        )
        return self.get(version.ref)

    def remove(self, ref: str) -> Version:
        """Delete version `task@vN`'s files; its row stays, marked removed, so the number is never given again. The
        promoted version is refused."""
        task, number = parse_ref(ref)
        if number is None:
            raise RegistryError(
                f"{ref!r} names a task, not a version: give task@vN (`adaptlab registry list {task}` shows them)"
            )
        self.db.execute("BEGIN IMMEDIATE")  # the promoted check and the mark together: a promote cannot slip in between
        try:
            version = self.get(ref)
            if version.promoted:
                raise RegistryError(
                    f"{version.ref} is the promoted version of {task!r} (what `adaptlab serve` "
                    f"answers for it): promote another first (`adaptlab registry promote {task}@vN`)"
                )
            self.db.execute("UPDATE versions SET removed = ? WHERE task = ? AND version = ?", (_now(), task, number))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        shutil.rmtree(
            version.folder, ignore_errors=True
        )  # after the row: a crash between them leaves files `gc` deletes, never a row without files
        return version

    def unused(self) -> list[Version]:
        """Versions no alias and no run refers to: not promoted, and the run that registered them has no folder on disk
        any more (or recorded none). A run folder recorded as a relative path is taken as still there (it cannot be
        checked)."""

        def run_is_there(v: Version) -> bool:
            folder = self.run_folder(v.run_id) if v.run_id else None
            return folder is not None and (not folder.is_absolute() or folder.is_dir())

        return [v for v in self.versions() if not v.promoted and not run_is_there(v)]

    def leftovers(self, older_than_s: float = 0) -> list[Path]:
        """Artifact folders no version row points at: writes interrupted before their commit, removals interrupted after
        theirs; with `older_than_s`, only those untouched that long (a write in progress is young)."""
        referenced = {v.folder.resolve() for v in self.versions()}
        found = []
        for task_dir in (p for p in self.artifacts.iterdir() if p.is_dir()):
            found += (
                [task_dir]
                if task_dir.name.startswith(".tmp-")
                else [f for f in task_dir.iterdir() if f.is_dir() and f.resolve() not in referenced]
            )
        now = time.time()
        return sorted(f for f in found if now - f.stat().st_mtime >= older_than_s)

    # --- reading ---

    def versions(self, task: str | None = None) -> list[Version]:
        """The task's (or every task's) versions, removed ones left out, oldest first."""
        query = (
            "SELECT v.*, p.version AS promoted_version FROM versions v LEFT JOIN promotions p ON p.task "
            "= v.task WHERE v.removed IS NULL"
        )
        rows = self.db.execute(
            query + (" AND v.task = ?" if task else "") + " ORDER BY v.task, v.version", (task,) if task else ()
        ).fetchall()
        return [self._version(row) for row in rows]

    def get(self, ref: str, verify: bool = False) -> Version:
        """The version `task@vN`, or the task's promoted version for a bare task name."""
        task, number = parse_ref(ref)
        if number is None:
            row = self.db.execute("SELECT version FROM promotions WHERE task = ?", (task,)).fetchone()
            if row is None:
                known = self.db.execute(
                    "SELECT COUNT(*) FROM versions WHERE task = ? AND removed IS NULL", (task,)
                ).fetchone()[0]
                raise RegistryError(
                    f"task {task!r} has no promoted version"
                    + (
                        f"; promote one of its {known} versions with `adaptlab registry promote {task}@vN`"
                        if known
                        else "; it has no versions (compare registers what it fits)"
                    )
                )
            number = row[0]
        row = self.db.execute(
            "SELECT v.*, p.version AS promoted_version FROM versions v LEFT JOIN promotions p ON "
            "p.task = v.task WHERE v.task = ? AND v.version = ?",
            (task, number),
        ).fetchone()
        if row is None:
            raise RegistryError(f"no version {task}@v{number}; `adaptlab registry list` shows what there is")
        if row["removed"]:
            raise RegistryError(
                f"{task}@v{number} was removed ({row['removed']}, by `adaptlab registry rm` or "
                "`gc`): its files are gone; `adaptlab registry list` shows what there is"
            )
        version = self._version(row)
        if verify:
            problems = self._problems(version)
            if problems:
                raise FilesUnverified(
                    f"{version.ref} cannot be used: {'; '.join(problems.values())}; run `adaptlab registry check`",
                    list(problems),
                )
        return version

    def run_folder(self, run_id: str) -> Path | None:
        """The folder run `run_id` wrote, as recorded (None: no such run, or one without a folder)."""
        row = self.db.execute("SELECT folder FROM runs WHERE id = ?", (run_id,)).fetchone()
        return Path(row[0]) if row and row[0] else None

    def check(self) -> tuple[list[str], list[str]]:
        """(problems, notes): rows whose files are missing or corrupt; artifact folders no row points at."""
        problems = [f"{version.ref}: {p}" for version in self.versions() for p in self._problems(version).values()]
        notes = [
            f"{folder}: files of an interrupted write or removal (no version points at them); "
            "`adaptlab registry gc` deletes them"
            for folder in self.leftovers()
        ]
        return problems, notes

    def stale(self) -> dict[str, list[str]]:
        """Versions whose documents changed since they were indexed or fitted on them: ref -> the changed files."""
        return {v.ref: changed for v in self.versions() if (changed := changed_documents(v))}

    def _problems(self, version: Version) -> dict[str, str]:
        """The version's files that fail verification: file name -> what is wrong with it."""
        out = {}
        for name, expected in version.files.items():
            path = version.folder / name
            if not path.is_file():
                out[name] = f"{name} is missing from {version.folder}"
            elif sha256_file(path) != expected:
                out[name] = f"{name} does not match its sha256 (corrupted or changed)"
        return out

    def _version(self, row: sqlite3.Row) -> Version:
        return Version(
            row["task"],
            row["version"],
            row["strategy"],
            row["run_id"],
            self.root / row["folder"],
            json.loads(row["files"]),
            json.loads(row["lineage"]),
            row["created"],
            row["promoted_version"] == row["version"],
            row["contender"],
        )


_HASHES: dict[tuple, str] = {}  # (path, size, mtime) -> sha256: the server asks on every GET /v1/models


def changed_documents(version: Version) -> list[str]:
    """The documents (files under the folder the version recorded) changed, added or removed since it was
    indexed or fitted on them, sorted; empty when nothing changed or the version read no documents."""
    recorded = version.lineage.get("documents")
    if not recorded:
        return []
    root = Path(recorded["path"])
    if root.is_file():
        files = [(root, root.name)]
    else:
        files = (
            [(f, f.relative_to(root).as_posix()) for f in root.rglob("*") if f.is_file() and not f.name.startswith(".")]
            if root.is_dir()
            else []
        )
    now = {}
    for f, name in files:
        stat = f.stat()
        key = (str(f), stat.st_size, stat.st_mtime_ns)
        if key not in _HASHES:
            _HASHES[key] = sha256_file(f)
        now[name] = _HASHES[key]
    before = recorded["files"]
    return sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))


def default_registry() -> Registry:
    from adaptlab.home import adaptlab_home

    return Registry(adaptlab_home() / "registry")


def _fsync_and_hash(path: Path) -> str:
    fsync(path)
    return sha256_file(path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
