"""``JobMonitor``: the status and loss curve of a local run or a remote job, with its buttons."""

from __future__ import annotations

import html
import io
from typing import Any

import ipywidgets as w

from synth_lab.errors import SynthLabError
from synth_lab.widgets._base import WidgetView


def loss_png(points: Any, *, title: str | None = None) -> bytes:
    """The loss plot of metric points as PNG bytes (Agg canvas; no pyplot state is touched).

    Args:
        points: What :func:`synth_lab.train.plot.plot_losses` takes.
        title: Optional title.

    Returns:
        The PNG image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from synth_lab.train.plot import plot_losses

    fig = Figure(figsize=(6, 3), dpi=90)
    FigureCanvasAgg(fig)
    plot_losses(points, ax=fig.add_subplot(1, 1, 1), title=title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _last_loss(points: Any, name: str) -> float | None:
    value = None
    for point in points:
        row = point if isinstance(point, dict) else point.to_dict()
        if row.get("name") == name and row.get("value") is not None:
            value = float(row["value"])
    return value


class JobMonitor(WidgetView):
    """Status, loss plot and buttons for a :class:`TrainResult` or a :class:`RemoteJob`.

    Anything with ``status`` and ``points`` works; ``refresh()`` and ``cancel()`` are used when
    the object has them (a remote job). Errors from those requests are shown in the status line.

    Args:
        job: The run result or remote job.

    Attributes:
        status: The status line (``HTML``).
        image: The loss plot (``Image``, PNG).
        refresh_button: Reads the job again (remote) and redraws.
        cancel_button: Cancels a remote job; hidden for local results, disabled when done.
        widget: The root widget.
    """

    def __init__(self, job: Any) -> None:
        self.job = job
        self.error: str | None = None
        self.status = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(max_width="640px"))
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

    @property
    def done(self) -> bool:
        """Whether the job has finished (a local result always has)."""
        done = getattr(self.job, "done", True)
        return bool(done() if callable(done) else done)

    def refresh(self) -> None:
        """Read the job again (when it can be) and redraw."""
        refresh = getattr(self.job, "refresh", None)
        self._request(refresh)

    def cancel(self) -> None:
        """Cancel the job on the server and redraw."""
        if not self.done:
            self._request(getattr(self.job, "cancel", None))

    def _request(self, call: Any) -> None:
        self.error = None
        if callable(call):
            try:
                call()
            except SynthLabError as exc:  # a failed poll is shown, not lost in a callback log
                self.error = exc.message
        self.redraw()

    def status_text(self) -> str:
        """The status line as plain text."""
        job = self.job
        parts = [f"job {job.id}" if getattr(job, "id", None) else "run", str(job.status)]
        steps = getattr(job, "steps", None)
        if steps is not None:
            parts.append(f"{steps:,} steps")
        for name, label in (("train.loss", "train loss"), ("val.loss", "val loss")):
            value = _last_loss(job.points, name)
            if value is not None:
                parts.append(f"{label} {value:.4f}")
        return " · ".join(parts)

    def redraw(self) -> None:
        """Redraw the status line, the plot and the buttons from what the job holds."""
        text = f"<b>{html.escape(self.status_text())}</b>"
        if self.error:
            text += f'<br><span style="color:#a00">{html.escape(self.error)}</span>'
        self.status.value = text
        self.image.value = loss_png(self.job.points)
        self.cancel_button.disabled = self.done
