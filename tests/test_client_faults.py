"""Faults between the client and the real server: error answers, broken connections, restarts.

Each test checks the outcome that matters: one job, each metric point once, one completion.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import chat, write_jsonl
from server_doubles import FAKE, FakeServer, restart_while_watching

from synth_lab.client import SynthClient, submit
from synth_lab.client.remote import RemoteJob
from synth_lab.server.process import ServerProcess

CONFIG = """
[job]
model = "synth-lab/tiny-chat"

[compute]
gpu_type = "H100"
gpu_count = 1

[hyperparameters]
n_epochs = 1
"""


def no_sleep_client(server: ServerProcess, **kwargs: Any) -> SynthClient:
    api = SynthClient(api_key=server.api_key, base_url=server.url, dotenv=None, **kwargs)
    api._sleep = lambda s: None  # Retry-After: 0 anyway; keep the tests quick
    return api


def test_error_answers_are_retried_and_create_makes_one_job(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "t.jsonl", [chat(f"q{i}", "a") for i in range(5)])
    faults = [
        "--fault", "503:2:POST:/api/learning/files",
        "--fault", "503:2:POST:/api/learning/jobs",
        "--fault", "429:3:GET:/api/learning/jobs/",
    ]  # fmt: skip
    args = ["--runner", FAKE, "--gpus", "1", *faults]
    with FakeServer(tmp_path / "srv", extra_args=args) as srv:
        api = no_sleep_client(srv)
        job = submit(CONFIG, train, client=api, poll_interval=0.05, live=False, timeout=60)
        assert job.succeeded
        assert len(api.jobs.list(limit=100)) == 1
        files = api.get_json("/learning/files")["files"]
        assert len(files) == 1 and files[0]["status"] == "ready"


def test_retry_reuses_the_idempotency_key_and_honours_retry_after() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            raise httpx.ConnectError("refused")
        if len(seen) == 2:
            return httpx.Response(429, headers={"Retry-After": "1.5"}, json={"detail": "slow"})
        if len(seen) == 3:
            return httpx.Response(503, json={"detail": "busy"})
        return httpx.Response(201, json={"id": "job_1", "status": "queued"})

    api = SynthClient(
        api_key="sk-mock-000000000000",
        base_url="http://x",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    sleeps: list[float] = []
    api._sleep = sleeps.append
    assert api.jobs.create({"model": "m"})["id"] == "job_1"
    keys = {r.headers["idempotency-key"] for r in seen}
    assert len(seen) == 4 and len(keys) == 1
    assert sleeps[1] == 1.5  # Retry-After
    assert 0.375 <= sleeps[0] <= 0.5 and 0.75 <= sleeps[2] <= 1.0 + 1.0  # backoff with jitter
    api.jobs.create({"model": "m"})
    assert seen[-1].headers["idempotency-key"] not in keys  # a new logical create, a new key


class DroppingProxy:
    """A loopback TCP proxy that cuts the first upload's connection after ``cut_after`` bytes."""

    def __init__(self, target_port: int, cut_after: int = 256 * 1024) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.dropped = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()
        self._pipe(client, upstream, self)

    def _pipe(self, src: socket.socket, dst: socket.socket, watch: DroppingProxy | None) -> None:
        sent, cutting = 0, False
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if watch is not None and sent == 0 and data.startswith(b"POST /api/learning/files"):
                    cutting = watch.dropped == 0
                if cutting and sent + len(data) > self.cut_after:
                    self.dropped += 1
                    for sock in (src, dst):  # abort both sides mid-body (linger 0: RST)
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                        sock.shutdown(socket.SHUT_RDWR)  # wakes the other direction's recv()
                        sock.close()
                    return
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


