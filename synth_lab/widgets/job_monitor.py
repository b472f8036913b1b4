"""``JobMonitor``: the status and loss curve of a local run or a remote job, with its buttons."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import ipywidgets as w

from synth_lab._html import escape
from synth_lab.errors import SynthLabError
from synth_lab.plots import loss_png
from synth_lab.status import render
from synth_lab.train.metrics import TRAIN_LOSS, VAL_LOSS
from synth_lab.widgets._base import WidgetView


def _rows(points: Any) -> list[dict[str, Any]]:
    return [p if isinstance(p, dict) else p.to_dict() for p in points]


def _last_loss(points: Any, name: str) -> float | None:
    value = None
    for row in _rows(points):
        if row.get("name") == name and row.get("value") is not None:
            value = float(row["value"])
    return value


def _seconds(stamp: Any) -> float | None:
    """Unix seconds of a point's ``created_at`` (a number locally, ISO 8601 text remotely)."""
    if isinstance(stamp, (int, float)):
        return float(stamp)
    if isinstance(stamp, str) and stamp:
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def progress_of(job: Any) -> tuple[int, int | None, float | None]:
    """``(step, total_steps, eta_seconds)`` of a run or job, from what it holds.

    The step is the newest point's (or the run's step count); the total comes from a local
    run's summary or a remote job's events; the ETA from the pace between the first and the
    newest loss point, while the job runs.
    """
    rows = [r for r in _rows(job.points) if r.get("name") == TRAIN_LOSS]
    step = max([int(r.get("step") or 0) for r in rows] + [int(getattr(job, "steps", 0) or 0)])
    total = (getattr(job, "summary", None) or {}).get("total_steps")
    for event in getattr(job, "all_events", ()) or ():
        data = event.get("data") or {}
        if data.get("total_steps"):
            total = int(data["total_steps"])
    eta = None
    times = [(int(r.get("step") or 0), _seconds(r.get("created_at"))) for r in rows]
    times = [(s, t) for s, t in times if t is not None]
    if total and len(times) >= 2 and times[-1][0] > times[0][0]:
        pace = (times[-1][1] - times[0][1]) / (times[-1][0] - times[0][0])
        eta = max(0.0, pace * (total - step))
    return step, total, eta


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class JobMonitor(WidgetView):
    """Status, loss plot and buttons for a :class:`TrainResult` or a :class:`RemoteJob`.

    Anything with ``status`` and ``points`` works; ``refresh()`` and ``cancel()`` are used when
    the object has them (a remote job). A job that is still running is read again every
    ``interval`` seconds from a background thread until it ends (:meth:`stop` ends that
    sooner). Errors from those requests are shown in the status line. The plot appears with
    the first loss point.

    Args:
        job: The run result or remote job.
        interval: Seconds between automatic refreshes; ``None`` for none (the button stays).

    Attributes:
        status: The status line (``HTML``): status, step/total, ETA, losses.
        image: The loss plot (``Image``, PNG; hidden until there are points).
        refresh_button: Reads the job again (remote) and redraws.
        cancel_button: Cancels a remote job; hidden for local results, disabled when done.
        widget: The root widget.
    """

    def __init__(self, job: Any, *, interval: float | None = 2.0) -> None:
        self.job = job
        self.error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(max_width="640px", display="none"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.cancel_button = w.Button(description="Cancel job", icon="stop", button_style="danger")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.cancel_button.on_click(lambda _: self.cancel())
        buttons = [self.refresh_button]
        if callable(getattr(job, "cancel", None)):
            buttons.append(self.cancel_button)
        else:
            self.cancel_button.layout.display = "none"
        self.widget = w.VBox([self.status, self.image, w.HBox(buttons)])
        self.redraw()
        if interval and not self.done and callable(getattr(job, "refresh", None)):
            self._thread = threading.Thread(
                target=self._follow, args=(interval,), name="synth-lab-monitor", daemon=True
            )
            self._thread.start()

    @property
    def done(self) -> bool:
        """Whether the job has finished (a local result always has)."""
        done = getattr(self.job, "done", True)
        return bool(done() if callable(done) else done)

    @property
    def following(self) -> bool:
        """Whether the automatic refresh is running."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop refreshing automatically (the Refresh button still works)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the automatic refresh ends (the job ended, or :meth:`stop`)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _follow(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.refresh()
            if self.done or self.error:
                break

    def refresh(self) -> None:
        """Read the job again (when it can be) and redraw."""
        refresh = getattr(self.job, "refresh", None)
        self._request(refresh)

    def cancel(self) -> None:
        """Cancel the job on the server and redraw."""
        if not self.done:
            self._request(getattr(self.job, "cancel", None))

    def _request(self, call: Any) -> None:
        with self._lock:  # the button and the automatic refresh never read the job at once
            self.error = None
            if callable(call):
                try:
                    call()
                except SynthLabError as exc:  # a failed poll is shown, not lost in a log
                    self.error = exc.message
            self.redraw()

    def status_text(self) -> str:
        """The status line as plain text."""
        job = self.job
        label = render(job.status).label
        parts = [f"job {job.id}" if getattr(job, "id", None) else "run", label]
        step, total, eta = progress_of(job)
        parts.append(f"step {step:,}/{total:,}" if total else f"{step:,} steps")
        if eta is not None and not self.done:
            parts.append(f"ETA {_duration(eta)}")
        for name, label in ((TRAIN_LOSS, "train loss"), (VAL_LOSS, "val loss")):
            value = _last_loss(job.points, name)
            if value is not None:
                parts.append(f"{label} {value:.4f}")
        if _last_loss(job.points, TRAIN_LOSS) is None and not self.done:
            parts.append("waiting for the first loss point")
        return " · ".join(parts)

    def redraw(self) -> None:
        """Redraw the status line, the plot and the buttons from what the job holds."""
        # the status's colour, as the live view's bar and the sweep table show it
        color = render(self.job.status).color
        dot = f'<span style="color:{color}">&#9679;</span>'
        text = f"<b>{dot} {escape(self.status_text())}</b>"
        if self.error:
            text += f'<br><span style="color:#a00">{escape(self.error)}</span>'
        self.status.value = text
        png = loss_png(self.job.points)
        if png is not None:
            self.image.value = png
            self.image.layout.display = None
        self.cancel_button.disabled = self.done
