"""The memory of the user, kept in one SQLite file in the state directory.

SQLite in WAL mode: the daemon and ``companion memory show|forget`` may use the file
at the same time (the CLI works whether the daemon runs or not), each write is one
transaction, and a crash never leaves half a record. The file is created with mode
0600 (SQLite gives its -wal/-shm files the same mode) and is bounded: at most
``max_items`` facts and ``max_summaries`` conversation summaries per scope, the oldest
dropped first.

A *scope* is whose memory it is: ``"shared"`` (every persona knows the user) or a
persona name (``memory.scope: persona``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from companion.memory.extract import NAME, Learned

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    verb TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_scope ON items (scope, kind);
CREATE TABLE IF NOT EXISTS summaries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    session TEXT NOT NULL,
    text TEXT NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (scope, session)
);
"""


@dataclass(frozen=True)
class Item:
    """One remembered thing about the user."""

    id: int
    scope: str
    kind: str
    value: str
    verb: str
    created: float


@dataclass(frozen=True)
class Summary:
    id: int
    scope: str
    session: str
    text: str
    updated: float


class MemoryStore:
    """Remembered facts and conversation summaries, safe across threads and processes."""

    def __init__(
        self,
        path: Path,
        *,
        max_items: int = 200,
        max_summaries: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_items = max_items
        self.max_summaries = max_summaries
        self._clock = clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # never world-readable, not even briefly
        os.close(fd)
        if self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")  # forgotten text is overwritten, not left in free pages
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ---- facts --------------------------------------------------------------------

    def add(self, scope: str, learned: Learned) -> int:
        """Remember ``learned``; a new name replaces the old one, a repeat is not stored twice."""
        with self._write() as db:
            if learned.kind == NAME:
                db.execute("DELETE FROM items WHERE scope = ? AND kind = ?", (scope, NAME))
            else:
                db.execute(
                    "DELETE FROM items WHERE scope = ? AND kind = ? AND lower(value) = lower(?)",
                    (scope, learned.kind, learned.value),
                )
            cur = db.execute(
                "INSERT INTO items (scope, kind, value, verb, created) VALUES (?, ?, ?, ?, ?)",
                (scope, learned.kind, learned.value, learned.verb, self._clock()),
            )
            db.execute(
                "DELETE FROM items WHERE scope = ? AND id NOT IN "
                "(SELECT id FROM items WHERE scope = ? ORDER BY id DESC LIMIT ?)",
                (scope, scope, self.max_items),
            )
            return int(cur.lastrowid or 0)

    def items(self, scope: str | None = None) -> list[Item]:
        """Remembered facts, oldest first (every scope if ``scope`` is None)."""
        sql = "SELECT id, scope, kind, value, verb, created FROM items"
        args: tuple[str, ...] = ()
        if scope is not None:
            sql, args = sql + " WHERE scope = ?", (scope,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [Item(*row) for row in rows]

    def delete(self, item_id: int) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM items WHERE id = ?", (item_id,)).rowcount > 0

    def forget(self, scope: str | None = None) -> int:
        """Forget everything about the user (in ``scope``, or everywhere); returns rows removed."""
        where, args = ("WHERE scope = ?", (scope,)) if scope is not None else ("", ())
        with self._write() as db:
            n = db.execute(f"DELETE FROM items {where}", args).rowcount
            n += db.execute(f"DELETE FROM summaries {where}", args).rowcount
        with self._lock:  # secure_delete zeroed the pages; also empty the WAL of old copies
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return n

    # ---- conversation summaries ----------------------------------------------------

    def save_summary(self, scope: str, session: str, text: str) -> None:
        """Set (or replace) this session's summary."""
        with self._write() as db:
            db.execute(
                "INSERT INTO summaries (scope, session, text, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope, session) DO UPDATE SET text = excluded.text, updated = excluded.updated",
                (scope, session, text, self._clock()),
            )
            db.execute(
                "DELETE FROM summaries WHERE scope = ? AND id NOT IN "
                "(SELECT id FROM summaries WHERE scope = ? ORDER BY updated DESC LIMIT ?)",
                (scope, scope, self.max_summaries),
            )

    def summaries(self, scope: str | None = None, *, limit: int = 100, exclude: str = "") -> list[Summary]:
        """Most recent first."""
        sql = "SELECT id, scope, session, text, updated FROM summaries WHERE session != ?"
        args: tuple[object, ...] = (exclude,)
        if scope is not None:
            sql, args = sql + " AND scope = ?", (*args, scope)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY updated DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
        return [Summary(*row) for row in rows]
