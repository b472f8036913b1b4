"""The command-line pieces: ``run_remote`` (``synth-lab train`` without ``--dry-run``) and the
``serve`` parser, against a real server."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import chat, write_jsonl
from server_doubles import FAKE, FakeServer

from synth_lab.cli import _parser
from synth_lab.cli.remote import run_remote
from synth_lab.cli.serve import add_serve_parser
from synth_lab.errors import ConfigError
from synth_lab.results import KEYS
from synth_lab.server.cli import parse_model_map, read_keys_file, resolve_keys
from synth_lab.server.process import ServerProcess

CONFIG = """
[job]
model = "synth-lab/tiny-chat"

[compute]
gpu_type = "A100"
gpu_count = 1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--runner", FAKE, "--gpus", "1"]
    with FakeServer(tmp_path_factory.mktemp("cli"), extra_args=args) as srv:
        yield srv


def train_args(tmp_path: Path, server: ServerProcess, *extra: str) -> argparse.Namespace:
    """``synth-lab train CONFIG --backend URL ...`` parsed by the real command-line parser."""
    config = tmp_path / "sft.toml"
    config.write_text(CONFIG)
    return _parser().parse_args(
        ["train", str(config), "--backend", server.url, "--poll-interval", "0.05", *extra]
    )


@pytest.fixture(autouse=True)
def key(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_API_KEY", server.api_key)


def test_run_remote_watches_and_prints_one_json_object(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "t.jsonl", [chat(f"q{i}", "a") for i in range(7)])
    code = run_remote(train_args(tmp_path, server, "--dataset", str(data), "--json"))
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 0
    assert doc["status"] == "succeeded" and doc["steps"] == 7 and doc["backend"] == server.url
    assert set(doc["metrics"]) == {"train.loss", "train.learning_rate", "val.loss"}
    # the shape a local run's --json has, then the remote details
    assert list(doc)[: len(KEYS)] == list(KEYS) and doc["total_steps"] == 7
    assert doc["model"] == doc["fine_tuned_model"] and doc["model"].endswith(doc["job_id"])
    assert doc["train_loss"] == doc["metrics"]["train.loss"] and doc["best_val_loss"] > 0
    assert doc["seconds"] >= 0 and doc["error"] is None
    assert f"submitted job {doc['job_id']}" in err
    assert server.api_key not in out + err


def test_run_remote_failure_exit_code(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "t.jsonl", [chat("q", "a"), chat("fake-fail", "x")])
    assert run_remote(train_args(tmp_path, server, "--dataset", str(data))) == 1
    assert "failed: RuntimeError: injected failure at step 2" in capsys.readouterr().err


def test_no_poll_then_attach(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "t.jsonl", [chat(f"q{i}", "a") for i in range(5)])
    assert (
        run_remote(train_args(tmp_path, server, "--dataset", str(data), "--no-poll", "--json")) == 0
    )
    submitted = json.loads(capsys.readouterr().out)
    assert submitted["status"] in ("queued", "running")
    args = train_args(tmp_path, server, "--attach", submitted["job_id"], "--json")
    assert run_remote(args) == 0
    attached = json.loads(capsys.readouterr().out)
    assert attached["job_id"] == submitted["job_id"] and attached["status"] == "succeeded"


def test_dry_run_errors_raise_before_sending(server: ServerProcess, tmp_path: Path) -> None:
    args = train_args(tmp_path, server, "--dataset", str(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError, match="not found"):
        run_remote(args)


def test_serve_parser_flags() -> None:
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "serve",
            "--port",
            "9000",
            "--data-dir",
            "d",
            "--api-key",
            "k" * 12,
            "--model-map",
            "A=b",
            "--model-map",
            "C=/x",
            "--accept-any-compute",
        ]
    )
    assert (args.host, args.port, args.data_dir, args.accept_any_compute) == (
        "127.0.0.1",
        9000,
        "d",
        True,
    )
    assert parse_model_map(args.model_map) == {"A": "b", "C": "/x"}
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--api-key", "a", "--keys-file", "f"])


def test_keys_file_and_generated_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keys.write_text("k1-aaaaaaaaaaaa team\nk2-bbbbbbbbbbbb team # same owner\nk3-cccccccccccc\n")
    found = read_keys_file(keys)
    assert found["k1-aaaaaaaaaaaa"] == found["k2-bbbbbbbbbbbb"] == "team"
    assert found["k3-cccccccccccc"] is None  # its own owner; the server derives the id
    monkeypatch.delenv("SYNTH_API_KEY", raising=False)
    ns = argparse.Namespace(keys_file=None, api_key=None, api_key_file=None)
    first, where = resolve_keys(ns, tmp_path / "data")
    again, _ = resolve_keys(ns, tmp_path / "data")
    assert first == again and "api_key" in where
    assert (tmp_path / "data" / "api_key").stat().st_mode & 0o077 == 0


def test_the_synth_lab_command_submits_and_watches(server: ServerProcess, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    config = tmp_path / "sft.toml"
    config.write_text(CONFIG)
    data = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}", f"a{i}") for i in range(5)])
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "synth_lab.cli",
            "train",
            "--type",
            "sft",
            "--config",
            str(config),
            "--dataset",
            str(data),
            "--backend",
            server.url,
            "--json",
            "--poll-interval",
            "0.05",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "SYNTH_API_KEY": server.api_key},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == "succeeded" and doc["steps"] == 5
    assert server.api_key not in out.stdout + out.stderr
