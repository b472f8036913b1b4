"""The ``synth-lab`` command: exit codes, JSON shapes, and that a dry run sends nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GOLDEN, SEEDS, chat, write_jsonl

MINIMAL_SEED = GOLDEN / "seed_minimal_fft_qwen3_4b.toml"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synth_lab.cli", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_dry_run_json_prints_the_golden_payload(seed: str, train_jsonl: Path) -> None:
    out = cli(
        "train", "--type", "sft", "--config", str(GOLDEN / f"{seed}.toml"),
        "--dataset", str(train_jsonl), "--dry-run", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["payload"] == json.loads((GOLDEN / f"{seed}.payload.json").read_text())
    assert doc["dataset"] == {"path": str(train_jsonl), "records": 10, "problems": []}
    assert set(doc) >= {"payload", "warnings", "dropped_keys", "dataset"}


def test_dry_run_reports_dropped_keys_and_numbers(train_jsonl: Path) -> None:
    seed = GOLDEN / "seed_qwen3_32b_fsdp_4xh100.toml"
    doc = json.loads(
        cli("train", str(seed), "--dataset", str(train_jsonl), "--dry-run", "--json").stdout
    )
    assert doc["dropped_keys"] == ["compute.variant", "compute.gpus_per_node"]
    assert doc["summary"]["global_batch"] == 64
    assert doc["summary"]["steps_per_epoch"] == 1


def test_dry_run_text_summary(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}") for i in range(2000)])
    out = cli("train", "--config", str(MINIMAL_SEED), "--dataset", str(data), "--dry-run")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "nothing was sent" in text
    assert "2000 records" in text
    assert "4 per epoch × 2 epoch(s) = 8 steps, 1 warmup" in text
    assert '"training_file_id": "file_TRAIN"' in text


def test_examples_limits_the_records(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}") for i in range(30)])
    out = cli(
        "train", str(MINIMAL_SEED), "--dataset", str(data), "--examples", "5", "--dry-run", "--json"
    )
    assert json.loads(out.stdout)["dataset"]["records"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]


@pytest.mark.parametrize("n", ["0", "-3"])
def test_examples_must_be_positive(n: str, train_jsonl: Path) -> None:
    out = cli(
        "train", str(MINIMAL_SEED), "--dataset", str(train_jsonl), "--examples", n, "--dry-run"
    )
    assert out.returncode == 2
    assert "--examples" in out.stderr


def test_bad_config_exits_2_with_json_errors(tmp_path: Path, train_jsonl: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[job]\nmodel = "m"\n[compute]\ngpu_type = "H100"\ngpu_count = 1\n'
        "[hyperparameters]\nlearning_rat = 1\n"
    )
    out = cli("train", str(config), "--dataset", str(train_jsonl), "--dry-run", "--json")
    assert out.returncode == 2
    (error,) = json.loads(out.stdout)["errors"]
    assert error["path"] == "hyperparameters.learning_rat"
    assert (error["line"], error["col"]) == (7, 1)
    assert "learning_rate" in error["hint"]
    assert "learning_rat" in out.stderr


def test_missing_gpu_type_is_caught_before_sending(tmp_path: Path, train_jsonl: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[job]\nmodel = "m"\n')
    out = cli("train", str(config), "--dataset", str(train_jsonl), "--dry-run", "--json")
    assert out.returncode == 2
    codes = {e["code"] for e in json.loads(out.stdout)["errors"]}
    assert "missing_gpu_type" in codes


def test_bad_dataset_exits_2_with_line_numbers(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [chat(), b"{not json", chat(), {"messages": []}])
    out = cli("train", str(MINIMAL_SEED), "--dataset", str(data), "--dry-run", "--json")
    assert out.returncode == 2
    lines = sorted(e["line"] for e in json.loads(out.stdout)["errors"])
    assert lines == [2, 4]


def test_missing_dataset(tmp_path: Path) -> None:
    out = cli("train", str(MINIMAL_SEED), "--dataset", str(tmp_path / "nope.jsonl"), "--dry-run")
    assert out.returncode == 2
    assert "not found" in out.stderr
    assert "None" not in out.stdout + out.stderr  # no "nope.jsonl:None" or "line None"


def test_relative_dataset_resolves_from_cwd(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "rel.jsonl", [chat()])
    out = cli(
        "train", str(MINIMAL_SEED), "--dataset", "rel.jsonl", "--dry-run", "--json", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr


def test_invalid_toml_exit_code(tmp_path: Path, train_jsonl: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[job]\nmodel = "m"\n[hyperparameters]\nsequence_length = 2048*2\n')
    out = cli("train", str(config), "--dataset", str(train_jsonl), "--dry-run")
    assert out.returncode == 2
    assert "4:23" in out.stderr and "arithmetic" in out.stderr


def test_data_lint_json_shape(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [chat(), b"\xff\xfe", "", {"messages": "x"}])
    out = cli("data", "lint", str(data), "--json")
    assert out.returncode == 2
    doc = json.loads(out.stdout)
    assert doc["records"] == 3
    errors = [(p["line"], p["code"]) for p in doc["problems"] if p["severity"] == "error"]
    assert [line for line, _ in errors] == [2, 4]
    assert set(doc["problems"][0]) >= {"line", "path", "code", "severity", "message"}


def test_data_lint_clean_file(train_jsonl: Path) -> None:
    out = cli("data", "lint", str(train_jsonl))
    assert out.returncode == 0
    assert "10 records, 0 error(s)" in out.stderr


def test_data_lint_missing_file(tmp_path: Path) -> None:
    out = cli("data", "lint", str(tmp_path / "nope.jsonl"), "--json")
    assert out.returncode == 2
    assert json.loads(out.stdout)["errors"][0]["message"]


def test_local_dry_run_does_not_need_gpu_type(tmp_path: Path, train_jsonl: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[job]\nmodel = "synth-lab/tiny-chat"\n')
    out = cli("train", str(config), "--dataset", str(train_jsonl), "--dry-run", "--local", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["summary"]["records"] == 10
