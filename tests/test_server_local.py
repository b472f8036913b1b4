"""The server on its own machine: a private data folder, workers without the key, owner ids
that need the folder's secret, crash leftovers cleaned up, and a queue fair across tenants."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import chat, write_jsonl
from job_events import wait_event, wait_terminal
from server_doubles import FAKE, FINAL, FakeServer

from synth_lab.server.limits import Limits, fair_order
from synth_lab.server.process import ServerProcess
from synth_lab.server.scheduler import Scheduler
from synth_lab.server.store import Store
from synth_lab.server.worker import DB_NAME, DBLogger
from synth_lab.train.metrics import RunInfo

TESTS = Path(__file__).resolve().parent
ENV = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
RUNNER = ["--runner", FINAL, "--gpus", "1"]
KEY = "sk-local-0123456789abcdef"


def http(server: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
    )


def job(file_id: str) -> dict[str, Any]:
    return {
        "model": "synth-lab/tiny-chat",
        "training_file_id": file_id,
        "hyperparameters": {"n_epochs": 1, "per_device_batch": 1},
        "metadata": {"effective_config": {"compute": {"gpu_type": "H100", "gpu_count": 1}}},
    }


def upload(client: httpx.Client, tmp_path: Path, records: int = 4) -> str:
    path = write_jsonl(tmp_path / "t.jsonl", [chat(f"q{i}", "a") for i in range(records)])
    response = client.post("/files", files={"file": ("t.jsonl", path.read_bytes())})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def finish(client: httpx.Client, job_id: str) -> dict[str, Any]:
    client.post(f"/learning/jobs/{job_id}/start", json={})
    return wait_terminal(client, job_id)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_folder_is_private_and_workers_do_not_get_the_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "files").mkdir(mode=0o755)
    (data / "files" / ".file_crashed.part").write_bytes(b'{"messages": [')  # a crash's leftover
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{KEY}\n")
    env = {**ENV, "TEAM_KEY_COPY": KEY}  # the key in the server's environment under any name
    with FakeServer(data, extra_args=["--keys-file", str(keys), *RUNNER], env=env) as srv:
        leftovers = list((data / "files").glob(".*.part"))
        with http(srv, KEY) as client:
            file_id = upload(client, tmp_path)
            done = finish(client, client.post("/learning/jobs", json=job(file_id)).json()["id"])
    output = data / "jobs" / done["id"] / "output"
    worker_env = json.loads((output / "env.json").read_text())
    assert done["status"] == "succeeded" and leftovers == []
    assert KEY not in json.dumps(worker_env) and "TEAM_KEY_COPY" not in worker_env
    assert mode(data) == mode(data / "files") == mode(data / "jobs" / done["id"]) == 0o700
    private = [data / DB_NAME, data / "owner_secret", data / "files" / f"{file_id}.jsonl"]
    assert [mode(p) for p in [*private, output / "env.json"]] == [0o600] * 4


def test_workers_do_not_inherit_synth_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTH_API_KEY", "sk-from-env")
    monkeypatch.setenv("UNRELATED_SETTING", "kept")
    scheduler = Scheduler(
        Store(tmp_path / "db.sqlite"), tmp_path, private_values=frozenset({"sk-other"})
    )
    monkeypatch.setenv("COPY", "sk-other")
    env = scheduler.worker_env()
    assert "SYNTH_API_KEY" not in env and "COPY" not in env and env["UNRELATED_SETTING"] == "kept"


def test_api_key_file_keeps_the_key_out_of_argv(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    with ServerProcess(tmp_path / "data", extra_args=["--api-key-file", str(key_file)]) as srv:
        with http(srv, KEY) as client:
            assert client.get("/files").status_code == 200
        assert srv.process is not None
        argv = Path(f"/proc/{srv.process.pid}/cmdline").read_bytes()
    assert KEY.encode() not in argv and str(key_file).encode() in argv


def test_owner_ids_are_keyed_and_old_data_folders_keep_their_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    legacy = "key-" + hashlib.sha256(KEY.encode()).hexdigest()[:12]  # the id before the secret
    old = Store(data / DB_NAME)
    old.add_file("file_old", legacy, "old.jsonl", "fine-tune", 10, None)
    old.set_file_checked("file_old", True, 1, [])
    old.close()
    with ServerProcess(data, api_key=KEY) as srv, http(srv, KEY) as client:
        listed = [f["id"] for f in client.get("/files").json()["files"]]
        new_id = upload(client, tmp_path)
    owners = {
        r["id"]: r["owner"] for r in Store(data / DB_NAME).read("SELECT id, owner FROM files")
    }
    secret = bytes.fromhex((data / "owner_secret").read_text().strip())
    expected = "key-" + hmac.new(secret, KEY.encode(), hashlib.sha256).hexdigest()[:24]
    assert listed == ["file_old"]
    assert owners == {"file_old": expected, new_id: expected} and expected != legacy


def test_the_queue_is_fair_across_tenants(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    alice_key, bob_key, carol_key = (
        "sk-alice-0000000000",
        "sk-bob-000000000000",
        "sk-carol-000000000",
    )
    keys.write_text(f"{alice_key} alice\n{bob_key} bob\n{carol_key} carol\n")
    env = {**ENV, "SYNTH_LAB_FAKE_STEP_SECONDS": "0.05"}
    args = ["--keys-file", str(keys), *RUNNER]
    with (
        FakeServer(tmp_path / "data", extra_args=args, env=env) as srv,
        http(srv, alice_key) as alice,
        http(srv, bob_key) as bob,
        http(srv, carol_key) as carol,
    ):
        # Carol's long job holds the only GPU while the others queue up.
        blocker = carol.post("/learning/jobs", json=job(upload(carol, tmp_path, 5000))).json()["id"]
        carol.post(f"/learning/jobs/{blocker}/start", json={})
        wait_event(carol, blocker, "sft.training.started")  # its worker runs
        a_file, b_file = upload(alice, tmp_path, 5), upload(bob, tmp_path, 5)
        a_jobs = [alice.post("/learning/jobs", json=job(a_file)).json()["id"] for _ in "123"]
        b_job = bob.post("/learning/jobs", json=job(b_file)).json()["id"]
        for job_id in a_jobs:  # Alice queues three jobs, then Bob one
            alice.post(f"/learning/jobs/{job_id}/start", json={})
        bob.post(f"/learning/jobs/{b_job}/start", json={})
        carol.post(f"/learning/jobs/{blocker}/cancel")
        done = [finish(bob, b_job)] + [finish(alice, j) for j in a_jobs]
    started = sorted(done, key=lambda d: d["started_at"])
    # One GPU: Alice's first job runs, then Bob's, not after all of Alice's.
    assert [d["id"] for d in started] == [a_jobs[0], b_job, a_jobs[1], a_jobs[2]]


def test_fair_order_takes_turns_and_caps_running_jobs() -> None:
    rows = [{"id": f"a{i}", "owner": "alice"} for i in range(3)] + [{"id": "b0", "owner": "bob"}]
    order = [r["id"] for r in fair_order(rows, {}, Limits(max_running_jobs=0))]
    capped = [r["id"] for r in fair_order(rows, {"alice": 1}, Limits(max_running_jobs=1))]
    assert order == ["a0", "b0", "a1", "a2"] and capped == ["b0"]


def test_events_name_the_requested_model_not_its_local_path(tmp_path: Path) -> None:
    store = Store(tmp_path / DB_NAME)
    store.add_job("job_1", "alice", "house-model", {}, {}, 0, None)
    DBLogger(store, "job_1", model="house-model").start(
        RunInfo(total_steps=3, start_step=0, model=str(tmp_path / "models" / "house-model"))
    )
    started = [e for e in store.events("job_1", 0, 10) if e["type"] == "sft.training.started"]
    assert started[0]["data"]["model"] == "house-model" and str(tmp_path) not in str(started)


@pytest.mark.parametrize("flag", [["--runner", FAKE], ["--gpus", "4"], ["--fault", "503:1"]])
def test_the_production_cli_has_no_test_hooks(flag: list[str]) -> None:
    from synth_lab.server.cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(flag)
    assert parser.parse_args([]).__dict__.keys().isdisjoint({"runner", "gpus", "fault"})
