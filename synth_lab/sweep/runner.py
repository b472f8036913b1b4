"""``run_sweep``: train every point of a grid in turn, here or on the learning API."""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from synth_lab.config import SFTConfig, load_config
from synth_lab.sweep.grid import SweepPoint, grid
from synth_lab.sweep.result import (
    TRAIN_LOSS,
    VAL_LOSS,
    SweepResult,
    SweepRun,
    draw_curves,
    render_html,
)


def run_sweep(
    base: SFTConfig | str | os.PathLike[str],
    axes_or_points: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any] | SweepPoint],
    dataset: Any = None,
    *,
    output_dir: str | os.PathLike[str] = "runs/sweep",
    max_steps: int | None = None,
    validation_dataset: Any = None,
    seed: int = 0,
    live: bool | None = None,
    remote: bool = False,
    backend: str | None = None,
    logger: Any = None,
    evaluation: Any = None,
) -> SweepResult:
    """Train one run per sweep point, one after the other, and compare them.

    Every point is validated before the first run starts. A run that fails is recorded as
    ``failed`` with its error and the sweep goes on; an interrupt (Ctrl-C, the notebook's stop
    button) ends the sweep after keeping what finished, marked ``interrupted``.

    Args:
        base: The config every point starts from (config, TOML path or TOML text).
        axes_or_points: ``{"dotted.key": [values]}`` axes (their product), a list of override
            dicts, or points from :func:`~synth_lab.sweep.grid`.
        dataset: Training data, as for :func:`synth_lab.train.run` (default: ``[job].data``).
        output_dir: Sweep folder; local run ``i`` writes into ``output_dir/<point name>``.
        max_steps: Optimizer steps per local run (remote runs use the config).
        validation_dataset: Validation data (default: ``[data].validation_path``).
        seed: Seed of every local run (the same for all, so only the overrides differ).
        live: Show a live table and loss plot (default: when running in a notebook).
        remote: Submit each point to the learning API and wait for it, instead of training here.
        backend: The learning API base URL for ``remote`` (default from the environment).
        logger: Extra metric logger(s) for every local run (see :func:`synth_lab.train.run`).
        evaluation: Score each local run's generations on the validation data (metric
            ``eval.score``), as ``evaluation`` of :func:`synth_lab.train.run`.

    Returns:
        A :class:`SweepResult` (``completed`` or ``interrupted``).

    Raises:
        ConfigError: A point gives an invalid config (nothing was run).
    """
    config = load_config(base)
    if isinstance(axes_or_points, Sequence) and all(
        isinstance(p, SweepPoint) for p in axes_or_points
    ):
        points = list(axes_or_points)
    else:
        points = grid(config, axes_or_points)  # type: ignore[arg-type]
    root = Path(output_dir).expanduser().resolve()
    sweep = SweepResult([SweepRun(p) for p in points], output_dir=None if remote else root)
    view = None
    if live or (live is None and _in_notebook()):
        view = SweepView(sweep)
    for run in sweep.runs:
        run.status = "running"
        if view:
            view.draw(force=True)
        began = time.monotonic()
        try:
            if remote:
                _run_remote(run, dataset, validation_dataset, backend)
            else:
                run.output_dir = root / run.name
                extra = [lg for lg in (logger, _Feed(run, view)) if lg is not None]
                _run_local(run, dataset, validation_dataset, max_steps, seed, extra, evaluation)
        except KeyboardInterrupt:
            run.status = "interrupted"
        except Exception as exc:  # one bad run must not lose the sweep
            run.status = "failed"
            run.error = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
        finally:
            run.seconds = time.monotonic() - began
        if run.status == "interrupted":
            sweep.status = "interrupted"
            break
    if view:
        view.draw(force=True)
    return sweep


def _run_local(
    run: SweepRun,
    dataset: Any,
    validation_dataset: Any,
    max_steps: int | None,
    seed: int,
    loggers: list[Any],
    evaluation: Any = None,
) -> None:
    from synth_lab.train import run as train

    result = train(
        run.point.config,
        dataset,
        output_dir=run.output_dir,  # type: ignore[arg-type]
        max_steps=max_steps,
        live=False,
        logger=loggers,
        validation_dataset=validation_dataset,
        seed=seed,
        evaluation=evaluation,
    )
    run.result, run.status = result, result.status


def _run_remote(run: SweepRun, dataset: Any, validation_dataset: Any, backend: str | None) -> None:
    from synth_lab.client.remote import submit

    job = submit(
        run.point.config,
        dataset,
        validation_dataset=validation_dataset,
        backend=backend,
        wait=True,
        live=False,
    )
    run.result = job
    if job.interrupted:
        run.status = "interrupted"
    else:
        run.status = "completed" if job.succeeded else job.status or "unknown"


class _Feed:
    """A metric logger that keeps a running run's points and redraws the sweep view."""

    def __init__(self, run: SweepRun, view: SweepView | None) -> None:
        self.run = run
        self.view = view

    def log(self, points: Sequence[Any]) -> None:
        self.run.live_points.extend(points)
        if self.view:
            self.view.draw(force=False)


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
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.5, 3.2), dpi=90)
        FigureCanvasAgg(fig)
        draw_curves(self.sweep.runs, fig.add_subplot(1, 1, 1), (TRAIN_LOSS, VAL_LOSS))
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return base64.b64encode(buffer.getvalue()).decode("ascii")


class _Frame:
    """One rendering of the live sweep, as a rich display object."""

    def __init__(self, sweep: SweepResult, png: str | None) -> None:
        self.text = sweep.text()
        done = sum(r.status not in ("pending", "running") for r in sweep.runs)
        title = f"sweep · {done}/{len(sweep.runs)} run(s) done"
        self.html = render_html(sweep.runs, title, sweep.metric)
        if png:
            self.html += f"<img src='data:image/png;base64,{png}'/>"

    def __repr__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, **_: Any) -> dict[str, str]:
        return {"text/plain": self.text, "text/html": self.html}


def _in_notebook() -> bool:
    from synth_lab.train.live import in_notebook

    return in_notebook()
