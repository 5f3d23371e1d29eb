"""The registry's SQLite database: WAL mode, a busy timeout, and numbered migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000

# Each entry moves the schema from version i to i + 1 (PRAGMA user_version); never edit one that shipped.
MIGRATIONS = [
    """
    CREATE TABLE datasets (sha256 TEXT PRIMARY KEY, source TEXT NOT NULL, rows INTEGER NOT NULL, created TEXT NOT NULL);
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, folder TEXT, config TEXT NOT NULL, metrics TEXT,
        status TEXT NOT NULL, created TEXT NOT NULL
    );
    CREATE TABLE versions (
        task TEXT NOT NULL, version INTEGER NOT NULL, strategy TEXT NOT NULL, run_id TEXT REFERENCES runs(id),
        folder TEXT NOT NULL, files TEXT NOT NULL, lineage TEXT NOT NULL, created TEXT NOT NULL,
        PRIMARY KEY (task, version)
    );
    CREATE TABLE promotions (task TEXT PRIMARY KEY, version INTEGER NOT NULL, promoted TEXT NOT NULL,
        FOREIGN KEY (task, version) REFERENCES versions(task, version));
    """,
    # 2: a version records its contender's id beside its kind (`strategy`): few_shot_k4 and few_shot_k8 are both
    # few_shot
    """
    ALTER TABLE versions ADD COLUMN contender TEXT;
    """,
    # 3: `registry rm`/`gc` delete a version's files and mark its row, so its number is never given again
    """
    ALTER TABLE versions ADD COLUMN removed TEXT;
    """,
]


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating as needed) the registry database at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this database has not had yet, each in its own transaction; returns the schema version."""
    while True:
        conn.execute("BEGIN IMMEDIATE")  # one process migrates at a time
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current >= len(MIGRATIONS):
            conn.execute("COMMIT")
            return current
        try:
            for statement in MIGRATIONS[current].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {current + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
