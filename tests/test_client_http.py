"""The client against the real server on loopback: resources, watching, errors, memory."""

from __future__ import annotations

import io
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import chat, write_jsonl
from server_doubles import FAKE, FakeServer

from synth_lab.client import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PollTimeoutError,
    ServerError,
    SynthClient,
    attach,
    submit,
)
from synth_lab.client import remote as remote_module
from synth_lab.client.jobs import JobFeed
from synth_lab.errors import ConfigError
from synth_lab.server.process import ServerProcess

CONFIG = """
[job]
model = "Qwen/Qwen3-0.6B"

[compute]
gpu_type = "H100"
gpu_count = 1

[hyperparameters]
n_epochs = 1
learning_rate = 1e-4
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--runner", FAKE, "--gpus", "1", "--model-map", "Qwen/Qwen3-0.6B=synth-lab/tiny-chat"]
    env = {"SYNTH_LAB_FAKE_STEP_SECONDS": "0.01"}
    with FakeServer(tmp_path_factory.mktemp("client-server"), extra_args=args, env=env) as srv:
        yield srv


@pytest.fixture
def client(server: ServerProcess) -> Iterator[SynthClient]:
    with SynthClient(api_key=server.api_key, base_url=server.url, dotenv=None) as api:
        yield api


@pytest.fixture
def train(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}", f"a{i}") for i in range(12)])


def test_submit_uploads_creates_starts_and_watches(
    client: SynthClient, train: Path, tmp_path: Path
) -> None:
    val = write_jsonl(tmp_path / "val.jsonl", [chat("v", "w")])
    config = CONFIG + f'\n[data]\nvalidation_path = "{val}"\n'
    job = submit(config, train, client=client, poll_interval=0.05, live=False, timeout=60)
    assert job.succeeded and job.done and not job.interrupted
    assert job.doc["metadata"]["effective_config"]["data"]["validation_files"][0].startswith(
        "file_"
    )
    train_steps = sorted(p["step"] for p in job.points if p["name"] == "train.loss")
    assert train_steps == list(range(1, 13))
    assert [p["step"] for p in job.points if p["name"] == "val.loss"] == [5, 10]
    frame = job.metrics
    assert list(frame.columns) == ["name", "value", "step", "epoch", "phase", "created_at"]
    assert len(frame) == 12 * 2 + 2
    assert job.events[-1]["type"] == "sft.job.completed"
    assert "sft.created" not in [e["type"] for e in job.events]
    assert "sft.created" in [e["type"] for e in job.all_events]
    assert [t["phase"] for t in job.timeline()][-1] == "succeeded"
    bundle = job._repr_mimebundle_()
    assert job.id in bundle["text/plain"] and "succeeded" in bundle["text/html"]


def test_submit_with_examples_uploads_only_those(client: SynthClient, train: Path) -> None:
    job = submit(CONFIG, train, examples=3, client=client, wait=False)
    done = job.wait(30, poll_interval=0.05, live=False)
    file_id = done.doc["training_file_id"]
    assert client.files.retrieve(file_id)["records"] == 3
    assert max(p["step"] for p in done.points) == 3


def test_plot_draws_remote_points(client: SynthClient, train: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    job = submit(CONFIG, train, client=client, poll_interval=0.05, live=False)
    ax = job.plot()
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["train loss", "val loss"]
    assert list(ax.get_lines()[0].get_xdata()) == list(range(1, 13))


def test_text_monitor_shows_the_local_status_line(client: SynthClient, train: Path) -> None:
    job = submit(CONFIG, train, client=client, wait=False)
    stream = io.StringIO()
    from synth_lab.train.live import TextLogger

    original = remote_module.make_view
    remote_module.make_view = lambda live: TextLogger(stream, every_s=0.0)  # type: ignore[assignment]
    try:
        job.wait(30, poll_interval=0.05)
    finally:
        remote_module.make_view = original  # type: ignore[assignment]
    text = stream.getvalue()
    assert "step 12/12" in text and "loss" in text and "elapsed" in text
    assert text.strip().splitlines()[-1].startswith("succeeded")


def test_a_succeeded_job_ends_the_live_view_green(
    client: SynthClient, train: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server says ``succeeded``: the view ends as a local run that succeeded does."""
    from synth_lab.status import Status, render
    from synth_lab.train.live import LiveView

    shown: list[Any] = []

    class Handle:
        def update(self, obj: Any) -> None:
            shown.append(obj)

    def display(obj: Any, **_: Any) -> Handle:
        shown.append(obj)
        return Handle()

    view = LiveView(min_interval=0.0, plot=False, display=display)
    monkeypatch.setattr(remote_module, "make_view", lambda live: view)
    job = submit(CONFIG, train, client=client, poll_interval=0.05)
    assert job.status is Status.SUCCEEDED
    final = shown[-1]._repr_mimebundle_()
    assert final["text/plain"].startswith("succeeded · step 12/12")
    assert f"background:{render(Status.SUCCEEDED).color}" in final["text/html"]


