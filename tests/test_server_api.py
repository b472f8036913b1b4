"""The learning API server over real HTTP on loopback: the synth-ai CLI's requests, replayed.

The server runs as a subprocess (``python -m synth_lab.server``) with a stand-in trainer, so
these tests exercise routes, shapes, codes, auth and the scheduler in seconds; the real
trainer runs in ``test_remote_e2e.py``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import GOLDEN, chat, write_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from job_events import wait_event, wait_terminal
from server_doubles import FAKE, FakeServer

from synth_lab.server.process import ServerProcess

KEY_A = "sk-owner-a-0123456789abcdef"
KEY_A2 = "sk-owner-a-second-key-000000"
KEY_B = "sk-owner-b-0123456789abcdef"
TERMINAL = {"succeeded", "failed", "cancelled"}
GOLDEN_PAYLOAD = json.loads((GOLDEN / "seed_minimal_fft_qwen3_4b.payload.json").read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("server")
    keys = root / "keys.txt"
    keys.write_text(f"# owners\n{KEY_A} alice\n{KEY_A2} alice\n{KEY_B}\n")
    args = [
        "--keys-file", str(keys), "--runner", FAKE, "--gpus", "4", "--max-upload-mb", "1",
        "--model-map", "Qwen/Qwen3-4B=synth-lab/tiny-chat",
    ]  # fmt: skip
    with FakeServer(root / "data", extra_args=args) as srv:
        yield srv


def http(server: ServerProcess, key: str | None = KEY_A) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30.0)


def upload(client: httpx.Client, path: Path, prefix: str = "/files") -> dict[str, Any]:
    with path.open("rb") as handle:
        response = client.post(
            prefix,
            data={"purpose": "fine-tune"},
            files={"file": (path.name, handle, "application/jsonl")},
        )
    assert response.status_code < 400, response.text
    return response.json()


def payload(train_id: str, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(GOLDEN_PAYLOAD)
    body["training_file_id"] = train_id
    body.update(changes)
    return body


def ready_file(server: ServerProcess, tmp_path: Path, records: int = 10) -> str:
    path = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}", f"a{i}") for i in range(records)])
    with http(server) as client:
        return str(upload(client, path, "/learning/files")["id"])


def test_health_needs_no_key(server: ServerProcess) -> None:
    with http(server, None) as client:
        doc = client.get("/health").json()
    assert doc == {"status": "ok"}  # nothing about the server or its tenants


def worker_gone(server: ServerProcess, job_id: str) -> bool:
    """Whether no worker holds the job's lock (each worker holds it while it lives)."""
    import fcntl

    with open(server.data_dir / "jobs" / job_id / "worker.lock", "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return True


def test_synth_ai_cli_sequence_replayed(server: ServerProcess, tmp_path: Path) -> None:
    """The exact requests of the synth-ai 0.2.x CLI, in order, with plain httpx."""
    train = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}", f"a{i}") for i in range(12)])
    with http(server) as client:
        created = upload(client, train, "/files")  # 1. POST /api/files
        assert created["id"].startswith("file_") and created["bytes"] == train.stat().st_size
        for _ in range(100):  # 2. GET /api/files/{id} until ready
            state = client.get(f"/files/{created['id']}").json()["status"]
            if state in {"ready", "uploaded", "stored", "complete"}:
                break
            time.sleep(0.05)
        assert state == "ready"
        response = client.post("/learning/jobs", json=payload(created["id"]))  # 3.
        assert response.status_code in (200, 201)
        job_id = response.json().get("job_id") or response.json()["id"]
        assert client.post(f"/learning/jobs/{job_id}/start", json={}).status_code == 200  # 4.
        since, events, points, timeline, status = 0, [], [], [], ""
        for _ in range(600):  # 5. the poll loop
            status = client.get(f"/learning/jobs/{job_id}").json()["status"].lower()
            page = client.get(
                f"/learning/jobs/{job_id}/events", params={"since_seq": since, "limit": 200}
            ).json()["events"]
            events += page
            since = page[-1]["seq"] if page else since
            points = client.get(f"/learning/jobs/{job_id}/metrics", params={"limit": 200}).json()
            timeline = client.get(f"/learning/jobs/{job_id}/timeline").json()["events"]
            if status in TERMINAL or any(e["type"] == "sft.job.completed" for e in page):
                break
            time.sleep(0.1)
    assert status == "succeeded"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1
    assert set(events[0]) == {"seq", "type", "level", "message", "data", "created_at"}
    types = [e["type"] for e in events]
    assert types[0] == "sft.created" and types[-1] == "sft.job.completed"
    assert "sft.training.started" in types and "sft.validation.summary" in types
    progress = [e["data"] for e in events if e["type"] == "sft.progress"]
    assert [p["step"] for p in progress] == list(range(1, 13))
    assert set(progress[0]) == {"step", "epoch", "loss", "total_steps"}
    assert progress[0]["total_steps"] == 12
    point_rows = points["points"]
    assert {p["name"] for p in point_rows} == {"train.loss", "train.learning_rate", "val.loss"}
    assert set(point_rows[0]) == {"name", "value", "step", "epoch", "phase", "created_at"}
    phases = [t["phase"] for t in timeline]
    assert phases == [
        "queued", "running", "initializing_trainer", "training", "evaluating", "succeeded"
    ]  # fmt: skip


