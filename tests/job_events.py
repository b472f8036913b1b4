"""Waiting for a server job without sleeping: follow its event stream.

The server's ``GET /learning/jobs/{id}/events`` with ``Accept: text/event-stream`` sends each
event as it is stored and ends when the job does, so a test blocks on the stream rather than
polling the job on a timer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson

from synth_lab.status import Status


def follow(
    client: httpx.Client, job_id: str, until: Callable[[dict[str, Any]], bool] | None = None
) -> dict[str, Any] | None:
    """Read the job's events until ``until(event)`` holds (that event is returned) or the job
    ends (``None``)."""
    headers = {"Accept": "text/event-stream"}
    with client.stream("GET", f"/learning/jobs/{job_id}/events", headers=headers) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                event = orjson.loads(line[6:])
                if until is not None and until(event):
                    return dict(event)
    return None


def wait_terminal(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job's document once it has ended."""
    follow(client, job_id)
    doc = dict(client.get(f"/learning/jobs/{job_id}").json())
    assert Status.parse(doc["status"]).terminal, doc
    return doc


def wait_event(client: httpx.Client, job_id: str, kind: str) -> dict[str, Any]:
    """The first event of type ``kind``; fails if the job ends without one."""
    event = follow(client, job_id, lambda e: e["type"] == kind)
    assert event is not None, f"job {job_id} ended without a {kind} event"
    return event
