"""Progress while training: a live notebook view, and a plain text logger for terminals.

:class:`LiveView` is a logger. It owns one IPython display handle (``display_id``) and redraws
it in place: a status line, a progress bar with ETA and tokens/s, and the train/val loss plot,
rendered to PNG with the Agg backend (no ``plt.show()``, no GUI). Redraws are throttled, and the
plot interval stretches when rendering is slow, so the view never costs more than a sliver of
training time.
"""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from synth_lab._html import escape, no_math
from synth_lab.status import Status, render
from synth_lab.train.metrics import (
    TRAIN_LOSS,
    TRAIN_TOKENS_PER_SECOND,
    VAL_LOSS,
    BaseLogger,
    MetricPoint,
    RunInfo,
)


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class _Progress:
    """What the views show, computed from the points seen so far."""

    def __init__(self) -> None:
        self.points: list[MetricPoint] = []
        self.total = 0
        self.start_step = 0
        self.step = 0
        self.status = Status.QUEUED
        self.title = ""
        self.started = time.monotonic()
        self.latest: dict[str, float] = {}
        self.note = ""

    def start(self, info: RunInfo, history: Sequence[MetricPoint] = ()) -> None:
        self.total, self.start_step, self.step = info.total_steps, info.start_step, info.start_step
        # a resumed run shows the steps before its checkpoint too (those after it are redone)
        self.points = [p for p in history if p.step <= info.start_step]
        for p in self.points:
            self.latest[p.name] = p.value
        self.title = f"{info.model} · {info.mode} · {info.world_size} process(es)"
        self.status = Status.RUNNING
        self.started = time.monotonic()

    def add(self, points: Sequence[MetricPoint]) -> None:
        self.points.extend(points)
        for p in points:
            self.latest[p.name] = p.value
            self.step = max(self.step, p.step)

    def update(self, status: object, step: int | None, total: int | None) -> None:
        if total:
            self.total = total
        if step is not None:
            self.step = max(self.step, step)
        if status is not None:
            self.status = Status.parse(status)

    def eta(self) -> float | None:
        done = self.step - self.start_step
        if done <= 0 or not self.total:
            return None
        return (time.monotonic() - self.started) / done * (self.total - self.step)

    def line(self) -> str:
        parts = [render(self.status).label, f"step {self.step}/{self.total or '?'}"]
        if TRAIN_LOSS in self.latest:
            parts.append(f"loss {self.latest[TRAIN_LOSS]:.4f}")
        if VAL_LOSS in self.latest:
            parts.append(f"val {self.latest[VAL_LOSS]:.4f}")
        if TRAIN_TOKENS_PER_SECOND in self.latest:
            parts.append(f"{self.latest[TRAIN_TOKENS_PER_SECOND]:,.0f} tok/s")
        eta = self.eta()
        if eta is not None and self.status is Status.RUNNING:
            parts.append(f"ETA {_duration(eta)}")
        parts.append(f"elapsed {_duration(time.monotonic() - self.started)}")
        return " · ".join(parts)


class _Frame:
    """One rendering of the view, as a rich display object."""

    def __init__(self, progress: _Progress, png: str | None) -> None:
        self.line = progress.line()
        self.title = progress.title
        self.fraction = progress.step / progress.total if progress.total else 0.0
        self.status = progress.status
        self.note = progress.note
        self.png = png

    def _repr_mimebundle_(self, **_: Any) -> dict[str, str]:
        color = render(self.status).color
        bar = (
            "<div style='background:#e0e0e0;border-radius:3px;height:10px;width:100%;"
            "max-width:600px'>"
            f"<div style='background:{color};height:10px;border-radius:3px;"
            f"width:{100 * min(1.0, self.fraction):.1f}%'></div></div>"
        )
        img = f"<img src='data:image/png;base64,{self.png}'/>" if self.png else ""
        style = "font-family:monospace;white-space:pre-wrap;margin-top:4px"
        note = f"<div style='{style}'>{escape(self.note)}</div>" if self.note else ""
        body = (
            f"<div><div style='font-weight:600'>{escape(self.title)}</div>"
            f"<div style='font-family:monospace'>{escape(self.line)}</div>{bar}{note}{img}"
            "</div>"
        )
        text = f"{self.line}\n{self.note}" if self.note else self.line
        return {"text/plain": text, "text/html": no_math(body)}


