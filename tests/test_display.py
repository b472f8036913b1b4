"""What the display objects give a frontend: text/plain and text/html, never application/json.

JupyterLab prefers ``application/json`` over ``text/html`` and would show a collapsed JSON tree
instead of the report, so the data is reachable only through ``.to_dict()``. The bundles are
taken through the shell's own display formatter, as a kernel would send them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
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


# Text a user controls, with what HTML output must not pass through raw: markup, quotes, and the
# dollar signs JupyterLab would typeset as LaTeX.
NASTY = "cost $x$ <b>bold</b> \"dq\" 'sq'"


def _dataset(role: str = NASTY, content: str = "hi") -> Any:
    """A dataset whose role shows in its table and its problem list, and content in previews."""
    from synth_lab.data.dataset import Dataset

    messages = [{"role": role, "content": content}, {"role": "assistant", "content": "ok"}]
    return Dataset.from_records([{"messages": messages}])


def _preview() -> Any:
    from conftest_data import tiny_tokenizer

    return _dataset("user", NASTY).preview(0, tiny_tokenizer())


def _train_result() -> Any:
    return TrainResult(
        status="succeeded", steps=1, output_dir=Path("runs/x"), summary={"model": NASTY}
    )


def _remote_job() -> Any:
    client = SynthClient(api_key="sk-display-test", base_url="http://127.0.0.1:9")
    return RemoteJob(client, "job_1", {"id": "job_1", "status": "running", "model": NASTY})


def _sweep(config: Any) -> Any:
    point = SweepPoint(0, {"job.suffix": NASTY}, config)
    return SweepResult([SweepRun(point, status="failed", error=NASTY)])


def _sweep_frame(config: Any) -> Any:
    from synth_lab.sweep.view import SweepView

    return SweepView(_sweep(config)).frame()


def _live_frame() -> Any:
    from synth_lab.train.live import LiveView
    from synth_lab.train.metrics import RunInfo

    view = LiveView(display=lambda *a, **k: None)
    view.start(RunInfo(total_steps=3, model=NASTY))
    view.annotate(NASTY)
    return view.frame()


def _comparison() -> Any:
    from synth_lab.train.compare import Comparison

    return Comparison([NASTY], [NASTY], [f"{NASTY} more"])


def _plan(config: Any) -> Any:
    from synth_lab.plan import estimate

    return estimate(config, gpu_type=NASTY, gpu_memory=16 << 30, suggest=False)


DISPLAYS = {
    "config": lambda config: config.replace({"job.model": NASTY}),
    "dry run": lambda config: dry_run(
        config.replace({"job.model": NASTY}), sample_path("chat_sample"), examples=4
    ),
    "dataset": lambda config: _dataset(),
    "chat preview": lambda config: _preview(),
    "problems": lambda config: _dataset().problems,
    "train result": lambda config: _train_result(),
    "remote job": lambda config: _remote_job(),
    "sweep": _sweep,
    "live sweep": _sweep_frame,
    "live view": lambda config: _live_frame(),
    "comparison": lambda config: _comparison(),
    "plan": _plan,
}


@pytest.mark.parametrize("name", DISPLAYS)
def test_user_text_is_escaped_in_every_display_object(shell: InteractiveShell, name: str) -> None:
    config = shell.run_cell(f"%%sft_config cfg\n{SEED_TOML}").result
    page = html_of(shell, DISPLAYS[name](config))
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "$" not in page and "&#36;x&#36;" in page
    assert '"dq"' not in page and "'sq'" not in page
    # MathJax reads the rendered text, where &#36; is a $ again: the class is what stops it
    guard = '<div class="mathjax_ignore tex2jax_ignore">'
    assert guard in page and page.index(guard) < page.index("&#36;x&#36;"), page[:120]
