"""Metric points, loggers, the loss plot and the live view (no training here)."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import pytest

from synth_lab.train.metrics import (
    POINT_COLUMNS,
    TRAIN_LOSS,
    TRAIN_LR,
    TRAIN_TOKENS_PER_SECOND,
    VAL_LOSS,
    CallbackLogger,
    JSONLLogger,
    LoggerGroup,
    MemoryLogger,
    MetricLogger,
    MetricPoint,
    RunInfo,
    as_logger,
    read_jsonl,
)


def points(n: int = 5) -> list[MetricPoint]:
    out = []
    for step in range(1, n + 1):
        out.append(MetricPoint(TRAIN_LOSS, 3.0 / step, step, step / n))
        out.append(MetricPoint(TRAIN_TOKENS_PER_SECOND, 1000.0 + step, step, step / n))
        if step % 2 == 0:
            out.append(MetricPoint(VAL_LOSS, 3.5 / step, step, step / n, "validation"))
    return out


def test_metrics_and_plot_modules_do_not_import_torch() -> None:
    code = (
        "import sys, synth_lab.train, synth_lab.train.metrics, synth_lab.plots\n"
        "print('matplotlib' in sys.modules)\n"
        "print('torch' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_point_round_trip_and_remote_shape() -> None:
    p = MetricPoint(VAL_LOSS, 1.25, 7, 0.5, "validation")
    data = p.to_dict()
    assert set(data) == set(POINT_COLUMNS)
    assert MetricPoint.from_dict(data) == p
    # A point as the remote API sends it (ISO created_at, extra keys) is accepted too.
    remote = {"name": "train.loss", "value": 2, "step": 3, "created_at": "2024-01-01T00:00:00Z"}
    q = MetricPoint.from_dict({**remote, "id": 9})
    assert (q.name, q.value, q.step, q.phase) == ("train.loss", 2.0, 3, "train")


def test_jsonl_logger_appends_and_reads_back(tmp_path) -> None:
    path = tmp_path / "run" / "metrics.jsonl"
    written = points(2)
    first = JSONLLogger(path)
    first.log(written)
    first.close()
    first.log(points(1))  # after close: ignored, not an error
    second = JSONLLogger(path)  # a resumed run appends
    second.log(points(1))
    second.close()
    with path.open("ab") as handle:
        handle.write(b'{"name": "train.lo')  # a torn last line is skipped
    read = read_jsonl(path)
    assert [p.step for p in read] == [1, 1, 2, 2, 2, 1, 1]
    assert read[: len(written)] == written


def test_memory_logger_frame_and_groups() -> None:
    memory = MemoryLogger()
    seen: list[MetricPoint] = []
    group = LoggerGroup([memory, CallbackLogger(seen.append), None])
    group.start(RunInfo(total_steps=5))
    group.log(points(4))
    group.finish("succeeded")
    group.close()
    assert isinstance(memory, MetricLogger)
    frame = memory.frame()
    assert list(frame.columns) == list(POINT_COLUMNS)
    assert len(frame) == len(seen) == len(points(4))
    assert frame.query("name == 'val.loss'").step.tolist() == [2, 4]


def test_as_logger_accepts_callables_lists_and_rejects_junk() -> None:
    got: list[Any] = []
    logger = as_logger([got.append, MemoryLogger()])
    logger.log(points(1))
    assert len(got) == 2
    assert as_logger(None) is None
    with pytest.raises(TypeError):
        as_logger(42)


def test_plot_losses_draws_local_and_remote_points_alike() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from synth_lab.plots import plot_losses

    local = points(6)
    remote = [p.to_dict() for p in local]  # what the remote API returns
    frame = MemoryLogger()
    frame.log(local)
    drawn = []
    for source in (local, remote, frame.frame()):
        ax = Figure().add_subplot()
        assert plot_losses(source, ax=ax) is ax
        drawn.append([(line.get_label(), list(line.get_xdata())) for line in ax.get_lines()])
    assert drawn[0] == drawn[1] == drawn[2]
    assert drawn[0] == [("train loss", [1, 2, 3, 4, 5, 6]), ("val loss", [2, 4, 6])]
    # A step logged twice (a resumed run) is drawn once, with the later value.
    ax = Figure().add_subplot()
    plot_losses([*local, MetricPoint(TRAIN_LOSS, 9.0, 6)], ax=ax)
    assert list(ax.get_lines()[0].get_ydata())[-1] == 9.0
    empty = plot_losses([], ax=Figure().add_subplot())
    assert empty.texts and "no loss" in empty.texts[0].get_text()


class FakeHandle:
    def __init__(self, sink: list[Any]) -> None:
        self.sink = sink

    def update(self, obj: Any) -> None:
        self.sink.append(obj)


def test_live_view_updates_one_display_in_place() -> None:
    from synth_lab.train.live import LiveView

    shown: list[Any] = []
    calls: list[dict[str, Any]] = []

    def display(obj: Any, **kwargs: Any) -> FakeHandle:
        calls.append(kwargs)
        shown.append(obj)
        return FakeHandle(shown)

    view = LiveView(min_interval=3600, display=display)  # throttled: only forced redraws
    view.start(RunInfo(total_steps=10, model="m", mode="lora"))
    for p in points(6):
        view.log([p])
    view.finish("succeeded")
    assert calls == [{"display_id": True}]  # displayed once, then updated in place
    # start, the 3 evaluations (forced), finish: never once per training point.
    assert len(shown) == 5
    bundle = shown[-1]._repr_mimebundle_()
    assert "succeeded" in bundle["text/plain"] and "step 6/10" in bundle["text/plain"]
    assert "data:image/png;base64," in bundle["text/html"]
    assert "1,006 tok/s" in bundle["text/plain"]


def test_live_view_escapes_html_and_text_logger_prints_progress() -> None:
    from synth_lab.train.live import LiveView, TextLogger

    shown: list[Any] = []
    view = LiveView(plot=False, display=lambda obj, **_: shown.append(obj) or FakeHandle(shown))
    view.start(RunInfo(total_steps=2, model="<script>x</script>"))
    assert "<script>" not in shown[0]._repr_mimebundle_()["text/html"]

    stream = io.StringIO()
    text = TextLogger(stream, every_s=0)
    text.start(RunInfo(total_steps=4, model="tiny"))
    text.log(points(2))
    text.finish("succeeded")
    out = stream.getvalue()
    assert "4 steps" in out and "loss 1.5000" in out and out.rstrip().startswith("training")
    assert out.strip().splitlines()[-1].startswith("succeeded")


def _png_height(frame: Any) -> int:
    import base64

    from matplotlib.image import imread

    return imread(io.BytesIO(base64.b64decode(frame.png)), format="png").shape[0]


def test_live_view_shows_no_axes_before_the_first_points() -> None:
    from synth_lab.train.live import LiveView

    shown: list[Any] = []
    view = LiveView(min_interval=0, display=lambda obj, **_: shown.append(obj) or FakeHandle(shown))
    view.start(RunInfo(total_steps=4, model="m"))
    view.log([MetricPoint("train.tokens_per_second", 10.0, 1)])
    assert all(f.png is None and "<img" not in f._repr_mimebundle_()["text/html"] for f in shown)
    view.log([MetricPoint(TRAIN_LOSS, 2.0, 1)])
    assert shown[-1].png and "data:image/png;base64," in shown[-1]._repr_mimebundle_()["text/html"]


def test_live_view_has_a_learning_rate_and_grad_norm_panel() -> None:
    from matplotlib.figure import Figure

    from synth_lab.plots import plot_schedule
    from synth_lab.train.live import LiveView

    schedule = [MetricPoint(TRAIN_LR, 1e-3 * s, s) for s in range(1, 4)]
    schedule += [MetricPoint("train.grad_norm", 0.5 + s, s) for s in range(1, 4)]
    ax = plot_schedule(schedule, ax=Figure().add_subplot())
    assert list(ax.get_lines()[0].get_ydata()) == [1e-3, 2e-3, 3e-3]
    [twin] = [a for a in ax.figure.axes if a is not ax]
    assert list(twin.get_lines()[0].get_ydata()) == [1.5, 2.5, 3.5]
    assert twin.get_ylabel() == "grad norm"

    heights = []
    for extra in ([], schedule):
        shown: list[Any] = []
        view = LiveView(display=lambda obj, sink=shown, **_: sink.append(obj) or FakeHandle(sink))
        view.start(RunInfo(total_steps=3, model="m"))
        view.log([*points(3), *extra])
        view.finish("succeeded")
        heights.append(_png_height(shown[-1]))
    assert heights[1] > heights[0] * 1.3  # a second panel under the loss plot


def test_live_view_of_a_resumed_run_shows_the_earlier_steps() -> None:
    from synth_lab.train.live import LiveView

    shown: list[Any] = []
    history = [MetricPoint(TRAIN_LOSS, 3.0 - s / 10, s) for s in range(1, 7)]
    view = LiveView(
        history=history, display=lambda obj, **_: shown.append(obj) or FakeHandle(shown)
    )
    view.start(RunInfo(total_steps=10, start_step=4, model="m"))
    # the history up to the checkpoint (step 4) is drawn at once; steps 5-6 are redone
    assert [p.step for p in view.progress.points] == [1, 2, 3, 4]
    assert shown[0].png and "loss 2.6000" in shown[0].line
    view.annotate("Interrupted at step 4; checkpoint saved: runs/x/step-000004")
    assert "checkpoint saved: runs/x/step-000004" in shown[-1]._repr_mimebundle_()["text/plain"]


@pytest.mark.slow
def test_live_view_in_a_real_kernel(tmp_path) -> None:
    """In a notebook, run() shows one output that ends as the finished run with its plot."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("torch")
    from test_train_support import config_text, records

    code = (
        "import os\n"
        f"os.environ['SYNTH_LAB_CACHE'] = {str(tmp_path / 'cache')!r}\n"
        "from synth_lab.train import run\n"
        f"result = run({config_text()!r}, {records(16)!r}, output_dir={str(tmp_path / 'o')!r},"
        " max_steps=3)\n"
        "result.status"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert len(shown) == 1  # one live output, updated in place
    html = shown[0].data["text/html"]
    assert "succeeded" in html and "step 3/3" in html and "data:image/png;base64," in html
    assert outputs[-1].data["text/plain"] == "'succeeded'"


def test_local_and_remote_points_give_the_same_table() -> None:
    pytest.importorskip("pandas")
    from synth_lab.server.shapes import iso
    from synth_lab.train.metrics import points_frame

    local = [MetricPoint(TRAIN_LOSS, 2.5, 1, 0.5, "train", 1_700_000_000.25)]
    # what the learning API sends (the server's own shape): ISO 8601 text, epoch may be null
    remote = [
        {
            "name": TRAIN_LOSS,
            "value": 2.5,
            "step": 1,
            "epoch": 0.5,
            "phase": "train",
            "created_at": iso(1_700_000_000.25),
            "id": 7,
        },
        {
            "name": VAL_LOSS,
            "value": 2.0,
            "step": 2,
            "epoch": None,
            "phase": None,
            "created_at": iso(1_700_000_001.0),
        },
    ]
    a, b = points_frame(local), points_frame(remote)
    assert list(a.columns) == list(b.columns) == list(POINT_COLUMNS)
    assert dict(a.dtypes) == dict(b.dtypes)
    assert str(a["created_at"].dtype) == "datetime64[ns, UTC]"
    assert a["created_at"][0] == b["created_at"][0]
    assert b["phase"][1] == "train"
