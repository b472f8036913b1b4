"""The one shape of a finished run as plain data: what ``--json`` prints, local or remote.

Every run, wherever it trained, reports the same keys first (:data:`KEYS`), so a script reads
``status``, ``steps``, the losses, ``model`` (a local folder or a remote model id) and
``seconds`` the same way; each side adds its own details after them (local folders and the
trainer's summary; the remote job id, backend and error).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from synth_lab.metrics import TRAIN_LOSS, VAL_LOSS
from synth_lab.status import Status

KEYS = (
    "status",
    "steps",
    "total_steps",
    "train_loss",
    "best_val_loss",
    "metrics",
    "model",
    "seconds",
    "error",
)
"""The keys every run's dict starts with, in this order."""


def last_values(points: Iterable[Any]) -> dict[str, float]:
    """The last value of each metric (points as dicts or :class:`MetricPoint`), by step."""
    last: dict[str, tuple[int, float]] = {}
    for point in points:
        row = point if isinstance(point, Mapping) else point.to_dict()
        step = int(row.get("step") or 0)
        if row["name"] not in last or step >= last[row["name"]][0]:
            last[row["name"]] = (step, float(row["value"]))
    return {name: value for name, (_, value) in last.items()}


def best_value(points: Iterable[Any], name: str = VAL_LOSS) -> float | None:
    """The lowest value of metric ``name``, or ``None`` when it was never logged."""
    values = [
        float(row["value"])
        for row in (p if isinstance(p, Mapping) else p.to_dict() for p in points)
        if row["name"] == name
    ]
    return min(values) if values else None


def result_dict(
    *,
    status: object,
    steps: int,
    points: Iterable[Any],
    model: str | None,
    total_steps: int | None = None,
    train_loss: float | None = None,
    best_val_loss: float | None = None,
    seconds: float | None = None,
    error: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    """A run as plain data: the shared keys (:data:`KEYS`), then ``details``.

    Args:
        status: The run's status (any word :meth:`Status.parse` reads).
        steps: Optimizer steps done.
        points: The run's metric points (the last value of each goes under ``metrics``).
        model: Where the trained model is: a local folder, or the remote model id.
        total_steps: Steps planned, when known.
        train_loss: The final train loss (default: the last ``train.loss`` point).
        best_val_loss: The best validation loss (default: the lowest ``val.loss`` point).
        seconds: Wall time of the run, when known.
        error: Why the run failed, if it did.
        **details: Keys of one side only (folders, job id, backend ...).

    Returns:
        A JSON-ready dict.
    """
    points = list(points)
    metrics = last_values(points)
    doc = {
        "status": Status.parse(status).value,
        "steps": int(steps),
        "total_steps": total_steps,
        "train_loss": train_loss if train_loss is not None else metrics.get(TRAIN_LOSS),
        "best_val_loss": best_val_loss if best_val_loss is not None else best_value(points),
        "metrics": metrics,
        "model": model,
        "seconds": None if seconds is None else round(float(seconds), 3),
        "error": error,
    }
    return {**doc, **details}
