"""Metric points and the small logger protocol the training loop talks to.

A point is ``{name, value, step, epoch, phase}``, named like the remote learning API
(``train.loss``, ``train.learning_rate``, ``val.loss``, plus ``train.tokens_per_second``), so
one plot and one table serve local and remote runs alike. The loop knows only
:class:`MetricLogger`: ``log(points)`` and ``close()``. Loggers may also define
``start(info)`` and ``finish(status)``; :class:`LoggerGroup` calls them when present.

This module imports neither torch nor pandas (pandas only inside :meth:`MemoryLogger.frame`),
so a server can reuse it to publish points.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from synth_lab.metrics import (  # noqa: F401 - the names are re-exported for the loop and views
    EVAL_SCORE,
    TRAIN_GRAD_NORM,
    TRAIN_LOSS,
    TRAIN_LR,
    TRAIN_TOKENS,
    TRAIN_TOKENS_PER_SECOND,
    VAL_LOSS,
)

POINT_COLUMNS = ("name", "value", "step", "epoch", "phase", "created_at")


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One measurement, as the remote API's ``GET /learning/jobs/{id}/metrics`` returns it.

    Attributes:
        name: ``train.loss``, ``train.learning_rate``, ``val.loss`` ...
        value: The value.
        step: Optimizer step the value belongs to (1-based: after the step).
        epoch: Fractional epoch at that step.
        phase: ``"train"`` or ``"validation"``.
        created_at: Unix time the point was made.
    """

    name: str
    value: float
    step: int
    epoch: float = 0.0
    phase: str = "train"
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricPoint:
        """A point from a dict (a JSONL line, a remote API point); unknown keys are ignored."""
        created = data.get("created_at")
        return cls(
            name=str(data["name"]),
            value=float(data["value"]),
            step=int(data.get("step") or 0),
            epoch=float(data.get("epoch") or 0.0),
            phase=str(data.get("phase") or "train"),
            created_at=float(created) if isinstance(created, (int, float)) else time.time(),
        )


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a logger may want to know when a run starts."""

    total_steps: int
    start_step: int = 0
    model: str = ""
    mode: str = ""
    world_size: int = 1
    output_dir: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class MetricLogger(Protocol):
    """Receives metric points as training produces them."""

    def log(self, points: Sequence[MetricPoint]) -> None:
        """Record points (called once per step or evaluation, from the training process)."""

    def close(self) -> None:
        """Flush and release resources; called once, when the run ends."""


class BaseLogger:
    """A logger that does nothing; subclass and override what you need."""

    def start(self, info: RunInfo) -> None:
        """The run is starting (total steps, model, output folder)."""

    def log(self, points: Sequence[MetricPoint]) -> None:
        """Record points."""

    def finish(self, status: str) -> None:
        """The run ended with ``status`` (``succeeded``, ``interrupted``, ``failed``)."""

    def close(self) -> None:
        """Release resources."""


class MemoryLogger(BaseLogger):
    """Keeps every point in memory; :meth:`frame` gives them as a DataFrame."""

    def __init__(self) -> None:
        self.points: list[MetricPoint] = []

    def log(self, points: Sequence[MetricPoint]) -> None:
        self.points.extend(points)

    def frame(self) -> Any:
        """The points as a ``pandas.DataFrame`` with :data:`POINT_COLUMNS`."""
        return points_frame(self.points)


class JSONLLogger(BaseLogger):
    """Appends one JSON object per point to a file (``metrics.jsonl``), flushed every call.

    Appending (not truncating) keeps the history of a resumed run in one file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("ab")

    def log(self, points: Sequence[MetricPoint]) -> None:
        if self._handle.closed:
            return
        self._handle.write(b"".join(orjson.dumps(p.to_dict()) + b"\n" for p in points))
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


class CallbackLogger(BaseLogger):
    """Calls ``fn(point)`` for every point; exceptions propagate into the training loop.

    Raising ``KeyboardInterrupt`` from ``fn`` stops training the way Ctrl-C does: a
    checkpoint is saved and the result has status ``interrupted``.
    """

    def __init__(self, fn: Callable[[MetricPoint], object]) -> None:
        self.fn = fn

    def log(self, points: Sequence[MetricPoint]) -> None:
        for point in points:
            self.fn(point)


class LoggerGroup(BaseLogger):
    """Fans every call out to several loggers (the loop talks to exactly one logger)."""

    def __init__(self, loggers: Iterable[object] = ()) -> None:
        self.loggers: list[object] = [lg for lg in loggers if lg is not None]

    def start(self, info: RunInfo) -> None:
        for lg in self.loggers:
            if hasattr(lg, "start"):
                lg.start(info)

    def log(self, points: Sequence[MetricPoint]) -> None:
        if points:
            for lg in self.loggers:
                lg.log(points)  # type: ignore[attr-defined]

    def finish(self, status: str) -> None:
        for lg in self.loggers:
            if hasattr(lg, "finish"):
                lg.finish(status)

    def close(self) -> None:
        for lg in self.loggers:
            if hasattr(lg, "close"):
                lg.close()


def as_logger(logger: object) -> object | None:
    """Normalise the ``logger=`` argument: a logger, a callable, a list of them, or ``None``."""
    if logger is None:
        return None
    if isinstance(logger, (list, tuple)):
        return LoggerGroup(as_logger(lg) for lg in logger)
    if hasattr(logger, "log"):
        return logger
    if callable(logger):
        return CallbackLogger(logger)
    raise TypeError(f"logger must have a log(points) method or be callable, got {logger!r}")


def read_jsonl(path: str | os.PathLike[str]) -> list[MetricPoint]:
    """Points from a ``metrics.jsonl`` file (a torn last line is skipped)."""
    points = []
    for line in Path(path).read_bytes().splitlines():
        try:
            points.append(MetricPoint.from_dict(orjson.loads(line)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return points


def points_frame(points: Iterable[MetricPoint | Mapping[str, Any]]) -> Any:
    """Points (objects or dicts) as a ``pandas.DataFrame`` with :data:`POINT_COLUMNS`."""
    import pandas as pd

    rows = [p.to_dict() if isinstance(p, MetricPoint) else dict(p) for p in points]
    frame = pd.DataFrame(rows, columns=list(POINT_COLUMNS))
    # Local points carry Unix seconds, the remote API ISO 8601 text: one dtype for both, so
    # tables of local runs and remote jobs line up (UTC timestamps).
    frame["created_at"] = pd.Series(
        [_timestamp(v) for v in frame["created_at"]], index=frame.index, dtype="datetime64[ns, UTC]"
    )
    frame["phase"] = frame["phase"].fillna("train").astype(str)
    frame["step"] = frame["step"].fillna(0)
    return frame.astype({"value": float, "step": int, "epoch": float})


def _timestamp(value: Any) -> Any:
    import pandas as pd

    if value is None or (isinstance(value, float) and value != value):
        return pd.NaT
    if isinstance(value, (int, float)):
        return pd.Timestamp(value, unit="s", tz="UTC")
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        return pd.NaT
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