def test_connection_drop_during_upload_is_retried_once_stored(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "t.jsonl", [chat(f"q{i}" * 50, "a") for i in range(4000)])
    with FakeServer(tmp_path / "srv", extra_args=["--runner", FAKE, "--gpus", "1"]) as srv:
        proxy = DroppingProxy(srv.port)
        try:
            api = SynthClient(
                api_key=srv.api_key, base_url=f"http://127.0.0.1:{proxy.port}", dotenv=None
            )
            doc = api.files.upload(train)
        finally:
            proxy.close()
        assert proxy.dropped == 1
        assert doc["status"] == "ready" and doc["bytes"] == train.stat().st_size
        assert doc["records"] == 4000
        direct = no_sleep_client(srv)
        assert [f["id"] for f in direct.get_json("/files")["files"]] == [doc["id"]]
        for _ in range(100):  # the broken upload's partial file is removed
            if not list((srv.data_dir / "files").glob(".*.part")):
                break
            time.sleep(0.05)
        assert not list((srv.data_dir / "files").glob(".*.part"))


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"SYNTH_LAB_FAKE_STEP_SECONDS": "0.04"}
    args = ["--runner", FAKE, "--gpus", "1"]
    srv = FakeServer(tmp_path / "srv", extra_args=args, env=env).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "killed"])
def test_server_restart_while_polling(slow_server: ServerProcess, tmp_path: Path, sig: int) -> None:
    steps = 60
    train = write_jsonl(tmp_path / "t.jsonl", [chat(f"q{i}", "a") for i in range(steps)])
    api = SynthClient(api_key=slow_server.api_key, base_url=slow_server.url, dotenv=None)
    job = submit(CONFIG, train, client=api, wait=False)
    watcher = RemoteJob(api, job.id, poll_interval=0.1)
    restart_while_watching(slow_server, watcher, after_step=12, sig=sig, timeout=120)

    assert watcher.status == "succeeded"
    assert [j["id"] for j in api.jobs.list(limit=100)] == [job.id]
    points = api.jobs.metrics(job.id, limit=5000)
    per_name = Counter(p["name"] for p in points)
    assert per_name == {"train.loss": steps, "train.learning_rate": steps, "val.loss": steps // 5}
    assert sorted(p["step"] for p in points if p["name"] == "train.loss") == list(range(1, 61))
    events = api.jobs.events(job.id, limit=1000)
    types = Counter(e["type"] for e in events)
    assert types["sft.job.completed"] == 1 and types["sft.job.resumed"] == 1
    assert types["sft.job.failed"] == 0
    progress = [e["data"]["step"] for e in events if e["type"] == "sft.progress"]
    assert progress == list(range(1, steps + 1))
    # The watcher saw every point exactly once too.
    seen = [(p["name"], p["step"]) for p in watcher.points]
    assert len(seen) == len(set(seen)) == len(points)


def test_upload_falls_back_to_files_when_learning_files_is_404(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "t.jsonl", [chat("q", "a")])
    args = ["--runner", FAKE, "--gpus", "1", "--fault", "404:100:POST:/api/learning/files"]
    with FakeServer(tmp_path / "srv", extra_args=args) as srv:
        api = no_sleep_client(srv)
        doc = api.files.upload(train)
        assert doc["status"] == "ready" and api.files._prefix == "/files"
        assert api.files.retrieve(doc["id"])["id"] == doc["id"]  # read back from /files too


def test_readiness_treats_404_as_not_yet_and_401_as_fatal(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "t.jsonl", [chat("q", "a")])
    answers = iter(
        [
            httpx.Response(201, json={"id": "file_1", "status": "processing"}),
            httpx.Response(404, json={"detail": "not yet"}),
            httpx.Response(200, json={"id": "file_1", "state": "validating"}),
            httpx.Response(200, json={"id": "file_1", "storage_state": "stored"}),
            httpx.Response(201, json={"id": "file_2"}),
            httpx.Response(401, json={"detail": "bad key"}),
        ]
    )
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return next(answers)

    api = SynthClient(
        api_key="sk-mock-000000000000",
        base_url="http://x",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    api._sleep = lambda s: None
    assert api.files.upload(train, poll_interval=0)["storage_state"] == "stored"
    assert [r.method for r in requests] == ["POST", "GET", "GET", "GET"]
    body = requests[0].read()
    assert b'name="purpose"\r\n\r\nfine-tune' in body
    assert b'filename="t.jsonl"' in body and b"Content-Type: application/jsonl" in body
    from synth_lab.client import AuthenticationError

    with pytest.raises(AuthenticationError):
        api.files.upload(train, poll_interval=0)
    assert len(requests) == 6  # the 401 was not retried