class _View(BaseLogger):
    """The live-view protocol both views share: ``start``, ``update``, ``finish``."""

    progress: _Progress

    def update(
        self,
        points: Sequence[MetricPoint] = (),
        status: object = None,
        *,
        step: int | None = None,
        total: int | None = None,
    ) -> None:
        """New points, and what else is known of the run (a remote job's view is fed this way).

        Args:
            points: New metric points.
            status: The run's status, in any word :meth:`Status.parse` reads.
            step: The latest step, when known apart from the points.
            total: The total number of steps, when known.
        """
        self.progress.update(status, step, total)
        self.log(points)


class LiveView(_View):
    """Live status, progress and loss plot in one notebook output, updated in place.

    The plot appears with the first loss point (never empty axes); a second panel shows the
    learning rate and the gradient norm once they are logged.

    Args:
        min_interval: Seconds between redraws at the least.
        plot: Draw the loss plot (the status line and bar are always shown).
        display: The display function (default: ``IPython.display.display``).
        history: Points of the run so far (a resumed run's ``metrics.jsonl``); those up to
            the step it resumes from are shown with the new ones.
    """

    def __init__(
        self,
        *,
        min_interval: float = 0.5,
        plot: bool = True,
        display: Any = None,
        history: Sequence[MetricPoint] = (),
    ) -> None:
        self.progress = _Progress()
        self._history = list(history)
        self._display = display
        self.min_interval = min_interval
        self.plot = plot
        self._handle: Any = None
        self._last_draw = 0.0
        self._last_plot = 0.0
        self._plot_cost = 0.0
        self._png: str | None = None
        self._shown = False

    def start(self, info: RunInfo) -> None:
        self.progress.start(info, self._history)
        self._draw(force=True)

    def log(self, points: Sequence[MetricPoint]) -> None:
        self.progress.add(points)
        self._draw(force=any(p.name == VAL_LOSS for p in points))

    def finish(self, status: str) -> None:
        self.progress.status = Status.parse(status)
        self._draw(force=True)

    def annotate(self, note: str) -> None:
        """Show ``note`` under the progress bar (e.g. where an interrupted run can resume)."""
        self.progress.note = note
        self._draw(force=True)

    def _render_png(self) -> str | None:
        from synth_lab.plots import loss_png

        png = loss_png(self.progress.points, schedule=True)
        return None if png is None else base64.b64encode(png).decode("ascii")

    def frame(self) -> _Frame:
        """The current rendering (what the display handle shows)."""
        return _Frame(self.progress, self._png)

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval:
            return
        if self._handle is None and self._shown and not force:
            return  # no display handle (not a notebook): show only starts, evaluations, end
        # Rendering the figure is the costly part: keep it under ~10% of wall time.
        plot_due = now - self._last_plot >= max(self.min_interval, 10 * self._plot_cost)
        first = self._png is None and any(
            p.name in (TRAIN_LOSS, VAL_LOSS) for p in self.progress.points
        )
        if self.plot and (force or plot_due or first):
            began = time.monotonic()
            self._png = self._render_png()
            self._plot_cost = time.monotonic() - began
            self._last_plot = time.monotonic()
        self._last_draw = time.monotonic()
        self._handle = show(self.frame(), self._handle, self._display)
        self._shown = True


def show(frame: Any, handle: Any = None, display: Any = None) -> Any:
    """Show ``frame`` in the cell: update ``handle`` if there is one, else display ``frame``
    with a display id (``display`` defaults to IPython's) and return the new handle."""
    if handle is not None:
        handle.update(frame)
        return handle
    if display is None:
        from IPython.display import display
    return display(frame, display_id=True)


class TextLogger(_View):
    """One progress line every ``every_s`` seconds (and at evaluations), for terminals."""

    def __init__(self, stream: TextIO | None = None, *, every_s: float = 2.0) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.progress = _Progress()
        self._last = 0.0

    def start(self, info: RunInfo) -> None:
        self.progress.start(info)
        print(f"training {self.progress.title}: {info.total_steps} steps", file=self.stream)

    def log(self, points: Sequence[MetricPoint]) -> None:
        self.progress.add(points)
        now = time.monotonic()
        if now - self._last >= self.every_s or any(p.name == VAL_LOSS for p in points):
            self._last = now
            print(self.progress.line(), file=self.stream, flush=True)

    def finish(self, status: str) -> None:
        self.progress.status = Status.parse(status)
        print(self.progress.line(), file=self.stream, flush=True)
