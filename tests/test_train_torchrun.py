"""One job, started by the cluster's engines: torchrun (one node, two simulated nodes on
loopback) and Slurm's variables; ``synth-lab launch`` prints the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_jsonl
from test_train_support import config_text, records, shared_cache

torch = pytest.importorskip("torch")

from synth_lab.cli import main as cli  # noqa: E402
from synth_lab.errors import TrainingError  # noqa: E402
from synth_lab.models import tiny_chat_path  # noqa: E402
from synth_lab.train import run  # noqa: E402
from synth_lab.train.distributed import launched_as_rank, rank_from_environ  # noqa: E402
from synth_lab.train.metrics import TRAIN_LOSS  # noqa: E402

BIN = Path(sys.executable).parent
HERE = Path(__file__).parent


def test_ranks_come_from_torchrun_or_slurm_and_contradictions_are_refused() -> None:
    assert rank_from_environ({}) == (0, 1, 0)
    assert rank_from_environ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == (3, 4, 1)
    slurm = {"SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "2", "SLURM_LOCALID": "0"}
    master = {"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
    assert rank_from_environ({**slurm, **master}) == (2, 4, 0)
    assert launched_as_rank(slurm) and not launched_as_rank({"SLURM_NTASKS": "4"})
    # srun torchrun: one task per node, torchrun's ranks inside.
    per_node = {"SLURM_STEP_NUM_TASKS": "2", "RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}
    assert rank_from_environ(per_node) == (5, 8, 1)
    bad = [
        ({**slurm, **master, "SLURM_PROCID": "4"}, "SLURM_PROCID='4'"),
        ({**slurm, "SLURM_LOCALID": ""}, "SLURM_LOCALID"),
        (slurm, "MASTER_ADDR/MASTER_PORT"),
        ({**slurm, "RANK": "0", "WORLD_SIZE": "1"}, "not a multiple of the 4 Slurm tasks"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "does not fit"),
        ({"RANK": "x", "WORLD_SIZE": "2"}, "not a number"),
    ]
    for environ, message in bad:
        with pytest.raises(TrainingError, match=message):
            rank_from_environ(environ)


def test_launch_prints_a_slurm_script_and_per_node_torchrun_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "sft.toml"
    cfg.write_text(config_text(extra="[compute]\nnodes = 2\ngpus_per_node = 8"))
    assert cli(["launch", "--config", str(cfg), "--dataset", "d.jsonl", "--emit", "slurm"]) == 0
    script = capsys.readouterr().out
    assert script.startswith("#!/bin/bash\n#SBATCH --job-name=synth-lab-sft\n#SBATCH --nodes=2")
    assert "#SBATCH --gpus-per-node=8" in script and "#SBATCH --ntasks-per-node=1" in script
    srun = next(line for line in script.splitlines() if line.startswith("srun torchrun"))
    assert "--nproc_per_node=8" in srun and '--rdzv_id="$SLURM_JOB_ID"' in srun
    assert f"-- train --local --config {cfg} --dataset {Path('d.jsonl').resolve()}" in srun
    assert "shares" in script and "Rendezvous" in script  # the comments explain both

    args = ["launch", "--config", str(cfg), "--dataset", "d.jsonl", "--emit", "torchrun"]
    assert cli([*args, "--nodes", "3", "--gpus-per-node", "2", "--output-dir", "o"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("torchrun")]
    assert [line.split()[2] for line in lines] == [f"--node_rank={n}" for n in range(3)]
    assert all(f"--output-dir {Path('o').resolve()} --json" in line for line in lines)


# -- real processes ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with shared_cache(tmp_path_factory) as path:
        tiny_chat_path()  # built once here, not by two ranks at once
        yield path


def job_env() -> dict[str, str]:
    path = os.pathsep.join([str(BIN), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "PYTHONPATH": str(HERE.parent), "OMP_NUM_THREADS": "1"}


def losses_in(folder: Path) -> list[float]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r["value"] for r in sorted(rows, key=lambda r: r["step"]) if r["name"] == TRAIN_LOSS]


@pytest.mark.slow
def test_synth_lab_train_under_torchrun_is_one_job(cache: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "sft.toml"
    cfg.write_text(config_text(parallel="fsdp = true"))
    data = write_jsonl(tmp_path / "train.jsonl", records(32, seed=4))
    out = tmp_path / "torchrun"
    train = f"train --local --config {cfg} --dataset {data} --output-dir {out} --max-steps 3"
    # Exactly the command README gives, `--` included.
    command = f"torchrun --nnodes=1 --nproc_per_node=2 $(command -v synth-lab) -- {train} --json"
    done = subprocess.run(
        ["bash", "-c", command], env=job_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # one JSON object: rank 0's, the other rank printed none
    assert result["status"] == "succeeded" and result["steps"] == 3
    assert len(losses_in(out)) == 3  # one writer of metrics.jsonl

    reference = run(cfg, data, output_dir=tmp_path / "nproc", max_steps=3, nproc=2, live=False)
    assert reference.summary["strategy"] == "FSDP (full_shard)"
    ref = [p.value for p in sorted(reference.points, key=lambda p: p.step) if p.name == TRAIN_LOSS]
    assert losses_in(out) == pytest.approx(ref, rel=1e-4)


@pytest.mark.slow
def test_two_simulated_nodes_on_loopback_make_one_completed_run(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from synth_lab.train.launcher import free_port

    cfg = tmp_path / "sft.toml"
    cfg.write_text(config_text(extra="[compute]\nnodes = 2\ngpus_per_node = 1"))
    data = write_jsonl(tmp_path / "train.jsonl", records(16, seed=2))
    out = tmp_path / "two-nodes"
    args = ["launch", "--config", str(cfg), "--dataset", str(data), "--emit", "torchrun"]
    args += ["--output-dir", str(out), "--max-steps", "2", "--master-addr", "127.0.0.1"]
    assert cli([*args, "--master-port", str(free_port())]) == 0
    nodes = [x for x in capsys.readouterr().out.splitlines() if x.startswith("torchrun")]
    assert len(nodes) == 2
    procs = [
        subprocess.Popen(["bash", "-c", line], env=job_env(), stdout=subprocess.PIPE, text=True)
        for line in nodes
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    printed = [json.loads(o) for o in outputs if o.strip()]
    assert len(printed) == 1 and printed[0]["status"] == "succeeded"
    assert (out / "final" / "model.safetensors").is_file() and len(losses_in(out)) == 2
    summary = json.loads((out / "final" / "training_summary.json").read_text())
    assert summary["world_size"] == 2
