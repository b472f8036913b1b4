"""Dry-run warnings about the plan: batch against data, and the local machine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import chat, write_jsonl

from synth_lab import readiness
from synth_lab.config import SFTConfig
from synth_lab.job.dryrun import dry_run

TINY = '[job]\nmodel = "synth-lab/tiny-chat"\n'


def codes(run) -> dict[str, object]:
    return {p.code: p for _, p in run.problems}


def test_global_batch_larger_than_the_dataset_warns(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}") for i in range(10)])
    cfg = SFTConfig.from_toml(TINY + "[hyperparameters]\nglobal_batch = 16\n")
    run = dry_run(cfg, data, local=True)
    problem = codes(run)["batch_exceeds_dataset"]
    assert problem.severity == "warning" and run.ok
    assert "global batch (16 sequences) is larger than the dataset (10 records)" in problem.message
    assert "less than one full optimizer step per epoch" in problem.message
    enough = SFTConfig.from_toml(TINY + "[hyperparameters]\nglobal_batch = 10\n")
    assert "batch_exceeds_dataset" not in codes(dry_run(enough, data, local=True))


def test_local_dry_run_checks_that_the_model_is_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = write_jsonl(tmp_path / "d.jsonl", [chat()])
    missing = SFTConfig.from_toml('[job]\nmodel = "nobody/not-a-model"\n')
    run = dry_run(missing, data, local=True)
    problem = codes(run)["model_not_found"]
    assert problem.severity == "error" and problem.line == 2 and not run.ok
    assert "'nobody/not-a-model' is not in the local Hugging Face cache" in problem.message
    # a remote dry run does not ask: the backend has the model
    assert "model_not_found" not in codes(dry_run(missing, data))
    # a local folder and the built-in tiny model are found
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    local = SFTConfig.from_toml(f'[job]\nmodel = "{folder}"\n')
    assert "model_not_found" not in codes(dry_run(local, data, local=True))
    assert "model_not_found" not in codes(dry_run(SFTConfig.from_toml(TINY), data, local=True))


def test_local_dry_run_checks_the_gpu_count_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [chat() for _ in range(8)])
    cfg = SFTConfig.from_toml(TINY + "[compute]\ngpu_count = 4\n")
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as in a fresh kernel
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert readiness.visible_gpus() == 2
    problem = codes(dry_run(cfg, data, local=True))["too_many_gpus"]
    assert "asks for 4 GPUs but this machine has 2" in problem.message
    assert problem.line == 4
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    problem = codes(dry_run(cfg, data, local=True))["too_many_gpus"]
    assert "has none" in problem.message and "one process on the CPU" in problem.message
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert "too_many_gpus" not in codes(dry_run(cfg, data, local=True))
