"""Several training processes on the CPU (gloo): DDP and FSDP match one process; failures and
interrupts come back to the caller, and no process is left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_train_support import config_text, records, shared_cache

torch = pytest.importorskip("torch")
psutil = pytest.importorskip("psutil")

from safetensors.torch import load_file  # noqa: E402

from synth_lab.errors import TrainingError  # noqa: E402
from synth_lab.models import tiny_chat_path  # noqa: E402
from synth_lab.train import run  # noqa: E402
from synth_lab.train.metrics import TRAIN_LOSS, MetricPoint  # noqa: E402
from synth_lab.train.model import cpu_has_native_bf16  # noqa: E402

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with shared_cache(tmp_path_factory) as path:
        tiny_chat_path()  # build once here, not in two workers at once
        yield path


@pytest.fixture(autouse=True)
def one_thread_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def children() -> list[int]:
    return [p.pid for p in psutil.Process().children(recursive=True)]


def curve(result) -> list[float]:
    return [p.value for p in sorted(result.points, key=lambda p: p.step) if p.name == TRAIN_LOSS]


BF16_LORA = "fsdp = true\nbf16 = true"


@pytest.mark.parametrize(
    "parallel,kind",
    [("fsdp = false", "fft"), ("fsdp = true", "fft"), (BF16_LORA, "peft")],
    ids=["ddp", "fsdp", "fsdp-lora-bf16-base"],
)
def test_two_processes_match_one_with_the_same_global_batch(
    tmp_path: Path, parallel: str, kind: str
) -> None:
    bf16 = parallel == BF16_LORA
    if bf16 and not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16 (the trainer then runs fp32)")
    # No LoRA dropout: its random masks depend on how the batch is split over processes.
    lora = "[training.lora]\ndropout = 0.0" if kind == "peft" else ""
    cfg = config_text(parallel=parallel, hyper=f'train_kind = "{kind}"', extra=lora)
    if bf16:  # two micro-batches per rank: accumulation under FSDP too
        cfg = cfg.replace("per_device_batch = 4", "per_device_batch = 2")
    data = records(32, seed=4)
    seen: list[MetricPoint] = []
    single = run(cfg, data, output_dir=tmp_path / "one", max_steps=4, live=False)
    double = run(
        cfg, data, output_dir=tmp_path / "two", max_steps=4, nproc=2, logger=seen.append, live=False
    )
    assert double.summary["world_size"] == 2
    assert double.summary["strategy"] == ("DDP" if "false" in parallel else "FSDP (full_shard)")
    assert single.summary["gradient_accumulation_steps"] == (4 if bf16 else 2)
    assert double.summary["gradient_accumulation_steps"] == (2 if bf16 else 1)
    # Peak host (and device) memory of every rank is in the summary.
    memory = double.summary["memory_per_rank"]
    assert [m["rank"] for m in memory] == [0, 1] and all(m["peak_host_mb"] > 0 for m in memory)
    # Decay groups are chosen by name before wrapping: sharded parameters don't change them.
    assert double.summary["weight_decay_tensors"] == single.summary["weight_decay_tensors"] > 0
    if bf16:  # the frozen base is bf16, the adapter fp32: the mix FSDP1 cannot flatten
        assert single.summary["precision"] == double.summary["precision"] == "bf16"
    # bf16 matmuls round differently when the batch is split differently.
    assert curve(double) == pytest.approx(curve(single), rel=2e-2 if bf16 else 1e-4)
    assert curve(double)[-1] < curve(double)[0]
    # Rank 0's points streamed into the caller's logger as they were made.
    assert [p.step for p in seen if p.name == TRAIN_LOSS] == [1, 2, 3, 4]

    # The saved model is the whole model, gathered from the shards, equal to one process's.
    name = "adapter_model.safetensors" if kind == "peft" else "model.safetensors"
    one, two = load_file(single.final_dir / name), load_file(double.final_dir / name)
    assert one.keys() == two.keys()
    assert all(torch.allclose(one[k], two[k], atol=2e-3 if bf16 else 1e-4) for k in one)
    assert (
        json.loads((tmp_path / "two" / "step-000004" / "trainer_state.json").read_text())[
            "world_size"
        ]
        == 2
    )
    assert children() == []


def test_a_worker_crash_raises_with_its_traceback_and_leaves_no_process(tmp_path: Path) -> None:
    broken = shutil.copytree(tiny_chat_path(), tmp_path / "broken-model")
    (broken / "model.safetensors").unlink()  # found by the caller's checks, fails in workers
    cfg = config_text().replace("synth-lab/tiny-chat", str(broken))
    with pytest.raises(TrainingError, match=r"worker \d of 2 failed") as info:
        run(cfg, records(8), output_dir=tmp_path / "run", max_steps=2, nproc=2, live=False)
    assert "Traceback (most recent call last)" in str(info.value)
    assert "could not load model" in str(info.value)
    assert children() == []


def test_interrupting_the_caller_stops_workers_at_a_checkpoint(tmp_path: Path) -> None:
    def interrupt(point: MetricPoint) -> None:
        if point.name == TRAIN_LOSS and point.step == 2:
            raise KeyboardInterrupt  # what the notebook's stop button does to the kernel

    out = tmp_path / "run"
    cfg = config_text(parallel="fsdp = true")
    kwargs = {"output_dir": out, "nproc": 2, "live": False, "save_steps": 1000}
    result = run(cfg, records(16), max_steps=500, logger=interrupt, **kwargs)
    assert result.status == "interrupted" and 2 <= result.steps < 500
    assert result.last_checkpoint == out / f"step-{result.steps:06d}"
    assert (result.last_checkpoint / "rng-rank1.pt").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert children() == []

    # The sharded optimizer state comes back on resume, and training goes on from there.
    resumed = run(cfg, records(16), max_steps=result.steps + 2, resume=True, **kwargs)
    assert resumed.status == "succeeded" and resumed.steps == result.steps + 2
    assert resumed.summary["resumed_from"] == str(result.last_checkpoint)
    assert children() == []


def test_accumulation_under_fsdp_keeps_gradients_sharded() -> None:
    # full_shard reduce-scatters every micro-batch: after one that is not the last of its
    # step, each of the 2 ranks holds half the gradients, never the whole set.
    probe = [str(HERE / "fsdp_probe.py"), "full_shard"]
    # torchrun's own module: the venv's bin folder need not be on PATH.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command += probe
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    held = json.loads(done.stdout.strip().splitlines()[-1])
    assert held["grad_elements"] / held["param_elements"] == pytest.approx(0.5, abs=0.01)


def test_fsdp_checkpoints_are_sharded_and_resume_bit_equal(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    cfg = config_text(parallel="fsdp = true")
    kwargs = {"nproc": 2, "live": False, "save_steps": 2, "keep_checkpoints": 0, "max_steps": 4}
    straight = run(cfg, records(16, seed=3), output_dir=tmp_path / "a", **kwargs)
    step2 = tmp_path / "a" / "step-000002"
    # Each rank wrote its own optimizer shard; no full optimizer state anywhere.
    assert len(list((step2 / "optimizer").glob("*.distcp"))) == 2
    assert not (step2 / "optimizer.pt").exists()

    resumed = run(cfg, records(16, seed=3), output_dir=tmp_path / "b", resume=str(step2), **kwargs)
    assert resumed.summary["start_step"] == 2
    assert curve(resumed)[-2:] == curve(straight)[-2:]  # bit-equal on CPU
    # final/ is one consolidated model that transformers loads, equal to the straight run's.
    one, two = (load_file(r.final_dir / "model.safetensors") for r in (straight, resumed))
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert not (resumed.final_dir / "optimizer").exists()
    AutoModelForCausalLM.from_pretrained(resumed.final_dir)
    assert children() == []


def test_qlora_under_fsdp_matches_one_process_and_resumes_bit_equal(tmp_path: Path) -> None:
    # The 4-bit base stays whole on every rank (its quantization state cannot be sharded);
    # adapters, embeddings and norms are sharded. Before FSDP2 this combination was refused.
    pytest.importorskip("bitsandbytes")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    extra = "[training]\nuse_qlora = true\n[training.lora]\ndropout = 0.0"
    cfg = config_text(extra=extra, hyper='train_kind = "peft"', parallel="fsdp = true")
    cfg = cfg.replace("per_device_batch = 4", "per_device_batch = 2")  # accumulation too
    data = records(32, seed=4)
    kwargs = {"live": False, "max_steps": 4}
    single = run(cfg, data, output_dir=tmp_path / "one", **kwargs)
    sharded = {"nproc": 2, "save_steps": 2, "keep_checkpoints": 0, **kwargs}
    double = run(cfg, data, output_dir=tmp_path / "two", **sharded)
    assert single.summary["mode"] == double.summary["mode"] == "qlora"
    assert double.summary["strategy"] == "FSDP (full_shard)"
    assert curve(double) == pytest.approx(curve(single), rel=1e-4)
    assert curve(double)[-1] < curve(double)[0]

    step2 = tmp_path / "two" / "step-000002"
    assert len(list((step2 / "optimizer").glob("*.distcp"))) == 2
    resumed = run(cfg, data, output_dir=tmp_path / "three", resume=str(step2), **sharded)
    assert curve(resumed)[-2:] == curve(double)[-2:]  # bit-equal on CPU

    # final/ is a peft adapter, gathered from the shards, equal to one process's.
    name = "adapter_model.safetensors"
    one, two = load_file(single.final_dir / name), load_file(resumed.final_dir / name)
    assert one.keys() == two.keys()
    assert all(torch.allclose(one[k], two[k], atol=1e-4) for k in one)
    PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_chat_path()), resumed.final_dir
    )
    assert children() == []
