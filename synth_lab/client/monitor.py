"""The live view of a remote job: the local trainer's view, fed from the API.

Local and remote runs look the same: the same status line (status, step/total, train/val loss,
ETA, elapsed), progress bar and loss plot (:class:`synth_lab.train.live.LiveView` in a
notebook, :class:`~synth_lab.train.live.TextLogger` in a terminal). The step count and total
come from events (``sft.training.started``, ``sft.progress``); the curves from metric points.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from synth_lab.client.jobs import SHOWN_EVENTS
from synth_lab.status import Status

_ANNOUNCED = frozenset(
    {"sft.job.failed", "sft.job.resumed", "sft.compute.adjusted", "sft.job.cancelled"}
)


def make_view(live: bool | None, stream: TextIO | None = None) -> Any:
    """A notebook view (``live=True``, or ``None`` in a notebook), a text logger, or ``None``.

    ``live=False`` shows nothing.
    """
    if live is False:
        return None
    from synth_lab._notebook import in_notebook
    from synth_lab.train.live import LiveView, TextLogger

    if live or in_notebook():
        return LiveView()
    return TextLogger(stream or sys.stderr, every_s=5.0)


class RemoteMonitor:
    """Feeds a view (``start(info)``, ``update(points, status)``, ``finish(status)``) from polls.

    Args:
        view: The view, or ``None`` for no output.
        job_id: Shown in the title.
        stream: Where notable events are announced in text mode (default stderr).
    """

    def __init__(self, view: Any, job_id: str, stream: TextIO | None = None) -> None:
        self.view = view
        self.job_id = job_id
        self.stream = stream or sys.stderr
        self.total_steps = 0
        self.start_step = 0
        self.step = 0
        self.started = False
        self.finished = False
        self._text = view is not None and not hasattr(view, "frame")

    def update(
        self,
        doc: dict[str, Any],
        status: str,
        events: list[dict[str, Any]],
        points: list[dict[str, Any]],
    ) -> None:
        """Show what is new: ``doc`` is the job document, ``events``/``points`` the new ones."""
        for event in events:
            data = event.get("data") or {}
            if event.get("type") == "sft.training.started":
                self.start_step = int(data.get("start_step") or 0)
            if data.get("total_steps"):
                self.total_steps = int(data["total_steps"])
            if event.get("type") == "sft.progress" and data.get("step") is not None:
                self.step = max(self.step, int(data["step"]))
            if self._text and event.get("type") in _ANNOUNCED:
                print(f"[{self.job_id}] {event.get('message', '')}", file=self.stream, flush=True)
        if self.view is None:
            return
        if not self.started and (self.total_steps or points):
            self._start(doc)
        if not self.started:
            return
        from synth_lab.train.metrics import MetricPoint

        self.view.update(
            [MetricPoint.from_dict(p) for p in points],
            Status.parse(status),
            step=self.step,
            total=self.total_steps or None,
        )

    def _start(self, doc: dict[str, Any]) -> None:
        from synth_lab.train.metrics import RunInfo

        compute = ((doc.get("metadata") or {}).get("effective_config") or {}).get("compute") or {}
        info = RunInfo(
            total_steps=self.total_steps,
            start_step=self.start_step,
            model=f"{doc.get('model', '?')} (remote job {self.job_id})",
            mode=str(compute.get("gpu_type") or "remote"),
            world_size=int(compute.get("gpu_count") or 1),
        )
        self.view.start(info)
        self.started = True

    def finish(self, status: str) -> None:
        """The job ended (or watching stopped) with ``status``."""
        if self.view is None or self.finished:
            return
        self.finished = True
        if not self.started:
            self._start({})
        self.view.finish(Status.parse(status))


def visible(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events worth showing (progress, validation, start/finish, failures)."""
    return [e for e in events if e.get("type") in SHOWN_EVENTS]
