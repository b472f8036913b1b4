"""The server's state in one SQLite file (WAL mode): files, jobs, events, metrics, idempotency.

Both the server and its worker subprocesses open the same database; WAL lets readers go on
while one writer writes, and ``busy_timeout`` makes writers queue instead of failing. Event
``seq`` numbers are allocated inside the inserting transaction, so they are gapless and
monotonic per job whoever writes. Metric points are unique per ``(job, step, name)``: a resumed
run that logs a step again replaces the point instead of duplicating it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from synth_lab.server.shapes import event_doc, file_doc, job_doc, point_doc, timeline_doc
from synth_lab.status import Status

TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)  # the ends a job has here

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


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class Store:
    """Access to the database; one connection per thread, opened lazily.

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

    # -- idempotency ----------------------------------------------------------------------------

    def idempotent_ref(self, owner: str, kind: str, key: str) -> str | None:
        """The id recorded for ``(owner, kind, key)``, if any."""
        rows = self.read(
            "SELECT ref_id FROM idempotency WHERE owner=? AND kind=? AND key=?", (owner, kind, key)
        )
        return rows[0]["ref_id"] if rows else None

    def idempotent_hash(self, owner: str, kind: str, key: str) -> str | None:
        """The request hash recorded with ``(owner, kind, key)`` (``None``: none kept)."""
        rows = self.read(
            "SELECT body_hash FROM idempotency WHERE owner=? AND kind=? AND key=?",
            (owner, kind, key),
        )
        return rows[0]["body_hash"] if rows else None

    # -- tenants --------------------------------------------------------------------------------

    def usage(self, owner: str) -> dict[str, int]:
        """What ``owner`` holds: ``queued`` jobs (not yet running) and ``stored_bytes`` of files."""
        (queued,) = self.read(
            "SELECT COUNT(*) FROM jobs WHERE owner=? AND status='queued'", (owner,)
        )[0]
        (stored,) = self.read("SELECT COALESCE(SUM(bytes), 0) FROM files WHERE owner=?", (owner,))[
            0
        ]
        return {"queued": int(queued), "stored_bytes": int(stored)}

    def rename_owner(self, old: str, new: str) -> int:
        """Move everything of ``old`` to ``new`` (owner ids derived a new way); rows moved."""
        with self.write() as db:
            moved = 0
            for table in ("files", "jobs", "idempotency"):
                moved += db.execute(
                    f"UPDATE {table} SET owner=? WHERE owner=?", (new, old)
                ).rowcount
        return moved

    # -- files ----------------------------------------------------------------------------------

    def add_file(
        self,
        file_id: str,
        owner: str,
        filename: str,
        purpose: str,
        size: int,
        key: str | None,
        body_hash: str | None = None,
    ) -> str:
        """Record an uploaded file (status ``processing``); returns the id to answer with.

        With an idempotency ``key`` already used by this owner, the first file's id is returned
        and nothing is recorded; ``body_hash`` is kept with a new key.
        """
        now = time.time()
        with self.write() as db:
            if key:
                row = db.execute(
                    "SELECT ref_id FROM idempotency WHERE owner=? AND kind='file' AND key=?",
                    (owner, key),
                ).fetchone()
                if row:
                    return str(row["ref_id"])
                db.execute(
                    "INSERT INTO idempotency VALUES (?, 'file', ?, ?, ?, ?)",
                    (owner, key, file_id, now, body_hash),
                )
            db.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?, ?, 'processing', NULL, NULL, ?, ?)",
                (file_id, owner, filename, purpose, size, now, now),
            )
        return file_id

    def set_file_checked(self, file_id: str, ok: bool, records: int, problems: list[dict]) -> None:
        with self.write() as db:
            db.execute(
                "UPDATE files SET status=?, records=?, problems=?, updated_at=? WHERE id=?",
                ("ready" if ok else "failed", records, _json(problems), time.time(), file_id),
            )

    def file(self, file_id: str, owner: str | None = None) -> dict[str, Any] | None:
        """A file document (``None`` if missing or, with ``owner``, someone else's)."""
        rows = self.read("SELECT * FROM files WHERE id=?", (file_id,))
        if not rows or (owner is not None and rows[0]["owner"] != owner):
            return None
        return file_doc(rows[0])

    def files(self, owner: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.read(
            "SELECT * FROM files WHERE owner=? ORDER BY created_at DESC LIMIT ?", (owner, limit)
        )
        return [file_doc(r) for r in rows]

    def files_with_status(self, status: str) -> list[str]:
        return [r["id"] for r in self.read("SELECT id FROM files WHERE status=?", (status,))]

    # -- jobs -----------------------------------------------------------------------------------

    def add_job(
        self,
        job_id: str,
        owner: str,
        model: str,
        payload: dict[str, Any],
        spec: dict[str, Any],
        gpus: int,
        key: str | None,
        body_hash: str | None = None,
    ) -> tuple[str, bool]:
        """Record a job (status ``queued``, not started); returns ``(id, created)``.

        A repeated idempotency ``key`` returns the first job's id and ``created=False``;
        ``body_hash`` is kept with the key so that a reuse with another body can be told apart.
        """
        now = time.time()
        with self.write() as db:
            if key:
                row = db.execute(
                    "SELECT ref_id FROM idempotency WHERE owner=? AND kind='job' AND key=?",
                    (owner, key),
                ).fetchone()
                if row:
                    return str(row["ref_id"]), False
                db.execute(
                    "INSERT INTO idempotency VALUES (?, 'job', ?, ?, ?, ?)",
                    (owner, key, job_id, now, body_hash),
                )
            db.execute(
                "INSERT INTO jobs (id, owner, status, model, payload, spec, gpus, created_at,"
                " updated_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                (job_id, owner, model, _json(payload), _json(spec), gpus, now, now),
            )
        return job_id, True

    def job_row(self, job_id: str, owner: str | None = None) -> sqlite3.Row | None:
        rows = self.read("SELECT * FROM jobs WHERE id=?", (job_id,))
        if not rows or (owner is not None and rows[0]["owner"] != owner):
            return None
        return rows[0]

    def job(self, job_id: str, owner: str | None = None) -> dict[str, Any] | None:
        """The job document as the API returns it."""
        row = self.job_row(job_id, owner)
        return job_doc(row) if row is not None else None

    def jobs(self, owner: str, status: str | None, limit: int) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM jobs WHERE owner=?", [owner]
        if status:
            sql += " AND status=?"
            args.append(status)
        rows = self.read(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit))
        return [job_doc(r) for r in rows]

    def runnable_jobs(self) -> list[sqlite3.Row]:
        """Started jobs waiting for a worker, oldest first."""
        return self.read(
            "SELECT * FROM jobs WHERE status='queued' AND started=1 ORDER BY created_at"
        )

    def jobs_with_status(self, status: str) -> list[sqlite3.Row]:
        return self.read("SELECT * FROM jobs WHERE status=?", (status,))

    def mark_started(self, job_id: str) -> bool:
        """Flag a queued job as started; false if it was started already or is finished."""
        with self.write() as db:
            cur = db.execute(
                "UPDATE jobs SET started=1, updated_at=? WHERE id=? AND started=0 AND status=?",
                (time.time(), job_id, "queued"),
            )
            if cur.rowcount:
                self._timeline(db, job_id, "queued", {})
        return bool(cur.rowcount)

    def set_status(
        self,
        job_id: str,
        status: str,
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
        expect: Iterable[str] | None = None,
        event: tuple[str, str, str, dict[str, Any]] | None = None,
        attempts_delta: int = 0,
    ) -> bool:
        """Move a job to ``status`` unless it is finished (or not in ``expect``).

        The first terminal status wins: a job cancelled while its worker was writing
        ``succeeded`` stays cancelled. ``event`` = ``(type, level, message, data)`` is added
        in the same transaction. Returns whether the job changed.
        """
        now = time.time()
        allowed = tuple(expect) if expect is not None else None
        with self.write() as db:
            row = db.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None or row["status"] in TERMINAL:
                return False
            if allowed is not None and row["status"] not in allowed:
                return False
            sets = "status=?, updated_at=?, attempts=attempts+?"
            args: list[Any] = [status, now, attempts_delta]
            if status == "running":
                sets += ", started_at=COALESCE(started_at, ?)"
                args.append(now)
            if status in TERMINAL:
                sets += ", finished_at=?"
                args.append(now)
            if error is not None:
                sets += ", error=?"
                args.append(error)
            if result is not None:
                sets += ", result=?"
                args.append(_json(result))
            db.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*args, job_id))
            if row["status"] != status and status != "queued":
                self._timeline(db, job_id, status, {"error": error} if error else {})
            if event is not None:
                self._event(db, job_id, *event)
        return True

    # -- events, metrics, timeline --------------------------------------------------------------

    def add_event(
        self,
        job_id: str,
        type_: str,
        message: str = "",
        data: dict[str, Any] | None = None,
        level: str = "info",
    ) -> int:
        """Append an event; returns its ``seq``."""
        with self.write() as db:
            return self._event(db, job_id, type_, level, message, data or {})

    def _event(
        self,
        db: sqlite3.Connection,
        job_id: str,
        type_: str,
        level: str,
        message: str,
        data: dict[str, Any],
    ) -> int:
        (last,) = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id=?", (job_id,)
        ).fetchone()
        seq = int(last) + 1
        db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (job_id, seq, type_, level, message, _json(data), time.time()),
        )
        return seq

    def events(self, job_id: str, since_seq: int, limit: int) -> list[dict[str, Any]]:
        rows = self.read(
            "SELECT * FROM events WHERE job_id=? AND seq>? ORDER BY seq LIMIT ?",
            (job_id, since_seq, limit),
        )
        return [event_doc(r) for r in rows]

    def last_event_step(self, job_id: str, type_: str) -> int:
        """The largest ``data.step`` of the job's events of ``type_`` (0 if none)."""
        rows = self.read(
            "SELECT MAX(CAST(json_extract(data, '$.step') AS INTEGER)) AS s FROM events"
            " WHERE job_id=? AND type=?",
            (job_id, type_),
        )
        return int(rows[0]["s"] or 0)

    def add_points(
        self, job_id: str, points: Sequence[dict[str, Any]], events: Sequence[tuple] = ()
    ) -> None:
        """Store metric points (a repeated ``(step, name)`` replaces) and events, atomically."""
        now = time.time()
        with self.write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        job_id,
                        int(p["step"]),
                        str(p["name"]),
                        float(p["value"]),
                        p.get("epoch"),
                        p.get("phase") or "train",
                        float(p.get("created_at") or now),
                    )
                    for p in points
                ],
            )
            for type_, level, message, data in events:
                self._event(db, job_id, type_, level, message, data)

    def metrics(
        self, job_id: str, after_step: int | None, limit: int, name: str | None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM metrics WHERE job_id=? AND step>?"
        args: list[Any] = [job_id, -1 if after_step is None else after_step]
        if name:
            sql += " AND name=?"
            args.append(name)
        rows = self.read(sql + " ORDER BY step, name LIMIT ?", (*args, limit))
        return [point_doc(r) for r in rows]

    def add_timeline(self, job_id: str, phase: str, metadata: dict[str, Any] | None = None) -> None:
        with self.write() as db:
            self._timeline(db, job_id, phase, metadata or {})

    def _timeline(
        self, db: sqlite3.Connection, job_id: str, phase: str, metadata: dict[str, Any]
    ) -> None:
        db.execute(
            "INSERT INTO timeline (job_id, phase, metadata, created_at) VALUES (?, ?, ?, ?)",
            (job_id, phase, _json(metadata), time.time()),
        )

    def timeline(self, job_id: str) -> list[dict[str, Any]]:
        rows = self.read("SELECT * FROM timeline WHERE job_id=? ORDER BY id", (job_id,))
        return [timeline_doc(r) for r in rows]
