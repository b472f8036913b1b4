"""The ipywidgets UIs, driven from Python: set child widgets' values and click their buttons."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import chat, write_jsonl

pytest.importorskip("ipywidgets")

from synth_lab.config import SFTConfig
from synth_lab.widgets import ConfigEditor, DatasetExplorer, JobMonitor
from synth_lab.widgets.config_editor import form_fields

PNG = b"\x89PNG\r\n\x1a\n"
TOML = """\
[job]
model = "synth-lab/tiny-chat"  # the base model

[hyperparameters]
n_epochs = 2
learning_rate = 1e-4
"""


@pytest.fixture
def config() -> SFTConfig:
    return SFTConfig.from_toml(TOML)


def test_importing_the_widgets_is_light() -> None:
    heavy = ("torch", "transformers", "pandas", "matplotlib")
    probe = (
        f"import sys, synth_lab.widgets\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- ConfigEditor ---------------------------------------------------------------------------------


def test_form_is_derived_from_the_schema() -> None:
    groups = dict(form_fields())
    assert list(groups) == [
        "job",
        "data",
        "compute",
        "hyperparameters",
        "hyperparameters.parallelism",
        "training",
        "training.lora",
        "training.validation",
    ]
    kinds = {spec.path: spec.kind for specs in groups.values() for spec in specs}
    assert kinds["job.model"] == "str" and kinds["job.data"] == "str"
    assert kinds["data.validation_path"] == "str"
    assert kinds["compute.gpu_count"] == "int"
    assert kinds["hyperparameters.learning_rate"] == "float"
    assert kinds["hyperparameters.train_kind"] == "choice"
    assert kinds["training.use_qlora"] == "bool"
    assert kinds["training.mode"] == "choice"  # free text with known values
    assert kinds["hyperparameters.parallelism.fsdp_sharding_strategy"] == "choice"
    assert kinds["hyperparameters.parallelism.bf16"] == "bool"
    assert kinds["training.lora.alpha"] == "float"  # int | float
    assert kinds["training.lora.target_modules"] == "list"
    assert kinds["training.validation.evaluation_strategy"] == "choice"
    # Tables and old spellings are left out.
    assert "data.topology" not in kinds and "hyperparameters.lora_rank" not in kinds


def test_widgets_match_types_and_unset_keys_are_blank(config: SFTConfig) -> None:
    import ipywidgets as w

    editor = ConfigEditor(config)
    fields = editor.fields
    assert isinstance(fields["training.use_qlora"], w.Dropdown)  # not set / true / false
    assert isinstance(fields["training.validation.enabled"], w.Checkbox)
    assert isinstance(fields["training.mode"], w.Dropdown)
    assert "qlora" in [v for _, v in fields["training.mode"].options]
    assert isinstance(fields["training.validation.evaluation_strategy"], w.Dropdown)
    assert isinstance(fields["training.lora.target_modules"], w.TagsInput)
    assert isinstance(fields["job.model"], w.Text)
    assert fields["hyperparameters.n_epochs"].value == "2"
    assert fields["hyperparameters.learning_rate"].value == "0.0001"
    # What the TOML does not write is blank, never 0 or an unticked box
    assert fields["compute.gpu_count"].value == ""
    assert fields["training.lora.r"].value == "" and "default: 16" in (
        fields["training.lora.r"].placeholder
    )
    assert fields["training.use_qlora"].value == ""
    assert fields["training.lora.target_modules"].value == []
    assert fields["hyperparameters.learning_rate"].tooltip.startswith("Peak learning rate.")
    assert editor.form.get_title(0) == "[job]" and editor.form.get_title(1) == "[data]"
    bundle = editor._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_editing_makes_a_new_config_and_leaves_the_old_one(config: SFTConfig) -> None:
    editor = ConfigEditor(config)
    seen: list[SFTConfig] = []
    editor.on_change(seen.append)

    editor.fields["hyperparameters.learning_rate"].value = "2e-5"

    assert editor.config is not config
    assert editor.config.hyperparameters.learning_rate == pytest.approx(2e-5)
    assert config.hyperparameters.learning_rate == pytest.approx(1e-4)
    assert seen == [editor.config]
    assert editor.problems == [] and editor.problems_view.value == ""
    assert "# the base model" in editor.toml  # comments survive edits
    assert SFTConfig.from_toml(editor.toml) == editor.config
    assert "learning_rate = 2e-05" in editor.toml_preview.value


def test_an_invalid_value_shows_the_problem_and_keeps_the_last_valid_config(
    config: SFTConfig,
) -> None:
    editor = ConfigEditor(config)
    seen: list[SFTConfig] = []
    editor.on_change(seen.append)

    editor.fields["hyperparameters.n_epochs"].value = "0"

    assert editor.config is config and seen == []
    assert [p.path for p in editor.problems] == ["hyperparameters.n_epochs"]
    assert "n_epochs" in editor.problems_view.value
    assert "greater than 0" in editor.problems_view.value
    assert "n_epochs = 2" in editor.toml_preview.value

    # The failing value stays in the form: another edit cannot validate until it is fixed.
    editor.fields["hyperparameters.learning_rate"].value = "3e-5"
    assert editor.config is config and editor.problems

    editor.fields["hyperparameters.n_epochs"].value = "3"
    assert editor.problems == [] and editor.problems_view.value == ""
    assert editor.config.hyperparameters.n_epochs == 3
    assert editor.config.hyperparameters.learning_rate == pytest.approx(3e-5)
    assert len(seen) == 1

    editor.fields["hyperparameters.n_epochs"].value = "two"  # not a number: said so, no change
    assert "two&#x27; is not a whole number" in editor.problems_view.value
    assert editor.config.hyperparameters.n_epochs == 3


def test_nested_sections_optional_keys_lists_and_reset(config: SFTConfig) -> None:
    editor = ConfigEditor(config)
    editor.fields["training.lora.r"].value = "8"
    editor.fields["training.lora.target_modules"].value = ["q_proj", "v_proj"]
    editor.fields["training.validation.evaluation_strategy"].value = "epoch"
    editor.fields["training.use_qlora"].value = "true"
    editor.fields["compute.gpu_count"].value = "2"
    editor.fields["data.validation_path"].value = "val.jsonl"
    editor.fields["hyperparameters.parallelism.fsdp_sharding_strategy"].value = "no_shard"
    new = editor.config
    assert new.lora.r == 8 and new.train_mode == "qlora" and new.world_size == 2
    assert new.lora.target_modules == ["q_proj", "v_proj"]
    assert new.validation.evaluation_strategy == "epoch"
    assert new.validation_path == "val.jsonl"
    assert new.parallelism.fsdp_sharding_strategy == "no_shard"
    assert 'target_modules = ["q_proj", "v_proj"]' in editor.toml

    editor.fields["compute.gpu_count"].value = ""  # cleared: the key goes away
    assert editor.config.compute is None or editor.config.compute.gpu_count is None
    editor.fields["training.lora.r"].value = ""  # cleared: back to the default
    assert editor.config.lora.r == 16 and "r = 8" not in editor.toml
    editor.fields["job.model"].value = ""  # required: an error
    assert editor.problems and editor.problems[0].path == "job.model"

    editor.reset(config)
    assert editor.problems == [] and editor.config is config
    assert editor.fields["job.model"].value == "synth-lab/tiny-chat"
    assert editor.fields["training.lora.r"].value == ""  # not written, so blank again


def test_preview_html_is_escaped() -> None:
    config = SFTConfig.from_toml('[job]\nmodel = "<b>m</b>"\n')
    editor = ConfigEditor(config)
    assert "<b>m</b>" not in editor.toml_preview.value
    assert "&lt;b&gt;m&lt;/b&gt;" in editor.toml_preview.value


@pytest.mark.slow
def test_dry_run_and_train_buttons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ipywidgets as w

    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    data = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}", f"a{i}") for i in range(8)])
    config = SFTConfig.from_toml(
        '[job]\nmodel = "synth-lab/tiny-chat"\n[hyperparameters]\nsequence_length = 64\n'
    )
    editor = ConfigEditor(config)
    editor.dry_run_button.click()  # no data yet: the report says so
    assert "training dataset not specified" in editor.result.format_text()

    editor.fields["job.data"].value = str(data)
    editor.dry_run_button.click()
    assert editor.result.ok and editor.result.records == 8

    editor.target.value = "remote"  # a remote job needs [compute].gpu_type: shown, not raised
    editor.dry_run_button.click()
    assert not editor.result.ok
    editor.target.value = "local"

    editor.fields["hyperparameters.global_batch"].value = "8"
    editor.train_button.click()
    assert editor.result.status == "succeeded" and editor.result.steps == 1
    assert (tmp_path / "runs" / "sft" / "final").is_dir()

    panel = w.HTML("plan")
    editor.add_panel("Memory and cost", panel)
    assert editor.panels.children[0].children[0] is panel
    assert editor.panels.children[0].get_title(0) == "Memory and cost"


# -- DatasetExplorer ------------------------------------------------------------------------------


@pytest.fixture
def dataset(tmp_path: Path):
    from synth_lab.data.dataset import Dataset

    records = [chat(f"question {i}", f"answer {i}") for i in range(25)]
    records.append(chat("<script>alert(1)</script>", "ok"))  # record 25
    records.append({"messages": []})  # an error
    records.append(chat("question 0", "answer 0"))  # a duplicate: a warning
    return Dataset.load(write_jsonl(tmp_path / "train.jsonl", records))


def test_explorer_pages_through_the_records(dataset) -> None:
    explorer = DatasetExplorer(dataset, page_size=10)
    assert "28 records, 1 errors, 1 warnings" in explorer.summary.value
    assert explorer.page.max == 2 and explorer.record.max == 27
    assert "records 0–9 of 28" in explorer.table.value
    first = explorer.table.value

    explorer.page.value = 2
    assert "records 20–27 of 28" in explorer.table.value
    assert explorer.table.value != first
    assert explorer.record.value == 20  # the preview follows the page
    assert "answer 20" in explorer.preview.value

    explorer.record.value = 5  # and the page follows the record
    assert explorer.page.value == 0
    assert "records 0–9 of 28" in explorer.table.value
    assert "answer 5" in explorer.preview.value
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()


def test_explorer_filters_problems_by_severity(dataset) -> None:
    explorer = DatasetExplorer(dataset)
    assert {"empty_messages", "duplicate_record"} <= set(explorer.visible_problems()["code"])
    explorer.severity.value = "error"
    assert "empty_messages" in explorer.problems_view.value
    assert "duplicate_record" not in explorer.problems_view.value
    explorer.severity.value = "warning"
    assert "duplicate_record" in explorer.problems_view.value
    assert "empty_messages" not in explorer.problems_view.value


def test_preview_escapes_the_raw_messages(dataset) -> None:
    explorer = DatasetExplorer(dataset)
    explorer.record.value = 25
    assert "<script>" not in explorer.preview.value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in explorer.preview.value
    explorer.record.value = 26  # no messages at all
    assert "record 26 (line 27)" in explorer.preview.value


def test_preview_with_a_tokenizer_shows_trained_tokens(dataset) -> None:
    pytest.importorskip("transformers")
    explorer = DatasetExplorer(dataset, tokenizer="synth-lab/tiny-chat")
    explorer.record.value = 25
    value = explorer.preview.value
    assert "trained" in value and "background:#c8f0c8" in value
    assert "<script>" not in value and "&lt;script&gt;" in value
    explorer.record.value = 26  # the template cannot render it: said, then the raw record
    assert "cannot render" in explorer.preview.value


def test_an_empty_dataset_is_fine() -> None:
    from synth_lab.data.dataset import Dataset

    explorer = DatasetExplorer(Dataset.from_records([]))
    assert "0 records" in explorer.summary.value
    assert explorer.page.disabled and explorer.record.disabled
    assert "empty" in explorer.preview.value


# -- JobMonitor -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("torch")
    import synth_lab.samples
    import synth_lab.train

    config = SFTConfig.from_toml(
        '[job]\nmodel = "synth-lab/tiny-chat"\n[hyperparameters]\nsequence_length = 128\n'
    )
    return synth_lab.train.run(
        config,
        synth_lab.samples.sample_path(),
        output_dir=tmp_path_factory.mktemp("run"),
        max_steps=3,
        live=False,
    )


def test_monitor_shows_a_local_run(tiny_result) -> None:
    monitor = JobMonitor(tiny_result)
    assert bytes(monitor.image.value).startswith(PNG)
    assert "succeeded" in monitor.status.value and "step 3/3" in monitor.status.value
    assert "train loss" in monitor.status.value
    assert monitor.cancel_button.layout.display == "none"  # nothing to cancel locally
    before = monitor.image.value
    monitor.refresh_button.click()
    assert bytes(monitor.image.value).startswith(PNG) and len(monitor.image.value) == len(before)
    assert "application/vnd.jupyter.widget-view+json" in monitor._repr_mimebundle_()


REMOTE = """
[job]
model = "Qwen/Qwen3-0.6B"

