"""The loss plot, drawn the same way for local points and for points read from the remote API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from synth_lab._deps import require
from synth_lab.train.metrics import TRAIN_GRAD_NORM, TRAIN_LOSS, TRAIN_LR, VAL_LOSS, MetricPoint

_STYLE = {
    TRAIN_LOSS: {"color": "tab:blue", "label": "train loss", "linewidth": 1.2},
    VAL_LOSS: {"color": "tab:orange", "label": "val loss", "marker": "o", "linewidth": 1.5},
}


def _series(
    points: Any, names: tuple[str, ...] = (TRAIN_LOSS, VAL_LOSS)
) -> dict[str, tuple[list[int], list[float]]]:
    """``{name: (steps, values)}`` for the loss names, last value per step winning.

    A resumed run may log a step twice (the steps after its last checkpoint); like the remote
    API's de-duplication by ``(name, step)``, the later point replaces the earlier.
    """
    if hasattr(points, "to_dict") and hasattr(points, "columns"):  # a DataFrame
        rows: Iterable[Mapping[str, Any]] = points.to_dict("records")
    else:
        rows = (p.to_dict() if isinstance(p, MetricPoint) else p for p in points)
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
        points: Metric points: :class:`MetricPoint` objects, dicts with ``name``, ``value``
            and ``step`` (a ``metrics.jsonl`` line, a remote API point), or a DataFrame with
            those columns.
        ax: The matplotlib axes to draw on; a new figure's axes when ``None``.
        title: Optional title.

    Returns:
        The axes.
    """
    if ax is None:
        require("matplotlib", "Plotting", "notebook")
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.2))
    series = _series(points)
    drawn = False
    for name, (steps, values) in series.items():
        if steps:
            ax.plot(steps, values, **_STYLE[name])
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
        points: Metric points, as for :func:`plot_losses`.
        ax: The matplotlib axes to draw on; a new figure's axes when ``None``.

    Returns:
        The axes (the gradient norm is on its twin).
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 2))
    series = _series(points, (TRAIN_LR, TRAIN_GRAD_NORM))
    steps, values = series[TRAIN_LR]
    if steps:
        ax.plot(steps, values, color="tab:green", linewidth=1.2, label="learning rate")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.set_ylabel("learning rate", color="tab:green")
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    steps, values = series[TRAIN_GRAD_NORM]
    if steps:
        twin = ax.twinx()
        twin.plot(steps, values, color="tab:purple", linewidth=1.0, alpha=0.8)
        twin.set_ylabel("grad norm", color="tab:purple")
    return ax
