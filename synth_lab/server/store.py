"""The server's records of tenants, files and jobs (see :mod:`synth_lab.server.database`).

A client's ``Idempotency-Key`` is recorded in the transaction that adds the file or job it
created, so a retry, even a concurrent one, gets the first one's id instead of a second record.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from synth_lab.server.database import to_json
from synth_lab.server.joblog import JobLog, insert_event, insert_timeline
from synth_lab.server.shapes import file_doc, job_doc
from synth_lab.status import Status

TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)  # the ends a job has here


def claim_key(
    db: sqlite3.Connection,
    owner: str,
    kind: str,
    key: str | None,
    ref_id: str,
    body_hash: str | None,
) -> str | None:
    """Inside the transaction ``db``: the id first recorded with ``(owner, kind, key)``, or
    ``None`` after recording ``ref_id`` (and ``body_hash``) with it; no key, nothing to do."""
    if not key:
        return None
    row = db.execute(
        "SELECT ref_id FROM idempotency WHERE owner=? AND kind=? AND key=?", (owner, kind, key)
    ).fetchone()
    if row:
        return str(row["ref_id"])
    db.execute(
        "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
        (owner, kind, key, ref_id, time.time(), body_hash),
    )
    return None


class Store(JobLog):
    """The server's state: tenants, idempotency keys, files and jobs, and the jobs' logs.

    Args:
        path: The database file (created with its folder if missing).
    """

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
            first = claim_key(db, owner, "file", key, file_id, body_hash)
            if first is not None:
                return first
            db.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?, ?, 'processing', NULL, NULL, ?, ?)",
                (file_id, owner, filename, purpose, size, now, now),
            )
        return file_id

    def set_file_checked(self, file_id: str, ok: bool, records: int, problems: list[dict]) -> None:
        with self.write() as db:
            db.execute(
                "UPDATE files SET status=?, records=?, problems=?, updated_at=? WHERE id=?",
                ("ready" if ok else "failed", records, to_json(problems), time.time(), file_id),
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
            first = claim_key(db, owner, "job", key, job_id, body_hash)
            if first is not None:
                return first, False
            db.execute(
                "INSERT INTO jobs (id, owner, status, model, payload, spec, gpus, created_at,"
                " updated_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                (job_id, owner, model, to_json(payload), to_json(spec), gpus, now, now),
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
                insert_timeline(db, job_id, "queued", {})
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
                args.append(to_json(result))
            db.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*args, job_id))
            if row["status"] != status and status != "queued":
                insert_timeline(db, job_id, status, {"error": error} if error else {})
            if event is not None:
                insert_event(db, job_id, *event)
        return True
