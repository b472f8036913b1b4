"""What a sweep returns: one record per run, a comparison table and a plot of every curve."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_lab._html import escape, no_math
from synth_lab.metrics import EVAL_SCORE, TRAIN_LOSS, VAL_LOSS
from synth_lab.plots import run_color, series
from synth_lab.status import Status, render
from synth_lab.sweep.grid import SweepPoint


def lower_is_better(metric: str) -> bool:
    """Losses and perplexities rank low first; scores (``eval.score``) high first."""
    return metric.endswith(("loss", "perplexity"))


@dataclass
class SweepRun:
    """One run of a sweep.

    Attributes:
        point: The sweep point (overrides and validated config).
        status: A :class:`~synth_lab.status.Status` (``queued``, ``running``, ``succeeded``,
            ``interrupted``, ``failed``, ``cancelled``, ``stopped early``); older words such
            as ``completed`` are read as theirs.
        result: The :class:`~synth_lab.train.result.TrainResult` (local) or
            :class:`~synth_lab.client.remote.RemoteJob` (remote); ``None`` when it failed.
        error: The error message of a failed run.
        seconds: Wall time of the run.
        output_dir: The run's folder (local runs).
        live_points: Points received while the run is going (before ``result`` exists), or
            read back from the sweep folder by :func:`synth_lab.sweep.load`.
        job_id: The remote job's id (remote runs).
        stopped_step: The step whose evidence stopped the run early.
    """

    point: SweepPoint
    status: Status = Status.QUEUED
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    output_dir: Path | None = None
    live_points: list[Any] = field(default_factory=list, repr=False)
    job_id: str | None = None
    stopped_step: int | None = None
    recorded_steps: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.status = Status.parse(self.status)

    @property
    def config(self) -> Any:
        """The run's full config (ready for a longer run: ``synth_lab.train.run(run.config)``)."""
        return self.point.config

    @property
    def name(self) -> str:
        return self.point.name

    @property
    def label(self) -> str:
        return self.point.label

    @property
    def overrides(self) -> dict[str, Any]:
        return self.point.overrides

    @property
    def points(self) -> list[dict[str, Any]]:
        """Metric points as dicts (name, value, step ...), local and remote alike."""
        raw = getattr(self.result, "points", None) or self.live_points
        return [p.to_dict() if hasattr(p, "to_dict") else dict(p) for p in raw]

    def series(self, metric: str) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of one metric, the last value per step winning."""
        return series(self.points, (metric,))[metric]

    @property
    def steps(self) -> int:
        steps = getattr(self.result, "steps", None)
        if isinstance(steps, int):
            return steps
        seen = max((int(p.get("step") or 0) for p in self.points), default=None)
        return seen if seen is not None else self.recorded_steps or 0

    @property
    def train_loss(self) -> float | None:
        """The last ``train.loss``."""
        values = self.series(TRAIN_LOSS)[1]
        return values[-1] if values else None

    @property
    def best_val_loss(self) -> float | None:
        """The lowest ``val.loss``."""
        values = self.series(VAL_LOSS)[1]
        return min(values) if values else None

    def value(self, metric: str) -> float | None:
        """``metric`` for ranking: the best ``val.loss``, else the metric's last value."""
        if metric == VAL_LOSS:
            return self.best_val_loss
        values = self.series(metric)[1]
        return values[-1] if values else None

    def to_dict(self) -> dict[str, Any]:
        detail = self.result.to_dict() if hasattr(self.result, "to_dict") else None
        if detail is None and self.job_id:
            detail = {"id": self.job_id, "status": self.status}
        return {
            "name": self.name,
            "overrides": dict(self.overrides),
            "status": self.status,
            "error": self.error,
            "steps": self.steps,
            "train_loss": self.train_loss,
            "best_val_loss": self.best_val_loss,
            "stopped_step": self.stopped_step,
            "seconds": round(self.seconds, 3),
            "output_dir": os.fspath(self.output_dir) if self.output_dir else None,
            "result": detail,
        }


