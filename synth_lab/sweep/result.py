"""What a sweep returns: one record per run, a comparison table and a plot of every curve."""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_lab.sweep.grid import SweepPoint

TRAIN_LOSS = "train.loss"
VAL_LOSS = "val.loss"
_COLORS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:gray",
    "tab:olive",
    "tab:cyan",
)


def color(index: int) -> str:
    """The color of run ``index`` (matplotlib's tab10 cycle), the same in every view."""
    return _COLORS[index % len(_COLORS)]


@dataclass
class SweepRun:
    """One run of a sweep.

    Attributes:
        point: The sweep point (overrides and validated config).
        status: ``pending``, ``running``, ``completed``, ``interrupted`` or ``failed``.
        result: The :class:`~synth_lab.train.result.TrainResult` (local) or
            :class:`~synth_lab.client.remote.RemoteJob` (remote); ``None`` when it failed.
        error: The error message of a failed run.
        seconds: Wall time of the run.
        output_dir: The run's folder (local runs).
        live_points: Points received while the run is going (before ``result`` exists).
    """

    point: SweepPoint
    status: str = "pending"
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    output_dir: Path | None = None
    live_points: list[Any] = field(default_factory=list, repr=False)

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
        values = {
            int(p.get("step") or 0): float(p["value"])
            for p in self.points
            if p.get("name") == metric and p.get("value") is not None
        }
        steps = sorted(values)
        return steps, [values[s] for s in steps]

    @property
    def steps(self) -> int:
        steps = getattr(self.result, "steps", None)
        if isinstance(steps, int):
            return steps
        return max((int(p.get("step") or 0) for p in self.points), default=0)

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

    def to_dict(self) -> dict[str, Any]:
        detail = self.result.to_dict() if hasattr(self.result, "to_dict") else None
        if detail is None and self.result is not None and hasattr(self.result, "id"):
            detail = {"id": self.result.id, "status": self.status}
        return {
            "name": self.name,
            "overrides": dict(self.overrides),
            "status": self.status,
            "error": self.error,
            "steps": self.steps,
            "train_loss": self.train_loss,
            "best_val_loss": self.best_val_loss,
            "seconds": round(self.seconds, 3),
            "output_dir": os.fspath(self.output_dir) if self.output_dir else None,
            "result": detail,
        }


def _sort_key(metric: str) -> Any:
    def key(run: SweepRun) -> tuple[int, float]:
        value = run.best_val_loss if metric == VAL_LOSS else run.train_loss
        missing = value is None or math.isnan(value) or run.status == "failed"
        return (1 if missing else 0, 0.0 if missing else float(value))  # type: ignore[arg-type]

    return key


def _rank_metric(runs: Iterable[SweepRun]) -> str:
    return VAL_LOSS if any(r.best_val_loss is not None for r in runs) else TRAIN_LOSS


def draw_curves(runs: Sequence[SweepRun], ax: Any, metrics: Sequence[str] = (TRAIN_LOSS,)) -> Any:
    """One line per run and metric on ``ax``: train loss solid, val loss dashed, a color per run."""
    drawn = False
    for index, run in enumerate(runs):
        for metric in metrics:
            steps, values = run.series(metric)
            if not steps:
                continue
            val = metric == VAL_LOSS
            ax.plot(
                steps,
                values,
                color=color(index),
                linestyle="--" if val else "-",
                marker="o" if val and len(steps) < 20 else None,
                linewidth=1.4,
                label=run.label if not drawn or metric == metrics[0] else None,
            )
            drawn = True
    ax.set_xlabel("step")
    ax.set_ylabel(" / ".join(m.replace(".", " ") for m in metrics))
    if drawn:
        ax.legend(loc="upper right", frameon=False, fontsize="small")
    else:
        ax.text(0.5, 0.5, "no loss points yet", ha="center", va="center", transform=ax.transAxes)
    ax.grid(True, alpha=0.3)
    return ax


