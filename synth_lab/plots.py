"""Every plot synth-lab draws, and the one way a figure becomes PNG bytes.

Loss curves, the learning-rate schedule, a sweep's curves and length histograms are drawn here,
the same way for local points and points read from the remote API. Each ``plot_*`` function
takes ``ax=None`` (a new pyplot figure's axes then), draws on it and returns it; none calls
``plt.show()``. Live views and widgets draw on :func:`figure` (an Agg figure pyplot never sees)
and send :func:`figure_png`'s bytes. matplotlib is imported only when something is drawn.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from synth_lab._deps import require
from synth_lab.metrics import TRAIN_GRAD_NORM, TRAIN_LOSS, TRAIN_LR, VAL_LOSS

__all__ = [
    "figure",
    "figure_png",
    "loss_png",
    "plot_histogram",
    "plot_losses",
    "plot_runs",
    "plot_schedule",
    "run_color",
    "series",
]

# matplotlib's tab10 cycle as hex: browsers know no ``tab:red`` (a swatch styled with it renders
# black), and matplotlib takes hex too, so a plot and an HTML legend share one value.
_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)

_LOSS_STYLE = {
    TRAIN_LOSS: {"color": "tab:blue", "label": "train loss", "linewidth": 1.2},
    VAL_LOSS: {"color": "tab:orange", "label": "val loss", "marker": "o", "linewidth": 1.5},
}


def run_color(index: int) -> str:
    """The color of run ``index`` (matplotlib's tab10 cycle, as CSS hex), the same in every
    view."""
    return _COLORS[index % len(_COLORS)]


def figure(width: float, height: float, *, dpi: int = 90) -> Any:
    """A figure on an Agg canvas that pyplot does not manage (nothing to close, no GUI).

    Its layout is tight, so labels fit whatever is drawn on it.
    """
    require("matplotlib", "Plotting", "notebook")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, layout="tight")
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Any) -> bytes:
    """``fig`` as PNG bytes; a pyplot figure is closed afterwards, so none piles up.

    Args:
        fig: A matplotlib figure (from :func:`figure`, or pyplot's).

    Returns:
        The PNG image.
    """
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")  # never import pyplot only to close
        if pyplot is not None:
            pyplot.close(fig)


def _axes(ax: Any, width: float, height: float) -> Any:
    """``ax``, or the axes of a new pyplot figure (shown by the notebook's inline backend)."""
    if ax is not None:
        return ax
    require("matplotlib", "Plotting", "notebook")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))[1]


def series(points: Any, names: Sequence[str]) -> dict[str, tuple[list[int], list[float]]]:
    """``{name: (steps, values)}`` for ``names``, in step order, the last value per step winning.

    A resumed run may log a step twice (the steps after its last checkpoint); like the remote
    API's de-duplication by ``(name, step)``, the later point replaces the earlier.

    Args:
        points: Metric points: objects with ``to_dict()``, dicts with ``name``, ``value`` and
            ``step`` (a ``metrics.jsonl`` line, a remote API point), or a DataFrame with those
            columns.
        names: The metric names wanted.
    """
    if hasattr(points, "to_dict") and hasattr(points, "columns"):  # a DataFrame
        rows: Iterable[Mapping[str, Any]] = points.to_dict("records")
    else:
        rows = (p.to_dict() if hasattr(p, "to_dict") else p for p in points)
    by_name: dict[str, dict[int, float]] = {name: {} for name in names}
    for row in rows:
        name = row.get("name")
        if name in by_name and row.get("value") is not None:
            by_name[name][int(row.get("step") or 0)] = float(row["value"])
    out = {}
    for name, values in by_name.items():
        steps = sorted(values)
        out[name] = (steps, [values[s] for s in steps])
    return out


def plot_losses(points: Any, ax: Any = None, *, title: str | None = None) -> Any:
    """Draw ``train.loss`` and ``val.loss`` against the step.

    Args:
        points: Metric points, as :func:`series` reads them.
        ax: The matplotlib axes to draw on; a new figure's axes when ``None``.
        title: Optional title.

    Returns:
        The axes.
    """
    ax = _axes(ax, 6, 3.2)
    drawn = False
    for name, (steps, values) in series(points, (TRAIN_LOSS, VAL_LOSS)).items():
        if steps:
            style = dict(_LOSS_STYLE[name])
            if len(steps) == 1:  # a line through one point draws nothing
                style.setdefault("marker", "o")
            ax.plot(steps, values, **style)
            drawn = True
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    if drawn:
        ax.legend(loc="upper right", frameon=False)
    else:
        ax.text(0.5, 0.5, "no loss points yet", ha="center", va="center", transform=ax.transAxes)
    ax.grid(True, alpha=0.3)
    return ax


def plot_schedule(points: Any, ax: Any = None) -> Any:
    """Draw the learning rate (left axis) and the gradient norm (right axis) against the step.

    Args:
        points: Metric points, as :func:`series` reads them.
        ax: The matplotlib axes to draw on; a new figure's axes when ``None``.

    Returns:
        The axes (the gradient norm is on its twin).
    """
    ax = _axes(ax, 6, 2)
    found = series(points, (TRAIN_LR, TRAIN_GRAD_NORM))
    steps, values = found[TRAIN_LR]
    if steps:
        ax.plot(steps, values, color="tab:green", linewidth=1.2, label="learning rate")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.set_ylabel("learning rate", color="tab:green")
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    steps, values = found[TRAIN_GRAD_NORM]
    if steps:
        twin = ax.twinx()
        twin.plot(steps, values, color="tab:purple", linewidth=1.0, alpha=0.8)
        twin.set_ylabel("grad norm", color="tab:purple")
    return ax


def loss_png(points: Any, *, title: str | None = None, schedule: bool = False) -> bytes | None:
    """The loss plot of metric points as PNG bytes, or ``None`` before the first loss point.

    Args:
        points: Metric points, as :func:`series` reads them.
        title: Optional title.
        schedule: Add the learning rate and gradient norm under the losses when there are
            such points.
    """
    points = list(points)
    found = series(points, (TRAIN_LOSS, VAL_LOSS, TRAIN_LR, TRAIN_GRAD_NORM))
    if not (found[TRAIN_LOSS][0] or found[VAL_LOSS][0]):
        return None  # no axes until there is something to draw on them
    if schedule and (found[TRAIN_LR][0] or found[TRAIN_GRAD_NORM][0]):
        fig = figure(6, 4.4)
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1]})
        plot_losses(points, ax=top, title=title)
        top.set_xlabel("")
        plot_schedule(points, ax=bottom)
    else:
        fig = figure(6, 3)
        plot_losses(points, ax=fig.add_subplot(1, 1, 1), title=title)
    return figure_png(fig)


