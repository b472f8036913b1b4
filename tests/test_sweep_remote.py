"""Remote sweeps against the project's server on loopback (stand-in trainer): points in
flight together and never more than asked, early stops cancelled, and a sweep process killed
mid-sweep, then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import GOLDEN, chat, write_jsonl
from server_doubles import FAKE, FakeServer

from synth_lab._procs import signal_group
from synth_lab.config import SFTConfig
from synth_lab.errors import SynthLabError
from synth_lab.server.process import ServerProcess
from synth_lab.sweep import load, run_sweep
from synth_lab.sweep.manifest import Manifest

LR = "hyperparameters.learning_rate"
SEED_TOML = GOLDEN / "seed_minimal_fft_qwen3_4b.toml"  # 4 GPUs a job


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--runner", FAKE, "--gpus", "16"]  # 4 job slots
    args += ["--model-map", "Qwen/Qwen3-4B=synth-lab/tiny-chat"]
    env = {"SYNTH_LAB_FAKE_STEP_SECONDS": "0.05"}
    root = tmp_path_factory.mktemp("sweep-server")
    with FakeServer(root / "data", extra_args=args, env=env) as srv:
        yield srv


@pytest.fixture(autouse=True)
def key(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_API_KEY", server.api_key)


def jobs(server: ServerProcess) -> dict[str, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        docs = client.get("/learning/jobs", params={"limit": 500}).json()["jobs"]
    return {d["id"]: d for d in docs}


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def most_at_once(docs: list[dict[str, Any]]) -> int:
    """The most jobs alive (created, not yet finished) at one moment."""
    spans = [(stamp(d["created_at"]), stamp(d["finished_at"])) for d in docs]
    return max(sum(s <= start < e for s, e in spans) for start, _ in spans)


def data(tmp_path: Path, records: int) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}", f"a{i}") for i in range(records)])


def test_points_run_side_by_side_never_more_than_asked(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = set(jobs(server))
    lrs = [1e-5, 2e-5, 3e-5, 4e-5, 5e-5]
    sweep = run_sweep(
        SEED_TOML, {LR: lrs}, data(tmp_path, 10), remote=True, backend=server.url,
        max_parallel=2, output_dir=tmp_path / "sw", live=True, poll_interval=0.1,
    )  # fmt: skip
    # the live table, printed by display() outside a notebook: one frame per redraw
    frames = capsys.readouterr().out.split("sweep · ")[1:]
    assert frames[-1].startswith("succeeded · 5 run(s)")
    assert max(f.count(" running ") for f in frames) == 2
    assert sweep.status == "succeeded"
    assert [r.status for r in sweep.runs] == ["succeeded"] * 5
    assert all(r.steps == 10 and r.series("val.loss")[0] == [5, 10] for r in sweep.runs)
    created = [d for i, d in jobs(server).items() if i not in before]
    assert sorted(d["id"] for d in created) == sorted(r.job_id for r in sweep.runs)
    assert all(d["status"] == "succeeded" for d in created)
    assert most_at_once(created) == 2  # the server had room for 4
    manifest = json.loads((tmp_path / "sw" / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    assert {e["status"] for e in manifest["runs"].values()} == {"succeeded"}


class StopSecond:
    """A rule naming the second point once it has reported step 5 (to test the wiring)."""

    metric = "train.loss"

    def decide(self, curves: dict[str, dict[int, float]], active: list[str]) -> dict[str, int]:
        return {n: 5 for n in active if n.startswith("01-") and 5 in curves.get(n, {})}


def test_an_early_stop_cancels_the_remote_job(server: ServerProcess, tmp_path: Path) -> None:
    sweep = run_sweep(
        SEED_TOML, {LR: [1e-5, 2e-5]}, data(tmp_path, 60), remote=True, backend=server.url,
        max_parallel=2, output_dir=tmp_path / "sw", live=False, poll_interval=0.1,
        early_stop=StopSecond(),
    )  # fmt: skip
    kept, stopped = sweep.runs
    assert kept.status == "succeeded" and kept.steps == 60
    assert (stopped.status, stopped.stopped_step) == ("stopped early", 5)
    assert jobs(server)[stopped.job_id]["status"] == "cancelled"
    assert load(tmp_path / "sw").runs[1].stopped_step == 5


class InterruptAtStep3:
    """Raises ``KeyboardInterrupt`` (the notebook's stop button) once a run reports step 3."""

    metric = "train.loss"

    def decide(self, curves: dict[str, dict[int, float]], active: list[str]) -> dict[str, int]:
        if any(3 in c for c in curves.values()):
            raise KeyboardInterrupt
        return {}


def test_stopping_the_cell_leaves_jobs_running_until_cancel(
    server: ServerProcess, tmp_path: Path
) -> None:
    sweep = run_sweep(
        SEED_TOML, {LR: [1e-5, 2e-5, 3e-5]}, data(tmp_path, 200), remote=True,
        backend=server.url, max_parallel=2, output_dir=tmp_path / "sw", live=False,
        poll_interval=0.1, early_stop=InterruptAtStep3(),
    )  # fmt: skip
    assert sweep.status == "interrupted"
    assert [r.status for r in sweep.runs] == ["interrupted", "interrupted", "queued"]
    ids = [r.job_id for r in sweep.runs[:2]]
    assert all(jobs(server)[i]["status"] in ("queued", "running") for i in ids)  # still going

    reloaded = load(tmp_path / "sw")
    assert [r.name for r in reloaded.cancel()] == [r.name for r in sweep.runs[:2]]
    assert {jobs(server)[i]["status"] for i in ids} == {"cancelled"}
    after = json.loads((tmp_path / "sw" / "manifest.json").read_text())
    assert after["status"] == "cancelled"
    assert [e["status"] for e in after["runs"].values()] == ["cancelled", "cancelled", "queued"]


SWEEP_SCRIPT = f"""
import sys
from synth_lab.sweep import run_sweep
run_sweep(sys.argv[1], {{{LR!r}: [1e-5, 2e-5, 3e-5, 4e-5]}}, sys.argv[2], remote=True,
          backend=sys.argv[3], max_parallel=2, output_dir=sys.argv[4], live=False,
          poll_interval=0.1)
"""


def snapshot(folder: Path) -> dict[str, Any]:
    return Manifest.read(folder).data["runs"] if Manifest.exists(folder) else {}


def comparable(table: Any) -> list[dict[str, Any]]:
    return table.drop(columns=["seconds"]).to_dict("records")


def test_a_killed_sweep_resumes_without_rerunning_anything(
    server: ServerProcess, tmp_path: Path
) -> None:
    train = data(tmp_path, 30)
    folder = tmp_path / "killed"
    before = set(jobs(server))
    args = [sys.executable, "-c", SWEEP_SCRIPT, str(SEED_TOML), str(train), server.url, folder]
    process = subprocess.Popen(args, env={**os.environ}, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until a point has finished and others run
            runs = snapshot(folder).values()
            if any(r["status"] == "succeeded" for r in runs) and any(
                r["status"] == "running" and r.get("job_id") for r in runs
            ):
                break
            assert process.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.02)
        signal_group(process, signal.SIGKILL)
    finally:
        process.wait(30)
    at_kill = snapshot(folder)
    done = {n: r["job_id"] for n, r in at_kill.items() if r["status"] == "succeeded"}
    # A point the kill caught between recording its key and creating its job has no id yet:
    # resuming creates it with the recorded key (the no-duplicate check below covers it).
    going = {
        n: r["job_id"] for n, r in at_kill.items() if r["status"] == "running" and r.get("job_id")
    }
    assert done and going

    interrupted = load(folder)  # a kernel restart: the state is all there
    assert {r.name for r in interrupted.runs if r.status == "succeeded"} == set(done)
    assert all(r.series("train.loss")[0] for r in interrupted.runs if r.name in done)

    axes = {LR: [1e-5, 2e-5, 3e-5, 4e-5]}
    common = {"remote": True, "backend": server.url, "max_parallel": 2, "live": False}
    with pytest.raises(SynthLabError, match="already holds this sweep"):
        run_sweep(SEED_TOML, axes, train, output_dir=folder, **common)
    with pytest.raises(SynthLabError, match="holds another sweep"):
        run_sweep(SEED_TOML, {LR: [1e-5]}, train, output_dir=folder, resume=True, **common)
    resumed = run_sweep(
        SEED_TOML, axes, train, output_dir=folder, resume=True, poll_interval=0.1, **common
    )
    assert resumed.status == "succeeded"
    assert [r.status for r in resumed.runs] == ["succeeded"] * 4
    final = {r.name: r.job_id for r in resumed.runs}
    assert {n: final[n] for n in done} == done  # finished points were not rerun
    assert {n: final[n] for n in going} == going  # running points were reattached
    created = {i for i in jobs(server) if i not in before}
    assert created == set(final.values())  # no point submitted twice

    fresh = run_sweep(
        SEED_TOML, axes, train, output_dir=tmp_path / "fresh", poll_interval=0.1, **common
    )
    assert comparable(resumed.table) == comparable(fresh.table)
    assert comparable(load(folder).table) == comparable(fresh.table)


def test_load_names_a_folder_without_a_sweep(tmp_path: Path) -> None:
    with pytest.raises(SynthLabError, match="not a sweep folder"):
        load(tmp_path)
    SFTConfig.from_file(SEED_TOML)  # the seed config stays valid for the tests above
