"""The words a sweep uses for the state of a run and of the sweep, defined once.

The remote API's job statuses (``succeeded``, ``cancelled`` ...) are mapped to these at one
place, :func:`from_job`, so tables, the manifest and the live view speak one vocabulary.
"""

from __future__ import annotations

from typing import Any

PENDING = "pending"
RUNNING = "running"
COMPLETED = "completed"
INTERRUPTED = "interrupted"
FAILED = "failed"
CANCELLED = "cancelled"
STOPPED_EARLY = "stopped early"

FINISHED = frozenset({COMPLETED, FAILED, CANCELLED, STOPPED_EARLY})
"""A run in one of these states is never run again, on resume included."""

COLORS = {
    COMPLETED: "#2e7d32",
    INTERRUPTED: "#ef6c00",
    STOPPED_EARLY: "#6d4c41",
    CANCELLED: "#757575",
    FAILED: "#c62828",
}
"""Colour of a status in the HTML table (anything else, i.e. pending/running, is blue)."""


def from_job(job: Any) -> str:
    """The sweep status of a :class:`~synth_lab.client.remote.RemoteJob` (read, not polled)."""
    if job.interrupted:
        return INTERRUPTED
    if job.succeeded:
        return COMPLETED
    if job.cancelled:
        return CANCELLED
    if job.failed:
        return FAILED
    return RUNNING