def test_dry_run_errors_stop_submit_before_any_request(tmp_path: Path, train: Path) -> None:
    calls: list[httpx.Request] = []
    http = httpx.Client(
        transport=httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(500))
    )
    api = SynthClient(api_key="sk-unused-000000000000", base_url="http://x", http_client=http)
    no_gpu = CONFIG.replace('gpu_type = "H100"\n', "")
    with pytest.raises(ConfigError, match="gpu_type"):
        submit(no_gpu, train, client=api)
    with pytest.raises(ConfigError):
        submit(CONFIG, tmp_path / "missing.jsonl", client=api)
    assert calls == []


def test_job_feed_dedupes_and_keeps_cursors(client: SynthClient, train: Path) -> None:
    job = submit(CONFIG, train, client=client, poll_interval=0.05, live=False)
    feed = JobFeed(client.jobs, job.id)
    events, points = feed.poll()
    again_events, again_points = feed.poll()
    assert again_events == [] and again_points == []
    assert len({(p["name"], p["step"]) for p in points}) == len(points) == 26
    assert feed.cursors == {"train.loss": 12, "train.learning_rate": 12, "val.loss": 10}
    assert feed.last_seq == events[-1]["seq"]


def test_progress_events_stand_in_for_missing_points() -> None:
    events = [
        {"seq": 1, "type": "sft.progress", "data": {"step": 1, "loss": 2.0, "epoch": 0.1}},
        {"seq": 2, "type": "sft.progress", "data": {"step": 2, "loss": 1.5}},
        {"seq": 3, "type": "sft.job.completed", "data": {}},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            since = int(request.url.params["since_seq"])
            return httpx.Response(200, json={"events": [e for e in events if e["seq"] > since]})
        return httpx.Response(200, json={"points": []})

    api = SynthClient(
        api_key="sk-mock-000000000000",
        base_url="http://x",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    feed = JobFeed(api.jobs, "job_1")
    _, points = feed.poll()
    assert [(p["name"], p["step"], p["value"]) for p in points] == [
        ("train.loss", 1, 2.0),
        ("train.loss", 2, 1.5),
    ]
    assert feed.poll() == ([], []) and len(feed.points) == 2


def test_interrupting_the_watch_leaves_the_job_running(
    client: SynthClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    long = write_jsonl(tmp_path / "long.jsonl", [chat(f"q{i}", "a") for i in range(3000)])
    job = submit(CONFIG, long, client=client, wait=False)

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(remote_module.time, "sleep", interrupt)
    returned = job.wait(60, live=False)
    monkeypatch.undo()
    assert returned is job and job.interrupted
    message = capsys.readouterr().err
    assert f"attach('{job.id}')" in message and "keeps running" in message
    assert attach(job.id, client=client).status in ("queued", "running")
    assert job.cancel().status == "cancelled"


def test_poll_timeout_raises_and_leaves_the_job_running(
    client: SynthClient, tmp_path: Path
) -> None:
    long = write_jsonl(tmp_path / "long.jsonl", [chat(f"q{i}", "a") for i in range(3000)])
    job = submit(CONFIG, long, client=client, wait=False)
    began = time.monotonic()
    with pytest.raises(PollTimeoutError, match="keeps running") as info:
        job.wait(0.5, poll_interval=0.1, live=False)
    assert time.monotonic() - began < 5
    assert info.value.job_id == job.id
    assert client.jobs.retrieve(job.id)["status"] in ("queued", "running")
    client.jobs.cancel(job.id)


def test_attach_reads_an_existing_job(client: SynthClient, train: Path) -> None:
    job = submit(CONFIG, train, client=client, poll_interval=0.05, live=False)
    again = attach(job.id, client=client)
    assert again.status == "succeeded" and len(again.points) == len(job.points)
    with pytest.raises(NotFoundError):
        attach("job_does_not_exist", client=client)


def test_wrong_key_is_refused_without_retry_and_never_shown(server: ServerProcess) -> None:
    key = "sk-wrong-key-that-must-stay-secret-42"
    api = SynthClient(api_key=key, base_url=server.url, dotenv=None)
    began = time.monotonic()
    with pytest.raises(AuthenticationError) as info:
        api.jobs.list()
    assert time.monotonic() - began < 2  # 401 is not retried
    err = info.value
    assert err.status_code == 401 and err.code == "unauthorized"
    for text in (str(err), repr(err), err.hint, repr(api), str(api.__dict__.get("base_url"))):
        assert key not in text
    assert "sk-w…42" in str(err)


def test_server_side_refusal_carries_code_and_hint(client: SynthClient, train: Path) -> None:
    file_id = client.files.upload(train)["id"]
    body = {
        "model": "Qwen/Qwen3-0.6B",
        "training_type": "sft_offline",
        "training_file_id": file_id,
        "hyperparameters": {"n_epochs": 1},
        "metadata": {"effective_config": {"compute": {}, "data": {"topology": {}}}},
    }
    with pytest.raises(BadRequestError) as info:
        client.jobs.create(body)
    assert info.value.code == "missing_gpu_type" and "[compute].gpu_type" in info.value.hint
    body["metadata"]["effective_config"]["compute"] = {"gpu_type": "H100", "gpu_count": 8}
    with pytest.raises(BadRequestError) as info:
        client.jobs.create(body)
    assert info.value.code == "insufficient_resources" and "--accept-any-compute" in info.value.hint


def test_rejected_dataset_raises_with_its_problems(client: SynthClient, tmp_path: Path) -> None:
    from synth_lab.client import FileRejectedError

    bad = write_jsonl(tmp_path / "bad.jsonl", [chat(), b"{oops"])
    with pytest.raises(FileRejectedError, match="2:2: invalid JSON") as info:
        client.files.upload(bad)
    assert info.value.problems and info.value.file_id.startswith("file_")


def test_upload_streams_in_constant_memory(client: SynthClient, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = (b'{"messages":[{"role":"user","content":"%s"},' % (b"x" * 900)) + (
        b'{"role":"assistant","content":"y"}]}\n'
    )
    with path.open("wb") as handle:
        for _ in range(24 * 1024 * 1024 // len(line)):
            handle.write(line)
    tracemalloc.start()
    try:
        doc = client.files.upload(path, wait=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert doc["bytes"] == path.stat().st_size
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a 24 MB upload"


def test_stream_events_over_sse(client: SynthClient, train: Path) -> None:
    job = submit(CONFIG, train, client=client, wait=False)
    events = list(client.jobs.stream_events(job.id))
    assert events[-1]["type"] == "sft.job.completed"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_server_errors_surface_after_bounded_retries(tmp_path: Path) -> None:
    args = ["--runner", FAKE, "--gpus", "1", "--fault", "503:10:GET:/api/learning/jobs"]
    with FakeServer(tmp_path / "srv", extra_args=args) as srv:
        api = SynthClient(api_key=srv.api_key, base_url=srv.url, max_retries=2, dotenv=None)
        api._sleep = lambda s: None
        with pytest.raises(ServerError) as info:
            api.jobs.list()
        assert info.value.status_code == 503 and info.value.code == "fault_injected"
        api.max_retries = 10
        assert api.jobs.list() == []  # 3 + 7 faults used up, the 11th try passes


def test_credentials_in_the_url_do_not_replace_the_api_key(server: ServerProcess) -> None:
    # httpx turns user:password@ into Basic auth, which would replace the Bearer key: the
    # server would answer 401 with no hint why. The key is sent; the user is told, masked.
    password = "hunter2-not-shown"
    url = server.url.replace("http://", f"http://alice:{password}@")
    with pytest.warns(UserWarning, match="not sent") as warned:
        api = SynthClient(api_key=server.api_key, base_url=url, dotenv=None)
    with api:
        assert api.get_json("/learning/jobs", params={"limit": 1}) is not None
    assert password not in str(warned[0].message) and "alic…" in str(warned[0].message)
