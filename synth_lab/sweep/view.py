"""The live sweep view: one table of every run and one plot of their curves, updated in place."""

from __future__ import annotations

import base64
import time
from typing import Any

from synth_lab._html import no_math
from synth_lab.metrics import TRAIN_LOSS, VAL_LOSS
from synth_lab.status import Status
from synth_lab.sweep.result import SweepResult, render_html


class SweepView:
    """The live sweep: a table of runs and one plot of every run's losses, updated in place.

    Args:
        sweep: The sweep being run (read at each redraw).
        min_interval: Seconds between redraws while a run is going (starts and ends always
            redraw); the plot interval also stretches when rendering is slow.
        display: The display function (default: ``IPython.display.display``).
    """

    def __init__(self, sweep: SweepResult, *, min_interval: float = 1.0, display: Any = None):
        self.sweep = sweep
        self.min_interval = min_interval
        self._display = display
        self._handle: Any = None
        self._last = 0.0
        self._plot_cost = 0.0
        self._png: str | None = None

    def draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < max(self.min_interval, 10 * self._plot_cost):
            return
        began = time.monotonic()
        self._png = self._render_png()
        self._plot_cost = time.monotonic() - began
        self._last = time.monotonic()
        from synth_lab.train.live import show

        self._handle = show(self.frame(), self._handle, self._display)

    def frame(self) -> _Frame:
        """The current rendering."""
        return _Frame(self.sweep, self._png)

    def _render_png(self) -> str:
        from synth_lab.plots import figure, figure_png, plot_runs

        fig = figure(6.5, 3.2)
        plot_runs(self.sweep.runs, fig.add_subplot(1, 1, 1), (TRAIN_LOSS, VAL_LOSS))
        return base64.b64encode(figure_png(fig)).decode("ascii")


class _Frame:
    """One rendering of the live sweep, as a rich display object."""

    def __init__(self, sweep: SweepResult, png: str | None) -> None:
        self.text = sweep.text()
        done = sum(not Status.parse(r.status).active for r in sweep.runs)
        title = f"sweep · {done}/{len(sweep.runs)} run(s) done"
        self.html = render_html(sweep.runs, title, sweep.metric)
        if png:
            self.html += f"<img src='data:image/png;base64,{png}'/>"

    def __repr__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, **_: Any) -> dict[str, str]:
        return {"text/plain": self.text, "text/html": no_math(self.html)}
