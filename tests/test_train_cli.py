"""``synth-lab train --local``: trains, prints one JSON object with --json; --dry-run unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_jsonl
from test_train_support import config_text, records, shared_cache

pytest.importorskip("torch")

from synth_lab.cli import main
from synth_lab.results import KEYS


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with shared_cache(tmp_path_factory) as path:
        yield path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "sft.toml"
    val = write_jsonl(tmp_path / "val.jsonl", records(4, seed=9))
    config.write_text(
        config_text(
            extra=f'[data]\nvalidation_path = "{val}"\n[training.validation]\neval_steps = 1'
        )
    )
    return config, write_jsonl(tmp_path / "train.jsonl", records(20))


def test_local_json_is_one_object_with_the_outcome(files, tmp_path, capsys) -> None:
    config, data = files
    out = tmp_path / "out"
    argv = ["train", "--local", "--config", str(config), "--dataset", str(data)]
    code = main([*argv, "--output-dir", str(out), "--max-steps", "2", "--examples", "16", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    result = json.loads(captured.out)  # exactly one JSON document on stdout
    assert result["status"] == "succeeded" and result["steps"] == 2
    assert result["train_loss"] > 0 and result["best_val_loss"] > 0
    # the shape a remote job's --json has, then the local details
    assert list(result)[: len(KEYS)] == list(KEYS) and result["model"] == result["final_dir"]
    assert result["seconds"] > 0 and result["error"] is None and "train.loss" in result["metrics"]
    assert result["output_dir"] == str(out.resolve())
    assert result["summary"]["records"] == 16
    assert Path(result["final_dir"], "README.md").is_file()
    assert "step 2/2" in captured.err  # progress goes to stderr

    # Resuming a finished run with more steps continues from its last checkpoint.
    code = main(
        [
            *argv,
            "--output-dir",
            str(out),
            "--max-steps",
            "3",
            "--examples",
            "16",
            "--resume",
            "--json",
        ]
    )
    resumed = json.loads(capsys.readouterr().out)
    assert code == 0 and resumed["steps"] == 3
    assert resumed["summary"]["resumed_from"].endswith("step-000002")


def test_local_text_output_and_invalid_data_exit_codes(files, tmp_path, capsys) -> None:
    config, data = files
    code = main(["train", str(config), "--local", "--dataset", str(data), "--max-steps", "1",
                 "--output-dir", str(tmp_path / "o")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("TrainResult(succeeded: 1/") and "model: " in out

    bad = write_jsonl(tmp_path / "bad.jsonl", [{"messages": "nope"}])
    code = main(["train", str(config), "--local", "--dataset", str(bad), "--json"])
    assert code == 2
    assert json.loads(capsys.readouterr().out)["errors"]


def test_dry_run_wins_over_local(files, capsys) -> None:
    config, data = files
    config.write_text(config.read_text() + '[compute]\ngpu_type = "H100"\ngpu_count = 1\n')
    code = main(["train", str(config), "--local", "--dry-run", "--dataset", str(data), "--json"])
    assert code == 0
    assert "payload" in json.loads(capsys.readouterr().out)