def _sort_key(metric: str) -> Any:
    sign = 1.0 if lower_is_better(metric) else -1.0

    def key(run: SweepRun) -> tuple[int, float]:
        value = run.value(metric)
        missing = value is None or math.isnan(value) or run.status == Status.FAILED
        return (1 if missing else 0, 0.0 if missing else sign * float(value))  # type: ignore[arg-type]

    return key


def _rank_metric(runs: Iterable[SweepRun]) -> str:
    return VAL_LOSS if any(r.best_val_loss is not None for r in runs) else TRAIN_LOSS


@dataclass
class SweepResult:
    """The runs of a sweep, compared.

    Attributes:
        runs: One :class:`SweepRun` per point, in sweep order.
        status: ``succeeded``, ``interrupted`` when the sweep was stopped before its end, or
            ``cancelled`` after :meth:`cancel`.
        output_dir: The sweep folder: its ``manifest.json`` and one subfolder per run.
        rank_by: The metric to rank by (default: ``val.loss`` when any run has one, else
            ``train.loss``); any metric name works, losses rank low first, others high first.
        backend: The learning API URL of a remote sweep (for :meth:`cancel` after a reload).
    """

    runs: list[SweepRun]
    status: Status = Status.SUCCEEDED
    output_dir: Path | None = None
    rank_by: str | None = None
    backend: str | None = None

    def __post_init__(self) -> None:
        self.status = Status.parse(self.status)

    @property
    def metric(self) -> str:
        """The ranking metric: :attr:`rank_by`, else ``val.loss`` when any run has one, else
        ``train.loss``."""
        return self.rank_by or _rank_metric(self.runs)

    @property
    def ranked(self) -> list[SweepRun]:
        """Runs best first (failed and metric-less runs last)."""
        return sorted(self.runs, key=_sort_key(self.metric))

    @property
    def best(self) -> SweepRun | None:
        """The best completed run by :attr:`metric` (``.config`` for a longer run, ``.result``),
        or ``None``."""
        done = [r for r in self.ranked if r.status == Status.SUCCEEDED]
        return done[0] if done and _sort_key(self.metric)(done[0])[0] == 0 else None

    def run(self, which: int | str | SweepRun) -> SweepRun:
        """A run by index, name or label.

        Raises:
            SynthLabError: No such run.
        """
        if isinstance(which, SweepRun):
            return which
        for index, run in enumerate(self.runs):
            if which in (index, run.name, run.label):
                return run
        from synth_lab.errors import SynthLabError

        names = ", ".join(r.name for r in self.runs[:5])
        raise SynthLabError(f"no run {which!r} in this sweep", hint=f"use an index or {names}")

    def diff(self, a: int | str | SweepRun, b: int | str | SweepRun) -> dict[str, tuple[Any, Any]]:
        """The config keys where two runs differ: ``{"hyperparameters.learning_rate": (a, b)}``."""
        left, right = _flat(self.run(a).config.to_dict()), _flat(self.run(b).config.to_dict())
        return {
            k: (left.get(k), right.get(k))
            for k in sorted(set(left) | set(right))
            if left.get(k) != right.get(k)
        }

    def cancel(self) -> list[SweepRun]:
        """Cancel every remote run still going (watching alone never stops them); returns the
        runs cancelled. Pending points stay pending (``resume=True`` would run them)."""
        cancelled = []
        for run in self.runs:
            if Status.parse(run.status).terminal or not run.job_id:
                continue
            job = run.result
            if job is None or not hasattr(job, "cancel"):
                from synth_lab.client.remote import attach

                job = attach(run.job_id, backend=self.backend)
            job.cancel()
            run.result, run.status = job, Status.CANCELLED
            cancelled.append(run)
        if cancelled:
            self.status = Status.CANCELLED
            if self.output_dir is not None:
                from synth_lab.sweep.manifest import Manifest

                Manifest.read(self.output_dir).update(self).save()
        return cancelled

    def _rows(self) -> list[dict[str, Any]]:
        keys = list(dict.fromkeys(k for r in self.runs for k in r.overrides))
        scored = any(r.series(EVAL_SCORE)[0] for r in self.runs)
        stopped = any(r.stopped_step is not None for r in self.runs)
        rows = []
        for run in self.ranked:
            row: dict[str, Any] = {"name": run.name}
            row.update({k: run.overrides.get(k) for k in keys})
            row.update(
                status=run.status,
                steps=run.steps,
                train_loss=run.train_loss,
                best_val_loss=run.best_val_loss,
            )
            if scored:
                row[EVAL_SCORE] = run.value(EVAL_SCORE)
            if stopped:
                row["stopped_step"] = run.stopped_step
            row.update(
                seconds=round(run.seconds, 2),
                output_dir=os.fspath(run.output_dir) if run.output_dir else None,
                error=run.error,
            )
            rows.append(row)
        return rows

    @property
    def table(self) -> Any:
        """A DataFrame, one row per run, best first by :attr:`metric`: the overrides as
        columns, status, steps, losses (``eval.score`` when a run has one), time."""
        import pandas as pd

        return pd.DataFrame(self._rows())

    def plot(self, ax: Any = None, metric: str = TRAIN_LOSS) -> Any:
        """One curve per run of ``metric`` (``train.loss``, ``val.loss``, ``eval.score`` ...);
        returns the axes."""
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric must be a metric name such as {VAL_LOSS!r}, got {metric!r}")
        from synth_lab.plots import plot_runs

        return plot_runs(self.runs, ax, (metric,))

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "status": self.status,
            "metric": self.metric,
            "best": best.name if best else None,
            "output_dir": os.fspath(self.output_dir) if self.output_dir else None,
            "runs": [r.to_dict() for r in self.runs],
        }

    def __repr__(self) -> str:
        return f"SweepResult(status={self.status!r}, runs={len(self.runs)})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {
            "text/plain": self.text(),
            "text/html": no_math(render_html(self.runs, f"sweep · {self.status}", self.metric)),
        }

    def text(self) -> str:
        """The table as aligned plain text."""
        lines = [f"sweep · {self.status} · {len(self.runs)} run(s) · ranked by {self.metric}"]
        for run in sorted(self.runs, key=_sort_key(self.metric)):
            lines.append(f"  {run.name:<40} {_status_text(run):<16} {_row_losses(run)}")
            if run.error:
                lines.append(f"      {run.error.splitlines()[0]}")
        return "\n".join(lines)


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _status_text(run: SweepRun) -> str:
    if run.status == Status.STOPPED_EARLY and run.stopped_step is not None:
        return f"{run.status} @ {run.stopped_step}"
    return run.status


