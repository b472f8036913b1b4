"""The plotting module: one figure-to-PNG path, plot helpers that take ``ax`` and return it."""

from __future__ import annotations

import struct

import pytest
from test_imports import loaded_after

from synth_lab.metrics import TRAIN_GRAD_NORM, TRAIN_LOSS, TRAIN_LR, VAL_LOSS
from synth_lab.plots import (
    figure,
    figure_png,
    loss_png,
    plot_histogram,
    plot_losses,
    plot_runs,
    series,
)

pytest.importorskip("matplotlib")


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


def points(n: int = 5, *, schedule: bool = False) -> list[dict]:
    out = [{"name": TRAIN_LOSS, "value": 2.0 / s, "step": s} for s in range(1, n + 1)]
    out.append({"name": VAL_LOSS, "value": 1.5, "step": n})
    if schedule:
        out += [{"name": TRAIN_LR, "value": 1e-4 * s, "step": s} for s in range(1, n + 1)]
        out += [{"name": TRAIN_GRAD_NORM, "value": 0.5, "step": s} for s in range(1, n + 1)]
    return out


def test_rendering_to_png_never_touches_pyplot() -> None:
    code = (
        "import sys\n"
        "from synth_lab.plots import loss_png\n"
        "assert 'matplotlib' not in sys.modules\n"
        "png = loss_png([{'name': 'train.loss', 'value': 1.0, 'step': 1}])\n"
        "assert png.startswith(b'\\x89PNG') and 'matplotlib.pyplot' not in sys.modules\n"
    )
    assert loaded_after(code) == {"matplotlib"}


def test_figure_png_closes_a_pyplot_figure() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert plot_losses(points(), ax=ax) is ax
    assert plt.fignum_exists(fig.number)
    assert png_size(figure_png(fig)) == (
        int(fig.get_figwidth() * fig.dpi),
        int(fig.get_figheight() * fig.dpi),
    )
    assert not plt.fignum_exists(fig.number)


def test_loss_png_waits_for_a_loss_point_and_adds_the_schedule() -> None:
    assert loss_png([]) is None
    assert loss_png([{"name": TRAIN_LR, "value": 1e-4, "step": 1}]) is None
    plain = png_size(loss_png(points(schedule=True)))
    tall = png_size(loss_png(points(schedule=True), schedule=True))
    assert plain == (540, 270)  # 6 x 3 inches at 90 dpi
    assert tall[0] == plain[0] and tall[1] > plain[1]
    # without schedule points there is nothing to add under the losses
    assert png_size(loss_png(points(), schedule=True)) == plain


def test_series_keeps_the_last_value_of_a_repeated_step() -> None:
    rows = [*points(3), {"name": TRAIN_LOSS, "value": 9.0, "step": 2}]
    assert series(rows, (TRAIN_LOSS, TRAIN_LR)) == {
        TRAIN_LOSS: ([1, 2, 3], [2.0, 9.0, 2.0 / 3]),
        TRAIN_LR: ([], []),
    }


def test_plot_runs_draws_one_color_per_run() -> None:
    class Run:
        def __init__(self, label: str, scale: float) -> None:
            self.label = label
            self.scale = scale

        def series(self, metric: str) -> tuple[list[int], list[float]]:
            found = series(points(), (metric,))[metric]
            return found[0], [v * self.scale for v in found[1]]

    ax = figure(6, 3).add_subplot()
    assert plot_runs([Run("a", 1.0), Run("b", 2.0)], ax, (TRAIN_LOSS, VAL_LOSS)) is ax
    lines = ax.get_lines()
    assert len(lines) == 4
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_plot_histogram_draws_the_cut_off() -> None:
    ax = figure(6, 3).add_subplot()
    drawn = plot_histogram(
        [1, 2, 2, 3, 50], ax, xlabel="tokens per record", cutoff=10, cutoff_label="cut", title="t"
    )
    assert drawn is ax
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [10]
    assert ax.get_title() == "t" and ax.get_xlabel() == "tokens per record"
    assert sum(p.get_height() for p in ax.patches) == 5


def test_a_single_point_is_drawn_as_a_dot() -> None:
    ax = plot_losses([{"name": TRAIN_LOSS, "value": 2.0, "step": 1}], ax=figure(6, 3).add_subplot())
    assert [line.get_marker() for line in ax.get_lines()] == ["o"]