[compute]
gpu_type = "H100"
gpu_count = 1
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    pytest.importorskip("starlette")
    from server_doubles import FAKE, FakeServer

    from synth_lab.client import SynthClient

    args = ["--runner", FAKE, "--gpus", "1", "--model-map", "Qwen/Qwen3-0.6B=synth-lab/tiny-chat"]
    env = {"SYNTH_LAB_FAKE_STEP_SECONDS": "0.05"}
    with (
        FakeServer(tmp_path_factory.mktemp("srv"), extra_args=args, env=env) as server,
        SynthClient(api_key=server.api_key, base_url=server.url, dotenv=None) as client,
    ):
        yield client


def test_monitor_refreshes_and_cancels_a_remote_job(api, tmp_path: Path) -> None:
    from synth_lab.client.remote import submit

    train = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}", f"a{i}") for i in range(400)])
    job = submit(REMOTE, train, client=api, wait=False)
    monitor = JobMonitor(job, interval=None)
    assert f"job {job.id}" in monitor.status.value
    assert not monitor.cancel_button.disabled
    if not job.points:  # never an empty plot
        assert monitor.image.layout.display == "none"

    monitor.refresh_button.click()
    assert job.status in monitor.status.value

    monitor.cancel_button.click()
    job.wait(timeout=60, live=False)
    monitor.refresh_button.click()
    assert job.cancelled, job.status
    assert "cancel" in monitor.status.value
    assert monitor.cancel_button.disabled


