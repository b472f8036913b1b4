"""One status vocabulary and one set of metric names, whoever reports the run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
from test_train_support import config_text

import synth_lab
from synth_lab import metrics
from synth_lab.client.jobs import job_status
from synth_lab.client.monitor import RemoteMonitor
from synth_lab.config import SFTConfig
from synth_lab.status import Status, render
from synth_lab.sweep import grid
from synth_lab.sweep.manifest import FILENAME, Manifest, load
from synth_lab.sweep.result import SweepRun, render_html
from synth_lab.train.live import LiveView
from synth_lab.train.metrics import MetricPoint, RunInfo

GREEN = render(Status.SUCCEEDED).color
BLUE = render(Status.RUNNING).color


class Handle:
    def __init__(self, shown: list[Any]) -> None:
        self.shown = shown

    def update(self, obj: Any) -> None:
        self.shown.append(obj)


def live_view() -> tuple[LiveView, list[Any]]:
    shown: list[Any] = []
    view = LiveView(
        min_interval=0.0, plot=False, display=lambda o, **_: shown.append(o) or Handle(shown)
    )
    return view, shown


def test_the_api_words_and_the_old_local_words_map_to_one_status() -> None:
    assert Status.parse("succeeded") is Status.parse("completed") is Status.SUCCEEDED
    assert Status.parse("canceled") is Status.parse("CANCELLED") is Status.CANCELLED
    assert Status.parse("error") is Status.FAILED and Status.parse("pending") is Status.QUEUED
    assert Status.parse("stopped_early") is Status.STOPPED_EARLY
    assert Status.parse("validating_files") is Status.QUEUED  # the API's, before running
    assert job_status({"state": "Succeeded"}) is Status.SUCCEEDED
    assert job_status({"id": "job_1"}) is Status.QUEUED  # nothing read yet: not finished
    # a str: equal to its word, printed and serialised as it
    assert Status.SUCCEEDED == "succeeded" and f"{Status.SUCCEEDED}" == "succeeded"
    assert json.dumps({"status": Status.STOPPED_EARLY}) == '{"status": "stopped early"}'
    assert [s for s in Status if s.terminal] == [
        Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.STOPPED_EARLY,
    ]  # fmt: skip
    assert Status.INTERRUPTED.finished and not Status.INTERRUPTED.terminal


def test_a_succeeded_remote_job_ends_green_with_an_eta_while_it_ran() -> None:
    """The remote view gets the API's words; it must render them as the local run's."""
    view, shown = live_view()
    monitor = RemoteMonitor(view, "job_1")
    doc = {"id": "job_1", "model": "m", "status": "running"}
    started = {"type": "sft.training.started", "data": {"total_steps": 4, "start_step": 0}}
    point = {"name": metrics.TRAIN_LOSS, "value": 1.5, "step": 1}
    monitor.update(doc, job_status(doc), [started], [point])
    running = shown[-1]._repr_mimebundle_()
    assert (
        running["text/plain"].startswith("running · step 1/4") and "ETA " in running["text/plain"]
    )
    assert f"background:{BLUE}" in running["text/html"]
    doc = {**doc, "status": "succeeded"}
    last = {"name": metrics.TRAIN_LOSS, "value": 0.5, "step": 4}
    monitor.update(doc, job_status(doc), [], [last])
    monitor.finish(job_status(doc))
    final = shown[-1]._repr_mimebundle_()
    assert (
        final["text/plain"].startswith("succeeded · step 4/4") and "ETA" not in final["text/plain"]
    )
    assert f"background:{GREEN}" in final["text/html"] and BLUE not in final["text/html"]


def test_a_local_run_renders_the_same_status_the_same_way() -> None:
    remote, remote_shown = live_view()
    local, local_shown = live_view()
    for view, word in ((remote, "succeeded"), (local, Status.SUCCEEDED)):
        view.start(RunInfo(total_steps=2, model="m"))
        view.log([MetricPoint(metrics.TRAIN_LOSS, 1.0, 2)])
        view.finish(word)
    strip = re.compile(r"elapsed \S+")
    local_text = strip.sub("", local_shown[-1]._repr_mimebundle_()["text/plain"])
    assert local_text == strip.sub("", remote_shown[-1]._repr_mimebundle_()["text/plain"])


def test_an_old_sweep_manifest_reads_in_the_shared_words(tmp_path: Path) -> None:
    base = SFTConfig.from_toml(config_text())
    points = grid(base, [{"hyperparameters.learning_rate": lr} for lr in (1e-3, 2e-3)])
    manifest = Manifest.plan(tmp_path, base, points, remote=False, settings={})
    manifest.save()
    # as an older version wrote it
    data = json.loads((tmp_path / FILENAME).read_text())
    data["status"] = "completed"
    data["runs"] = {points[0].name: {"status": "completed"}, points[1].name: {"status": "pending"}}
    (tmp_path / FILENAME).write_text(json.dumps(data))
    sweep = load(tmp_path)
    assert sweep.status is Status.SUCCEEDED
    assert [r.status for r in sweep.runs] == [Status.SUCCEEDED, Status.QUEUED]
    html = render_html([SweepRun(points[0], status="completed")], "sweep", metrics.VAL_LOSS)
    assert f"color:{GREEN}'>succeeded<" in html


def test_no_module_but_one_spells_out_a_metric_name() -> None:
    """Metric names are constants of ``synth_lab.metrics``; elsewhere a literal would drift."""
    root = Path(synth_lab.__file__).parent
    literal = re.compile("[\"'](" + "|".join(re.escape(n) for n in metrics.NAMES) + ")[\"']")
    found = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "metrics.py" or path.parent != root
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if literal.search(line)
    ]
    assert found == []


@pytest.mark.parametrize("word", ["queued", "running", "interrupted", "failed", "cancelled"])
def test_every_status_has_one_label_and_colour(word: str) -> None:
    look = render(word)
    assert look.label == word and look.color.startswith("#")
    assert render(Status.parse(word)) == look


def test_the_job_monitor_shows_a_remote_and_a_local_success_alike() -> None:
    from synth_lab.widgets.job_monitor import JobMonitor

    class Finished:
        done = True
        points: ClassVar = [{"name": metrics.TRAIN_LOSS, "value": 0.5, "step": 2}]

        def __init__(self, status: object) -> None:
            self.status = status

    remote = JobMonitor(Finished("succeeded"), interval=None).status.value  # the API's word
    local = JobMonitor(Finished(Status.SUCCEEDED), interval=None).status.value
    assert remote == local and f"color:{GREEN}" in local and "succeeded" in local