def plot_runs(runs: Sequence[Any], ax: Any = None, metrics: Sequence[str] = (TRAIN_LOSS,)) -> Any:
    """One line per run and metric: train loss solid, val loss dashed, a color per run.

    Args:
        runs: Runs with ``series(metric) -> (steps, values)`` and a ``label`` (a sweep's runs).
        ax: The matplotlib axes to draw on; a new figure's axes when ``None``.
        metrics: The metric names to draw.

    Returns:
        The axes.
    """
    ax = _axes(ax, 6.5, 3.5)
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
                color=run_color(index),
                linestyle="--" if val else "-",
                # one point draws no line; a few evaluations read better as dots
                marker="o" if len(steps) == 1 or (val and len(steps) < 20) else None,
                linewidth=1.4,
                label=run.label if not drawn or metric == metrics[0] else None,
            )
            drawn = True
    ax.set_xlabel("step")
    ax.set_ylabel(" / ".join(m.replace(".", " ") for m in metrics))
    if drawn:
        ax.legend(loc="upper right", frameon=False, fontsize="small")
    else:
        ax.text(0.5, 0.5, "no points yet", ha="center", va="center", transform=ax.transAxes)
    ax.grid(True, alpha=0.3)
    return ax


def plot_histogram(
    values: Sequence[float],
    ax: Any = None,
    *,
    xlabel: str,
    ylabel: str = "records",
    bins: int = 50,
    cutoff: float | None = None,
    cutoff_label: str = "",
    title: str | None = None,
) -> Any:
    """A histogram of ``values`` (record lengths), with an optional dashed cut-off line.

    Args:
        values: The values to count.
        ax: The matplotlib axes to draw on; a new figure's axes when ``None``.
        xlabel: The x axis label (``"tokens per record"``).
        ylabel: The y axis label.
        bins: Histogram bins.
        cutoff: Where to draw the cut-off (a sequence length), if anywhere.
        cutoff_label: The cut-off's legend entry.
        title: Optional title.

    Returns:
        The axes.
    """
    ax = _axes(ax, 7, 3.5)
    ax.hist(values, bins=bins, color="#4c72b0")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if cutoff is not None:
        ax.axvline(cutoff, color="#c44e52", linestyle="--", label=cutoff_label or None)
        if cutoff_label:
            ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    return ax
