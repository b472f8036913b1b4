"""The server's SQLite file (WAL mode): its tables, one connection per thread, transactions.

Both the server and its worker subprocesses open the same database; WAL lets readers go on
while one writer writes, and ``busy_timeout`` makes writers queue instead of failing. The
queries are in :mod:`synth_lab.server.store` (files, jobs, tenants) and
:mod:`synth_lab.server.joblog` (events, metrics, timeline).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, filename TEXT NOT NULL, purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL, status TEXT NOT NULL, records INTEGER, problems TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL, model TEXT NOT NULL,
    payload TEXT NOT NULL, spec TEXT NOT NULL, gpus INTEGER NOT NULL DEFAULT 0,
    started INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT, result TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    started_at REAL, finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, started);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, level TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metrics (
    job_id TEXT NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL, value REAL NOT NULL,
    epoch REAL, phase TEXT, created_at REAL NOT NULL,
    PRIMARY KEY (job_id, step, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timeline (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, phase TEXT NOT NULL,
    metadata TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_job ON timeline (job_id, id);
CREATE TABLE IF NOT EXISTS idempotency (
    owner TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, ref_id TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (owner, kind, key)
);
"""


def to_json(value: Any) -> str:
    """``value`` as the JSON text a column holds."""
    return orjson.dumps(value).decode()


class Database:
    """Access to the database file; one connection per thread, opened lazily.

    Args:
        path: The database file (created with its folder if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Readable by the server's user only; SQLite gives its -wal/-shm files the same mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        self._local = threading.local()
        conn = self._conn()
        conn.executescript(_SCHEMA)
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(idempotency)")}
        if "body_hash" not in columns:  # databases from before request hashes were kept
            conn.execute("ALTER TABLE idempotency ADD COLUMN body_hash TEXT")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on exit, rolled back on error."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, args).fetchall()
