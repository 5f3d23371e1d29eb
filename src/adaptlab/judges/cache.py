"""`JudgeCache`: every judge reply ever received, in SQLite under $ADAPTLAB_HOME, so nothing is asked twice.

A reply is keyed by the sha256 of what decides it: the judge model's identity, the
rubric, the prompt template, the row's input and reference, and the answers in the
order they were shown. Rewriting a report, re-running `adaptlab judge` or adding a
contender asks only what no earlier run asked. The raw reply is kept, not the parsed
verdict, so a better parser reads old replies without asking again.

    >>> cache = JudgeCache(":memory:")
    >>> key = cache_key({"name": "m"}, {"rubric": "r", "template": "t", "input": "hi", "answers": ["yes", "no"]})
    >>> cache.put({key: "Verdict: A"}, {"name": "m"})
    >>> cache.get([key, "other"]) == {key: "Verdict: A"}
    True

Several threads share one connection behind a lock; several processes share the file
(write-ahead log, a 30 s wait for a writer's lock).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

from adaptlab.home import adaptlab_home

FILE = "judge-cache.sqlite"
CHUNK = 500  # keys per SELECT ... IN (...): under SQLite's default limit of 999 parameters


def cache_key(judge: dict, question: dict) -> str:
    """sha256 of the judge's identity and the question: rubric, template, the row (instruction, input, passages,
    reference), the answers in the order shown, the reply's token limit."""
    data = {"judge": judge, "question": question}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class JudgeCache:
    """Judge replies by key; `path` defaults to $ADAPTLAB_HOME/judge-cache.sqlite (":memory:" for a throwaway one)."""

    def __init__(self, path: Path | str | None = None):
        if path is None:
            path = adaptlab_home() / FILE
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.Lock()
        self.db = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL, judge TEXT NOT NULL, "
                "at TEXT NOT NULL DEFAULT (datetime('now')))"
            )

    def get(self, keys: list[str]) -> dict[str, str]:
        """The cached reply of each key that has one."""
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(keys))
        with self.lock:
            for start in range(0, len(unique), CHUNK):
                part = unique[start : start + CHUNK]
                rows = self.db.execute(
                    f"SELECT key, reply FROM replies WHERE key IN ({','.join('?' * len(part))})", part
                ).fetchall()
                found.update(rows)
        return found

    def put(self, replies: dict[str, str], judge: dict) -> None:
        """Keep `replies` (key -> raw reply) from `judge` (its identity), in one transaction."""
        if not replies:
            return
        who = json.dumps(judge, sort_keys=True)
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(
                    "INSERT OR REPLACE INTO replies (key, reply, judge) VALUES (?, ?, ?)",
                    [(k, v, who) for k, v in replies.items()],
                )
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def __len__(self) -> int:
        with self.lock:
            return self.db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        with self.lock:
            self.db.close()