def _row_losses(run: SweepRun) -> str:
    return f"step {run.steps} · loss {_fmt(run.train_loss)} · val {_fmt(run.best_val_loss)}"


def render_html(runs: Sequence[SweepRun], title: str, metric: str) -> str:
    """The runs as an HTML table (every user string escaped), best first."""
    order = {id(r): i for i, r in enumerate(runs)}
    scored = any(r.series(EVAL_SCORE)[0] for r in runs)
    rows = []
    for run in sorted(runs, key=_sort_key(metric)):
        swatch = f"<span style='color:{run_color(order[id(run)])}'>■</span>"
        status = escape(_status_text(run))
        if run.error:
            status = f"<span title='{escape(run.error)}'>{status} ⓘ</span>"
        cells = [
            f"{swatch} {escape(run.label)}",
            f"<span style='color:{render(run.status).color}'>{status}</span>",
            str(run.steps),
            _fmt(run.train_loss),
            _fmt(run.best_val_loss),
        ]
        if scored:
            cells.append(_fmt(run.value(EVAL_SCORE)))
        cells.append(f"{run.seconds:.1f}s")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    names = ["run", "status", "steps", "train loss", "best val loss"]
    names += ["eval score"] * scored + ["time"]
    head = "".join(f"<th>{h}</th>" for h in names)
    return (
        f"<div><div style='font-weight:600'>{escape(title)} · ranked by "
        f"{escape(metric)}</div><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