def test_job_document_shape(server: ServerProcess, tmp_path: Path) -> None:
    file_id = ready_file(server, tmp_path)
    with http(server) as client:
        doc = client.post("/learning/jobs", json=payload(file_id)).json()
        assert doc["status"] == "queued" and doc["job_id"] == doc["id"]
        assert doc["hyperparameters"] == GOLDEN_PAYLOAD["hyperparameters"]
        assert doc["metadata"] == GOLDEN_PAYLOAD["metadata"]
        client.post(f"/learning/jobs/{doc['id']}/start", json={})
        done = wait_terminal(client, doc["id"])
        listed = client.get("/learning/jobs", params={"status": "succeeded", "limit": 50}).json()
    assert done["fine_tuned_model"] == f"ft:Qwen/Qwen3-4B:{doc['id']}"
    assert done["result"]["steps"] == 10 and done["finished_at"]
    # Read from the trainer's TrainResult: the last train loss, the best validation loss.
    last = 2.0 * math.exp(-1.0) + 0.1
    assert done["result"]["metrics"] == pytest.approx(
        {"train.loss": last, "val.loss.best": last + 0.05}
    )
    assert doc["id"] in [j["id"] for j in listed["jobs"]]
    assert all(j["status"] == "succeeded" for j in listed["jobs"])


def test_metrics_cursor_and_name_filter(server: ServerProcess, tmp_path: Path) -> None:
    file_id = ready_file(server, tmp_path, records=15)
    with http(server) as client:
        job_id = client.post("/learning/jobs", json=payload(file_id)).json()["id"]
        client.post(f"/learning/jobs/{job_id}/start", json={})
        wait_terminal(client, job_id)
        url = f"/learning/jobs/{job_id}/metrics"
        val = client.get(url, params={"name": "val.loss"}).json()["points"]
        after = client.get(url, params={"after_step": 10, "name": "train.loss"}).json()["points"]
        page = client.get(url, params={"limit": 4}).json()["points"]
        events = client.get(f"/learning/jobs/{job_id}/events", params={"since_seq": 5}).json()
    assert [p["step"] for p in val] == [5, 10, 15]
    assert [p["step"] for p in after] == [11, 12, 13, 14, 15]
    assert [(p["step"], p["name"]) for p in page] == [
        (1, "train.learning_rate"), (1, "train.loss"), (2, "train.learning_rate"), (2, "train.loss")
    ]  # fmt: skip
    assert events["events"][0]["seq"] == 6


def test_events_as_server_sent_events(server: ServerProcess, tmp_path: Path) -> None:
    file_id = ready_file(server, tmp_path)
    with http(server) as client:
        job_id = client.post("/learning/jobs", json=payload(file_id)).json()["id"]
        client.post(f"/learning/jobs/{job_id}/start", json={})
        received = []
        headers = {"Accept": "text/event-stream"}
        with client.stream("GET", f"/learning/jobs/{job_id}/events", headers=headers) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    received.append(json.loads(line[5:]))
    assert [e["seq"] for e in received] == list(range(1, len(received) + 1))
    assert received[-1]["type"] == "sft.job.completed"


def test_idempotency_key_returns_the_first_job(server: ServerProcess, tmp_path: Path) -> None:
    file_id = ready_file(server, tmp_path)
    with http(server) as client:
        before = len(client.get("/learning/jobs", params={"limit": 1000}).json()["jobs"])
        headers = {"Idempotency-Key": "same-key-1"}
        first = client.post("/learning/jobs", json=payload(file_id), headers=headers)
        second = client.post("/learning/jobs", json=payload(file_id), headers=headers)
        after = len(client.get("/learning/jobs", params={"limit": 1000}).json()["jobs"])
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert after == before + 1


