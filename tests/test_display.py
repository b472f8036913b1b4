"""What the display objects give a frontend: text/plain and text/html, never application/json.

JupyterLab prefers ``application/json`` over ``text/html`` and would show a collapsed JSON tree
instead of the report, so the data is reachable only through ``.to_dict()``. The bundles are
taken through the shell's own display formatter, as a kernel would send them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import GOLDEN
from IPython.core.interactiveshell import InteractiveShell

from synth_lab.client import SynthClient
from synth_lab.client.remote import RemoteJob
from synth_lab.job.dryrun import dry_run
from synth_lab.samples import sample_path
from synth_lab.sweep.grid import SweepPoint
from synth_lab.sweep.result import SweepResult, SweepRun
from synth_lab.train.result import TrainResult

SEED_TOML = (GOLDEN / "seed_minimal_fft_qwen3_4b.toml").read_text()


def mime_types(shell: InteractiveShell, obj: Any) -> set[str]:
    data, _ = shell.display_formatter.format(obj)
    return set(data)


def html_of(shell: InteractiveShell, obj: Any) -> str:
    data, _ = shell.display_formatter.format(obj)
    return data["text/html"]


def test_every_display_object_sends_html_and_text_only(shell: InteractiveShell) -> None:
    train_path = sample_path("chat_sample")
    config = shell.run_cell(f"%%sft_config cfg\n{SEED_TOML}").result
    dry = shell.run_cell(f"%sft_train --dry-run --config cfg --dataset {train_path}").result
    dataset = shell.run_cell(f"%sft_data {train_path}").result
    result = TrainResult(
        status="succeeded",
        steps=3,
        output_dir=Path("runs/x"),
        summary={"model": "<m>", "mode": "full", "world_size": 1, "strategy": "single"},
    )
    client = SynthClient(api_key="sk-display-test", base_url="http://127.0.0.1:9")
    job = RemoteJob(client, "job_1", {"id": "job_1", "status": "running", "model": "m"})
    point = SweepPoint(0, {"hyperparameters.learning_rate": 1e-3}, config)
    sweep = SweepResult([SweepRun(point, status="succeeded", result=result)])

    objects = {"config": config, "dry run": dry, "dataset": dataset, "train result": result}
    objects |= {"remote job": job, "sweep": sweep}
    for name, obj in objects.items():
        assert mime_types(shell, obj) == {"text/plain", "text/html"}, name

    # The report itself, and the data still there for programs.
    assert "<b>Dry run</b>" in html_of(shell, dry) and "<table>" in html_of(shell, dry)
    assert json.loads(json.dumps(dry.to_dict()))["payload"] == dry.payload
    assert json.loads(json.dumps(result.to_dict()))["status"] == "succeeded"
    assert "&lt;m&gt;" in html_of(shell, result)


def test_a_dry_run_with_errors_shows_them_as_html(shell: InteractiveShell, tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "<hi>"}]}\n')
    shell.run_cell(f"%%sft_config cfg\n{SEED_TOML}")
    dry = dry_run(shell.user_ns["cfg"], data)
    assert not dry.ok
    assert mime_types(shell, dry) == {"text/plain", "text/html"}
    assert dry.errors_dict()