def test_monitor_plots_a_finished_remote_job(api, tmp_path: Path) -> None:
    from synth_lab.client.remote import submit

    train = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}", f"a{i}") for i in range(6)])
    job = submit(REMOTE, train, client=api, poll_interval=0.05, live=False, timeout=60)
    monitor = JobMonitor(job)
    assert job.succeeded and monitor.cancel_button.disabled
    assert "train loss" in monitor.status.value
    assert bytes(monitor.image.value).startswith(PNG)


def test_monitor_follows_a_running_job_by_itself(api, tmp_path: Path) -> None:
    from synth_lab.client.remote import submit

    train = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}", f"a{i}") for i in range(40)])
    job = submit(REMOTE, train, client=api, wait=False)
    monitor = JobMonitor(job, interval=0.05)
    # no points yet: no empty plot, and the status line says what it waits for
    if not job.points:
        assert monitor.image.layout.display == "none"
        assert "waiting for the first loss point" in monitor.status.value
    assert monitor.following
    monitor.join(timeout=120)  # the monitor stops by itself when the job ends
    assert not monitor.following and job.succeeded, job.status
    assert "succeeded" in monitor.status.value
    assert "step 40/40" in monitor.status.value
    assert monitor.image.layout.display is None and bytes(monitor.image.value).startswith(PNG)