def test_cancel_stops_a_running_job(server: ServerProcess, tmp_path: Path) -> None:
    file_id = ready_file(server, tmp_path, records=3000)  # 3000 fake steps: a minute
    with http(server) as client:
        job_id = client.post("/learning/jobs", json=payload(file_id)).json()["id"]
        client.post(f"/learning/jobs/{job_id}/start", json={})
        wait_event(client, job_id, "sft.progress")
        cancelled = client.post(f"/learning/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        for _ in range(200):
            if worker_gone(server, job_id):
                break
            time.sleep(0.05)
        # The worker process is gone (its lock is free), so nothing can add points any more.
        last = client.get(f"/learning/jobs/{job_id}/metrics", params={"limit": 5000}).json()
        later = client.get(f"/learning/jobs/{job_id}/metrics", params={"limit": 5000}).json()
        doc = client.get(f"/learning/jobs/{job_id}").json()
        again = client.post(f"/learning/jobs/{job_id}/cancel").json()
        restart = client.post(f"/learning/jobs/{job_id}/start", json={})
    assert client and doc["status"] == "cancelled" and again["status"] == "cancelled"
    assert len(last["points"]) == len(later["points"]) < 2 * 3000  # the worker is gone
    assert restart.status_code == 200 and restart.json()["status"] == "cancelled"


def test_trainer_failure_marks_the_job_failed(server: ServerProcess, tmp_path: Path) -> None:
    records = [chat(f"q{i}", f"a{i}") for i in range(6)]
    records[3] = chat("fake-fail", "x")
    path = write_jsonl(tmp_path / "fail.jsonl", records)
    with http(server) as client:
        file_id = upload(client, path)["id"]
        job_id = client.post("/learning/jobs", json=payload(file_id)).json()["id"]
        client.post(f"/learning/jobs/{job_id}/start", json={})
        doc = wait_terminal(client, job_id)
        events = client.get(f"/learning/jobs/{job_id}/events").json()["events"]
    assert doc["status"] == "failed" and "injected failure at step 4" in doc["error"]
    assert events[-1]["type"] == "sft.job.failed" and events[-1]["level"] == "error"


# -- auth and isolation -------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "sk-wrong-0000000000000000"])
def test_missing_or_wrong_key_is_401(server: ServerProcess, key: str | None) -> None:
    with http(server, key) as client:
        response = client.get("/learning/jobs")
    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_keys_see_only_their_owner_s_files_and_jobs(server: ServerProcess, tmp_path: Path) -> None:
    file_id = ready_file(server, tmp_path)
    with http(server, KEY_A) as alice, http(server, KEY_B) as bob, http(server, KEY_A2) as alice2:
        job_id = alice.post("/learning/jobs", json=payload(file_id)).json()["id"]
        assert bob.get(f"/files/{file_id}").status_code == 404
        assert bob.get(f"/learning/files/{file_id}").status_code == 404
        for method, url in [
            ("GET", f"/learning/jobs/{job_id}"),
            ("GET", f"/learning/jobs/{job_id}/events"),
            ("GET", f"/learning/jobs/{job_id}/metrics"),
            ("GET", f"/learning/jobs/{job_id}/timeline"),
            ("POST", f"/learning/jobs/{job_id}/start"),
            ("POST", f"/learning/jobs/{job_id}/cancel"),
        ]:
            response = bob.request(method, url)
            assert response.status_code == 404, url
            assert response.json()["code"] == "job_not_found"
        assert job_id not in [j["id"] for j in bob.get("/learning/jobs").json()["jobs"]]
        stolen = bob.post("/learning/jobs", json=payload(file_id))
        assert stolen.status_code == 400 and stolen.json()["code"] == "file_not_found"
        # A second key of the same owner sees the same data.
        assert alice2.get(f"/learning/jobs/{job_id}").status_code == 200
        assert alice.post(f"/learning/jobs/{job_id}/cancel").json()["status"] == "cancelled"
        too_late = alice.post(f"/learning/jobs/{job_id}/start", json={})
        assert too_late.status_code == 409 and too_late.json()["code"] == "job_finished"
        assert too_late.headers["x-should-retry"] == "false"


# -- bad requests -------------------------------------------------------------------------------


def _without_gpu_type(body: dict[str, Any]) -> dict[str, Any]:
    del body["metadata"]["effective_config"]["compute"]["gpu_type"]
    return body


def _unknown_hyperparameter(body: dict[str, Any]) -> dict[str, Any]:
    body["hyperparameters"]["learning_rat"] = 1e-5
    return body


def _too_many_gpus(body: dict[str, Any]) -> dict[str, Any]:
    body["metadata"]["effective_config"]["compute"]["gpu_count"] = 64
    return body


def _unknown_validation_file(body: dict[str, Any]) -> dict[str, Any]:
    body["metadata"]["effective_config"]["data"]["validation_files"] = ["file_nope"]
    return body


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (_without_gpu_type, "missing_gpu_type"),
        (_unknown_hyperparameter, "invalid_payload"),
        (_too_many_gpus, "insufficient_resources"),
        (_unknown_validation_file, "file_not_found"),
        (lambda b: {**b, "model": "org/not-here-model"}, "model_not_available"),
        (lambda b: {**b, "training_file_id": "file_missing"}, "file_not_found"),
        (lambda b: {k: v for k, v in b.items() if k != "model"}, "invalid_payload"),
        (lambda b: {**b, "training_type": "rl"}, "invalid_payload"),
        (lambda b: [b], "invalid_payload"),
    ],
)
def test_bad_payloads_are_400_with_a_code(
    server: ServerProcess, tmp_path: Path, change: Any, code: str
) -> None:
    file_id = ready_file(server, tmp_path)
    with http(server) as client:
        response = client.post("/learning/jobs", json=change(payload(file_id)))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == code and body["detail"]["code"] == code
    assert body["detail"]["message"]


