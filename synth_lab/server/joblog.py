"""What a job writes as it runs: events (gapless ``seq`` per job), metric points, the timeline.

Event ``seq`` numbers are allocated inside the inserting transaction, so they are gapless and
monotonic per job whoever writes. Metric points are unique per ``(job, step, name)``: a resumed
run that logs a step again replaces the point instead of duplicating it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from synth_lab.server.database import Database, to_json
from synth_lab.server.shapes import event_doc, point_doc, timeline_doc


def insert_event(
    db: sqlite3.Connection,
    job_id: str,
    type_: str,
    level: str,
    message: str,
    data: dict[str, Any],
) -> int:
    """Append an event inside the transaction ``db``; returns its ``seq``."""
    (last,) = db.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id=?", (job_id,)
    ).fetchone()
    seq = int(last) + 1
    db.execute(
        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
        (job_id, seq, type_, level, message, to_json(data), time.time()),
    )
    return seq


def insert_timeline(db: sqlite3.Connection, job_id: str, phase: str, metadata: dict) -> None:
    """Append a timeline entry inside the transaction ``db``."""
    db.execute(
        "INSERT INTO timeline (job_id, phase, metadata, created_at) VALUES (?, ?, ?, ?)",
        (job_id, phase, to_json(metadata), time.time()),
    )


class JobLog(Database):
    """The events, metric points and timeline of jobs."""

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
            return insert_event(db, job_id, type_, level, message, data or {})

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
                insert_event(db, job_id, type_, level, message, data)

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
            insert_timeline(db, job_id, phase, metadata or {})

    def timeline(self, job_id: str) -> list[dict[str, Any]]:
        rows = self.read("SELECT * FROM timeline WHERE job_id=? ORDER BY id", (job_id,))
        return [timeline_doc(r) for r in rows]