@dataclass
class SweepResult:
    """The runs of a sweep, compared.

    Attributes:
        runs: One :class:`SweepRun` per point, in sweep order.
        status: ``completed``, or ``interrupted`` when the sweep was stopped early.
        output_dir: The sweep folder (local runs), one subfolder per run.
    """

    runs: list[SweepRun]
    status: str = "completed"
    output_dir: Path | None = None

    @property
    def metric(self) -> str:
        """The ranking metric: ``val.loss`` when any run has one, else ``train.loss``."""
        return _rank_metric(self.runs)

    @property
    def ranked(self) -> list[SweepRun]:
        """Runs best first (failed and loss-less runs last)."""
        return sorted(self.runs, key=_sort_key(self.metric))

    @property
    def best(self) -> SweepRun | None:
        """The best completed run by :attr:`metric`, or ``None``."""
        done = [r for r in self.ranked if r.status == "completed"]
        return done[0] if done and _sort_key(self.metric)(done[0])[0] == 0 else None

    def _rows(self) -> list[dict[str, Any]]:
        keys = list(dict.fromkeys(k for r in self.runs for k in r.overrides))
        rows = []
        for run in self.ranked:
            row: dict[str, Any] = {"name": run.name}
            row.update({k: run.overrides.get(k) for k in keys})
            row.update(
                status=run.status,
                steps=run.steps,
                train_loss=run.train_loss,
                best_val_loss=run.best_val_loss,
                seconds=round(run.seconds, 2),
                output_dir=os.fspath(run.output_dir) if run.output_dir else None,
                error=run.error,
            )
            rows.append(row)
        return rows

    @property
    def table(self) -> Any:
        """A DataFrame, one row per run, best first: overrides, status, steps, losses, time."""
        import pandas as pd

        return pd.DataFrame(self._rows())

    def plot(self, ax: Any = None, metric: str = TRAIN_LOSS) -> Any:
        """One curve per run of ``metric`` (``train.loss`` or ``val.loss``); returns the axes."""
        if metric not in (TRAIN_LOSS, VAL_LOSS):
            raise ValueError(f"metric must be {TRAIN_LOSS!r} or {VAL_LOSS!r}, got {metric!r}")
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6.5, 3.5))
        return draw_curves(self.runs, ax, (metric,))

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
            "text/html": render_html(self.runs, f"sweep · {self.status}", self.metric),
        }

    def text(self) -> str:
        """The table as aligned plain text."""
        lines = [f"sweep · {self.status} · {len(self.runs)} run(s) · ranked by {self.metric}"]
        for run in self.ranked:
            lines.append(f"  {run.name:<40} {run.status:<11} {_row_losses(run)}")
            if run.error:
                lines.append(f"      {run.error.splitlines()[0]}")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _row_losses(run: SweepRun) -> str:
    return f"step {run.steps} · loss {_fmt(run.train_loss)} · val {_fmt(run.best_val_loss)}"


def render_html(runs: Sequence[SweepRun], title: str, metric: str) -> str:
    """The runs as an HTML table (every user string escaped), best first."""
    colors = {"completed": "#2e7d32", "interrupted": "#ef6c00", "failed": "#c62828"}
    order = {id(r): i for i, r in enumerate(runs)}
    rows = []
    for run in sorted(runs, key=_sort_key(metric)):
        swatch = f"<span style='color:{color(order[id(run)])}'>■</span>"
        status = html.escape(run.status)
        if run.error:
            status = f"<span title='{html.escape(run.error, quote=True)}'>{status} ⓘ</span>"
        cells = [
            f"{swatch} {html.escape(run.label)}",
            f"<span style='color:{colors.get(run.status, '#1565c0')}'>{status}</span>",
            str(run.steps),
            _fmt(run.train_loss),
            _fmt(run.best_val_loss),
            f"{run.seconds:.1f}s",
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>" for h in ("run", "status", "steps", "train loss", "best val loss", "time")
    )
    return (
        f"<div><div style='font-weight:600'>{html.escape(title)} · ranked by "
        f"{html.escape(metric)}</div><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