def test_invalid_payload_lists_the_problem(server: ServerProcess, tmp_path: Path) -> None:
    file_id = ready_file(server, tmp_path)
    with http(server) as client:
        body = client.post("/learning/jobs", json=_unknown_hyperparameter(payload(file_id))).json()
        garbage = client.post(
            "/learning/jobs", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    paths = [p["path"] for p in body["detail"]["problems"]]
    assert "hyperparameters.learning_rat" in paths
    assert garbage.status_code == 400 and garbage.json()["code"] == "invalid_payload"


def test_a_bad_dataset_fails_validation(server: ServerProcess, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [chat(), b"{broken", {"messages": []}])
    with http(server) as client:
        doc = upload(client, path)
        response = client.post("/learning/jobs", json=payload(doc["id"]))
    assert doc["status"] == "failed" and doc["records"] == 3
    assert {p["line"] for p in doc["problems"] if p["severity"] == "error"} >= {2, 3}
    assert response.status_code == 400 and response.json()["code"] == "file_invalid"


def test_upload_over_the_limit_is_413(server: ServerProcess, tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    line = json.dumps(chat("x" * 1000, "y")).encode() + b"\n"
    big.write_bytes(line * (2 * 1024 * 1024 // len(line)))
    with http(server) as client:
        with big.open("rb") as handle:
            response = client.post("/files", files={"file": ("big.jsonl", handle)})
        files = client.get("/files").json()["files"]
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert "big.jsonl" not in [f["filename"] for f in files]
    leftovers = list((server.data_dir / "files").glob(".*.part"))
    assert leftovers == []


@pytest.mark.parametrize(
    ("request_kwargs", "message"),
    [
        ({"json": {"purpose": "fine-tune"}}, "multipart/form-data"),
        ({"data": {"purpose": "fine-tune"}, "files": {"other": ("a", b"x")}}, "no part named"),
    ],
)
def test_upload_without_a_file_part_is_400(
    server: ServerProcess, request_kwargs: dict[str, Any], message: str
) -> None:
    with http(server) as client:
        response = client.post("/learning/files", **request_kwargs)
    assert response.status_code == 400 and message in response.json()["detail"]["message"]


def test_unknown_routes_and_ids(server: ServerProcess) -> None:
    with http(server) as client:
        assert client.get("/learning/jobs/job_unknown").status_code == 404
        assert client.get("/files/file_unknown").json()["code"] == "file_not_found"
        assert client.get("/nothing/here").json()["code"] == "not_found"
        assert client.delete("/learning/jobs").status_code == 405
        bad_limit = client.get("/learning/jobs", params={"limit": "many"})
    assert bad_limit.status_code == 400 and bad_limit.json()["code"] == "invalid_request"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.binary(max_size=4096).map(lambda b: b.replace(b"BOUNDARY", b"")),
    tricky=st.sampled_from([b"", b"\r\n--", b"\r\n--BOUNDAR", b"--BOUNDARY", b"\r\n\r\n"]),
    chunk=st.integers(min_value=1, max_value=700),
)
def test_multipart_file_part_is_stored_byte_for_byte(
    server: ServerProcess, content: bytes, tricky: bytes, chunk: int
) -> None:
    """Whatever the bytes and however the body is cut into chunks, the file is stored as sent."""
    data = (tricky + content + tricky) if tricky != b"--BOUNDARY" else content + b"\r\n--BOUNDAR"
    body = (
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="../x.jsonl"\r\n'
        b"Content-Type: application/jsonl\r\n\r\n" + data + b"\r\n--BOUNDARY--\r\n"
    )
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    headers = {"Content-Type": "multipart/form-data; boundary=BOUNDARY"}
    with http(server) as client:
        response = client.post("/files", content=iter(pieces), headers=headers)
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["bytes"] == len(data) and doc["filename"] == "x.jsonl"
    assert (server.data_dir / "files" / f"{doc['id']}.jsonl").read_bytes() == data
