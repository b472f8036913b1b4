"""The magics through a real IPython InteractiveShell with the extension loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GOLDEN, chat, write_jsonl
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from synth_lab.config import ConfigError, SFTConfig
from synth_lab.job.dryrun import DryRun, dry_run

SEED_TOML = (GOLDEN / "seed_minimal_fft_qwen3_4b.toml").read_text()


def run(shell: InteractiveShell, code: str):
    with capture_output() as captured:
        result = shell.run_cell(code)
    return result, captured


def test_sft_config_binds_a_validated_config(shell: InteractiveShell) -> None:
    result, _ = run(shell, f"%%sft_config my_cfg\n{SEED_TOML}")
    assert result.success
    config = shell.user_ns["my_cfg"]
    assert isinstance(config, SFTConfig)
    assert config.global_batch == 512
    assert result.result is config
    bundle = config._repr_mimebundle_()
    assert "DeepSpeed ZeRO-3" in bundle["text/html"] and "world size 4" in bundle["text/plain"]


def test_sft_config_default_name_and_save(shell: InteractiveShell, tmp_path: Path) -> None:
    target = tmp_path / "cfg.toml"
    result, _ = run(shell, f"%%sft_config --save {target}\n{SEED_TOML}")
    assert result.success
    assert isinstance(shell.user_ns["sft_config"], SFTConfig)
    assert target.read_text() == SEED_TOML


def test_bad_cell_fails_with_a_short_located_message(shell: InteractiveShell) -> None:
    cell = '%%sft_config bad\n[job]\nmodel = "m"\n[hyperparameters]\nlearning_rat = 1e-5\n'
    result, captured = run(shell, cell)
    assert not result.success
    assert isinstance(result.error_in_exec, ConfigError)
    assert "bad" not in shell.user_ns
    # line 5 of the cell as the editor numbers it (the magic is line 1), the offending line,
    # the suggestion; no Python traceback
    assert "5:1" in captured.stdout + captured.stderr
    assert [p.line for p in result.error_in_exec.errors] == [5]
    text = captured.stdout + captured.stderr
    assert "learning_rat = 1e-5" in text
    assert "did you mean 'learning_rate'" in text
    assert "Traceback" not in text and "File " not in text


def test_toml_syntax_errors_use_the_cell_editors_line_numbers(shell: InteractiveShell) -> None:
    result, captured = run(shell, '%%sft_config bad\n[job]\nmodel = "m"\nx = = 1\n')
    assert not result.success
    problem = result.error_in_exec.errors[0]
    assert problem.line == 4
    text = captured.stdout + captured.stderr
    assert "4:" in text and "| x = = 1" in text


def test_warnings_and_dry_run_problems_use_the_cell_editors_line_numbers(
    shell: InteractiveShell, train_jsonl: Path
) -> None:
    cell = (
        '%%sft_config cfg\n[job]\nmodel = "synth-lab/tiny-chat"\n'
        '[training]\nmode = "full_finetune"\n[hyperparameters]\ntrain_kind = "peft"\n'
        "[compute]\ngpu_count = 1\n"
    )
    result, _ = run(shell, cell)
    assert result.success
    config = shell.user_ns["cfg"]
    [warning] = config.warnings
    assert warning.line == 5  # mode = ... is line 5 of the cell
    assert "5:1 training.mode" in config._repr_mimebundle_()["text/plain"]
    dry = dry_run(config, train_jsonl)
    gpu_type = next(p for _, p in dry.problems if p.code == "missing_gpu_type")
    assert gpu_type.line == 8  # the [compute] header


def test_full_tracebacks_setting(shell: InteractiveShell) -> None:
    shell.run_line_magic("config", "SynthLabMagics.full_tracebacks = True")
    result, captured = run(shell, '%%sft_config bad\n[job]\nmodel = "m"\nx = 1\n')
    assert not result.success
    assert "Traceback" in captured.stdout + captured.stderr


def test_dry_run_returns_a_dry_run(shell: InteractiveShell, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}") for i in range(1030)])
    run(shell, f"%%sft_config cfg\n{SEED_TOML}")
    result, _ = run(shell, f"%sft_train --dry-run --config cfg --dataset {data} --name dr")
    assert result.success, result.error_in_exec
    dry = result.result
    assert isinstance(dry, DryRun) and shell.user_ns["dr"] is dry
    assert dry.records == 1030
    assert dry.steps_per_epoch == 3 and dry.total_steps == 6 and dry.warmup_steps == 1
    expected = json.loads((GOLDEN / "seed_minimal_fft_qwen3_4b.payload.json").read_text())
    assert dry.payload == expected
    html = dry._repr_mimebundle_()["text/html"]
    assert "<details>" in html and "file_TRAIN" in html
    assert list(dry.problems_df.columns)[:3] == ["source", "line", "col"]


def test_dry_run_with_examples_and_default_config(shell: InteractiveShell, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}") for i in range(50)])
    run(shell, f"%%sft_config\n{SEED_TOML}")
    result, _ = run(shell, f"%sft_train --dry-run --dataset {data} --examples 7")
    assert result.success
    assert result.result.records == 7


def test_dry_run_with_bad_data_fails_and_shows_problems(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", [chat(), {"messages": "hi"}, chat()])
    run(shell, f"%%sft_config\n{SEED_TOML}")
    result, captured = run(shell, f"%sft_train --dry-run --dataset {data}")
    assert not result.success
    assert isinstance(result.error_in_exec, ConfigError)
    assert "train.jsonl:2" in captured.stdout + captured.stderr


def test_dry_run_without_config_says_what_to_do(shell: InteractiveShell) -> None:
    result, captured = run(shell, "%sft_train --dry-run")
    assert not result.success
    assert "%%sft_config" in captured.stdout + captured.stderr


def test_config_path_is_accepted(shell: InteractiveShell, train_jsonl: Path) -> None:
    path = GOLDEN / "seed_qwen3_32b_fsdp_4xh100.toml"
    result, _ = run(shell, f"%sft_train --dry-run --config {path} --dataset {train_jsonl}")
    assert result.success
    assert result.result.config.global_batch == 64


def test_unload_removes_the_magics(shell: InteractiveShell) -> None:
    shell.run_line_magic("unload_ext", "synth_lab")
    assert "sft_train" not in shell.magics_manager.magics["line"]
    assert "sft_config" not in shell.magics_manager.magics["cell"]
    shell.run_line_magic("load_ext", "synth_lab")
    assert "sft_train" in shell.magics_manager.magics["line"]


def test_help_comes_from_the_docstring(shell: InteractiveShell) -> None:
    doc = shell.magics_manager.magics["line"]["sft_train"].__doc__
    assert "--dry-run" in doc and "--examples" in doc


@pytest.mark.parametrize(
    ("kind", "name"),
    [("cell", "sft_config"), ("line", "sft_train"), ("line", "sft_data"), ("line", "sft_sweep")],
)
def test_help_text_has_no_rest_markup(shell: InteractiveShell, kind: str, name: str) -> None:
    doc = shell.magics_manager.magics[kind][name].__doc__
    for markup in ("``", ":func:", ":meth:", ":class:", "::"):
        assert markup not in doc, (name, markup)


def test_load_ext_imports_no_heavy_module() -> None:
    code = (
        "import sys, time\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'synth_lab')\n"
        "names = ('torch', 'transformers', 'pandas', 'matplotlib')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_dry_run_counts_tokens_on_request(shell: InteractiveShell, tmp_path: Path) -> None:
    long_reply = "word " * 60
    data = write_jsonl(tmp_path / "d.jsonl", [chat("hi", "short"), chat("hi", long_reply)])
    cell = (
        '%%sft_config tiny\n[job]\nmodel = "synth-lab/tiny-chat"\n'
        '[compute]\ngpu_type = "H100"\ngpu_count = 1\n[hyperparameters]\nsequence_length = 32\n'
    )
    run(shell, cell)
    result, _ = run(shell, f"%sft_train --dry-run --config tiny --dataset {data} --tokens")
    assert result.success, result.error_in_exec
    tokens = result.result.tokens
    assert tokens["truncated_records"] == 1
    assert tokens["max_tokens"] > 32 > tokens["tokens"] - tokens["max_tokens"]
    assert 0 < tokens["trained_tokens"] < tokens["tokens"]
    assert "1 record(s) cut" in result.result.format_text()
    # the cut also shows as a warning in Problems, not only in the Tokens line
    [(source, cut)] = [(s, p) for s, p in result.result.problems if p.code == "truncated"]
    assert source == "training" and cut.severity == "warning"
    assert "1 record(s) are longer than sequence_length = 32" in cut.message
    assert "will be cut" in result.result._repr_mimebundle_()["text/html"]


def test_remote_submit_and_attach_through_the_magic(
    shell: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server_doubles import FAKE, FakeServer

    from synth_lab.client.remote import RemoteJob

    data = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}") for i in range(8)])
    args = [
        "--runner",
        FAKE,
        "--gpus",
        "4",
        "--model-map",
        "Qwen/Qwen3-4B=synth-lab/tiny-chat",
    ]
    with FakeServer(tmp_path / "srv", extra_args=args) as srv:
        monkeypatch.setenv("SYNTH_API_KEY", srv.api_key)
        run(shell, f"%%sft_config\n{SEED_TOML}")
        result, captured = run(
            shell, f"%sft_train --remote --backend {srv.url} --dataset {data} --name job"
        )
        assert result.success, result.error_in_exec
        job = shell.user_ns["job"]
        assert isinstance(job, RemoteJob) and job.status == "succeeded"
        assert srv.api_key not in captured.stdout + captured.stderr
        assert {p["name"] for p in job.points} >= {"train.loss", "val.loss"}
        again, _ = run(shell, f"%sft_train --attach {job.id} --backend {srv.url}")
        assert again.success and again.result.id == job.id and again.result.status == "succeeded"


def test_local_training_through_the_magic(shell: InteractiveShell, tmp_path: Path) -> None:
    from synth_lab.samples import sample_path
    from synth_lab.train import TrainResult

    cell = (
        '%%sft_config tiny\n[job]\nmodel = "synth-lab/tiny-chat"\n'
        "[hyperparameters]\nper_device_batch = 4\nlearning_rate = 1e-3\nsequence_length = 128\n"
    )
    run(shell, cell)
    out = tmp_path / "run"
    result, _ = run(
        shell,
        f"%sft_train --local --config tiny --dataset {sample_path()} --max-steps 3 "
        f"--output-dir {out} --name trained",
    )
    assert result.success, result.error_in_exec
    trained = shell.user_ns["trained"]
    assert isinstance(trained, TrainResult)
    assert trained.status == "succeeded" and trained.steps == 3
    losses = trained.metrics.query("name == 'train.loss'")["value"]
    assert len(losses) == 3 and losses.notna().all()
    assert (out / "final" / "config.toml").is_file()


def test_unknown_config_name_suggests_a_config_variable(shell: InteractiveShell) -> None:
    run(shell, f"%%sft_config my_cfg\n{SEED_TOML}")
    shell.user_ns["my_list"] = [1, 2]
    result, captured = run(shell, "%sft_train --dry-run --config my_cgf")
    assert not result.success
    text = captured.stdout + captured.stderr
    assert "no config named 'my_cgf'" in text and "did you mean 'my_cfg'?" in text


def test_unknown_flag_gets_a_did_you_mean(shell: InteractiveShell) -> None:
    result, captured = run(shell, "%sft_train --dryrun --config x")
    assert not result.success
    text = captured.stdout + captured.stderr
    assert "unknown option '--dryrun'" in text and "did you mean '--dry-run'?" in text
    result, captured = run(shell, f"%%sft_config cfg --svae x.toml\n{SEED_TOML}")
    text = captured.stdout + captured.stderr
    assert "%%sft_config: unknown option '--svae'" in text and "did you mean '--save'?" in text


def test_training_without_local_or_gpu_type_says_what_to_do(
    shell: InteractiveShell, train_jsonl: Path
) -> None:
    run(shell, '%%sft_config cfg\n[job]\nmodel = "synth-lab/tiny-chat"\n')
    result, captured = run(shell, f"%sft_train --config cfg --dataset {train_jsonl}")
    assert not result.success
    text = captured.stdout + captured.stderr
    assert "use --local to train here, or set [compute].gpu_type for a remote job" in text


def test_a_missing_dataset_message_has_no_literal_none(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    run(shell, f"%%sft_config\n{SEED_TOML}")
    result, captured = run(shell, f"%sft_train --dry-run --dataset {tmp_path / 'nope.jsonl'}")
    assert not result.success
    text = captured.stdout + captured.stderr
    shown = "".join(o.data.get("text/html", "") for o in captured.outputs)
    assert "nope.jsonl: training dataset not found" in text
    assert "None" not in text and "None" not in shown
