"""The JSON documents the API answers with, made from database rows (field names per contract)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Any

import orjson

from synth_lab.job.requestform import step_budget, validation_file_id
from synth_lab.server.errors import RequestError


def iso(ts: float | None) -> str | None:
    """A Unix time as an ISO 8601 UTC string (``2025-01-31T12:00:00.000Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def file_doc(row: sqlite3.Row) -> dict[str, Any]:
    """``GET /files/{id}``: id, filename, purpose, bytes, status, records, problems, times."""
    return {
        "id": row["id"],
        "object": "file",
        "filename": row["filename"],
        "purpose": row["purpose"],
        "bytes": row["bytes"],
        "status": row["status"],
        "records": row["records"],
        "problems": orjson.loads(row["problems"]) if row["problems"] else [],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def job_doc(row: sqlite3.Row) -> dict[str, Any]:
    """``GET /learning/jobs/{id}``: the payload's fields plus status, result and times.

    Either request form reads the same: ``validation_file`` wherever it was sent, and
    ``step_budget`` saying whether ``n_epochs`` or a step key governs.
    """
    payload = orjson.loads(row["payload"])
    result = orjson.loads(row["result"]) if row["result"] else None
    fine_tuned = (result or {}).get("fine_tuned_model")
    hyper = payload.get("hyperparameters", {})
    effective = (payload.get("metadata") or {}).get("effective_config") or {}
    return {
        "id": row["id"],
        "job_id": row["id"],
        "object": "job",
        "status": row["status"],
        "model": row["model"],
        "training_type": payload.get("training_type", "sft_offline"),
        "training_file_id": payload.get("training_file_id"),
        "hyperparameters": hyper,
        "metadata": payload.get("metadata", {}),
        **_request_form(payload, hyper, effective),
        "suffix": payload.get("suffix"),
        "integrations": payload.get("integrations"),
        "fine_tuned_model": fine_tuned,
        "model_id": fine_tuned,
        "error": row["error"],
        "result": result,
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
    }


def _request_form(
    payload: dict[str, Any], hyper: dict[str, Any], effective: dict[str, Any]
) -> dict[str, Any]:
    """``validation_file`` and ``step_budget`` of a stored payload (checked when it came in)."""
    try:
        return {
            "validation_file": validation_file_id(payload, effective),
            "step_budget": step_budget(hyper).to_dict(),
        }
    except RequestError:  # a row stored before these fields were read: show it anyway
        return {"validation_file": None, "step_budget": None}


def event_doc(row: sqlite3.Row) -> dict[str, Any]:
    """One event: seq, type, level, message, data, created_at."""
    return {
        "seq": row["seq"],
        "type": row["type"],
        "level": row["level"],
        "message": row["message"],
        "data": orjson.loads(row["data"]),
        "created_at": iso(row["created_at"]),
    }


def point_doc(row: sqlite3.Row) -> dict[str, Any]:
    """One metric point: name, value, step, epoch, phase, created_at."""
    return {
        "name": row["name"],
        "value": row["value"],
        "step": row["step"],
        "epoch": row["epoch"],
        "phase": row["phase"],
        "created_at": iso(row["created_at"]),
    }


def timeline_doc(row: sqlite3.Row) -> dict[str, Any]:
    """One timeline entry: phase, metadata, created_at."""
    return {
        "phase": row["phase"],
        "metadata": orjson.loads(row["metadata"]),
        "created_at": iso(row["created_at"]),
    }