def test_monitor_status_has_step_total_and_eta() -> None:
    from synth_lab.widgets.job_monitor import progress_of

    class Running:
        status = "running"
        done = False
        all_events: ClassVar = [{"type": "sft.training.started", "data": {"total_steps": 10}}]
        points: ClassVar = [
            {"name": "train.loss", "value": 2.0, "step": 1, "created_at": "2026-01-01T00:00:00Z"},
            {"name": "train.loss", "value": 1.5, "step": 3, "created_at": "2026-01-01T00:00:10Z"},
        ]

    assert progress_of(Running()) == (3, 10, 35.0)  # 5 s a step, 7 steps to go
    monitor = JobMonitor(Running())
    assert "step 3/10 · ETA 0:35" in monitor.status.value
    assert not monitor.following  # nothing to refresh from


NASTY = "cost $x$ <b>bold</b> \"dq\" 'sq'"


def assert_escaped(page: str) -> None:
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "$" not in page and "&#36;x&#36;" in page
    assert '"dq"' not in page and "'sq'" not in page


def test_widgets_escape_user_text_dollar_signs_too() -> None:
    from synth_lab.data.dataset import Dataset

    messages = [{"role": NASTY, "content": NASTY}, {"role": "assistant", "content": "ok"}]
    explorer = DatasetExplorer(Dataset.from_records([{"messages": messages}]))
    for view in (explorer.table, explorer.problems_view, explorer.preview):
        assert_escaped(view.value)

    class Failed:
        id = NASTY
        status = "failed"
        done = True
        points: ClassVar = []

    monitor = JobMonitor(Failed())
    monitor.error = NASTY
    monitor.redraw()
    assert_escaped(monitor.status.value)
