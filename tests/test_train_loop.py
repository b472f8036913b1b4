"""The trainer in one process: a tiny model for a few steps, in every mode.

Each test asserts something that would fail if training silently did nothing: losses go down,
weights (only the right ones) change, files appear, a resumed run repeats the same numbers.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import write_jsonl
from test_train_support import config_text, records, shared_cache

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from synth_lab.errors import DatasetError, MissingDependencyError, TrainingError  # noqa: E402
from synth_lab.models import tiny_chat_path  # noqa: E402
from synth_lab.train import run  # noqa: E402
from synth_lab.train.metrics import TRAIN_LOSS, VAL_LOSS, MetricPoint  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with shared_cache(tmp_path_factory) as path:
        yield path


def losses(result, name: str = TRAIN_LOSS) -> dict[int, float]:
    return {p.step: p.value for p in result.points if p.name == name}


def no_partial_folders(root: Path) -> bool:
    return not [p for p in root.iterdir() if p.name.startswith(".")]


def test_full_finetune_learns_and_writes_everything(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", records(40, seed=0))
    val = write_jsonl(tmp_path / "val.jsonl", records(8, seed=1))
    cfg = config_text(
        extra=f'[data]\nvalidation_path = "{val}"\n[training.validation]\neval_steps = 3'
    )
    out = tmp_path / "run"
    result = run(cfg, data, output_dir=out, max_steps=6, examples=24, live=False)

    assert result.status == "succeeded" and result.steps == 6
    assert result.summary["records"] == 24 and result.summary["precision"] == "fp32"
    train = losses(result)
    assert sorted(train) == [1, 2, 3, 4, 5, 6] and all(math.isfinite(v) for v in train.values())
    assert (train[5] + train[6]) / 2 < train[1] - 0.3
    val = losses(result, VAL_LOSS)
    assert sorted(val) == [3, 6] and val[6] < val[3]
    names = set(result.metrics.name)
    assert {TRAIN_LOSS, VAL_LOSS, "train.learning_rate", "train.tokens_per_second"} <= names

    # Every weight of a full finetune moves.
    base = load_file(tiny_chat_path() / "model.safetensors")
    final = load_file(result.final_dir / "model.safetensors")
    assert base.keys() == final.keys()
    assert all(not torch.equal(base[k], final[k]) for k in base if not k.endswith("norm.weight"))

    step6 = out / "step-000006"
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng-rank0.pt"):
        assert (step6 / name).is_file(), name
    state = json.loads((step6 / "trainer_state.json").read_text())
    assert state["step"] == 6 and state["data_position"]["step"] == 6
    assert (step6 / "config.toml").read_text() == cfg and (step6 / "tokenizer.json").is_file()
    for name in ("README.md", "config.toml", "metrics.jsonl", "tokenizer.json"):
        assert (result.final_dir / name).is_file(), name
    assert "synth-lab/tiny-chat" in (result.final_dir / "README.md").read_text()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(result.points)
    assert MetricPoint.from_dict(json.loads(lines[0])).name == TRAIN_LOSS
    assert no_partial_folders(out)

    assert json.loads(json.dumps(result.to_dict()))["status"] == "succeeded"
    assert result.to_dict()["best_val_loss"] == pytest.approx(val[6])
    import matplotlib

    matplotlib.use("Agg")
    assert len(result.plot().get_lines()) == 2
    assert isinstance(result.generate("the cat sat", max_new_tokens=5), str)
    assert "succeeded" in result._repr_mimebundle_()["text/html"]


def test_lora_trains_only_the_adapter(tmp_path: Path) -> None:
    cfg = config_text(hyper='train_kind = "peft"', extra="[training.lora]\nr = 4\nalpha = 8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(cfg, records(16), output_dir=tmp_path / "run", max_steps=3, live=False)
        model, _ = result.load()
    # peft reads transformers' deprecated attribute; that noise stays out of the user's cell
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
    assert result.summary["mode"] == "lora"
    assert 0 < result.summary["trainable_params"] < result.summary["total_params"] / 5
    assert (result.final_dir / "adapter_model.safetensors").is_file()
    assert not (result.final_dir / "model.safetensors").exists()
    adapter = load_file(result.final_dir / "adapter_model.safetensors")
    assert adapter and all("lora_" in k for k in adapter)
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in adapter.items())

    # The base weights inside the trained model are exactly the original ones.
    base = load_file(tiny_chat_path() / "model.safetensors")
    trained = {
        k.replace("base_model.model.", "").replace(".base_layer", ""): v
        for k, v in model.state_dict().items()
        if "lora_" not in k
    }
    assert all(torch.equal(base[k], trained[k]) for k in base)
    assert math.isfinite(result.train_loss)


@pytest.mark.slow
def test_qlora_runs_on_cpu(tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    cfg = config_text(extra="[training]\nuse_qlora = true", hyper='train_kind = "peft"')
    result = run(cfg, records(8), output_dir=tmp_path / "run", max_steps=2, live=False)
    assert result.summary["mode"] == "qlora" and result.status == "succeeded"
    assert all(math.isfinite(v) for v in losses(result).values())
    assert (result.final_dir / "adapter_model.safetensors").is_file()
    assert result.summary["trainable_params"] < result.summary["total_params"]


@pytest.mark.parametrize("mode", ["fft", "peft"])
def test_interrupt_then_resume_repeats_the_uninterrupted_run(tmp_path: Path, mode: str) -> None:
    cfg = config_text(hyper=f'train_kind = "{mode}"\nwarmup_ratio = 0.2')
    data = records(24, seed=5)
    kwargs = {"max_steps": 6, "live": False, "save_steps": 100}
    straight = run(cfg, data, output_dir=tmp_path / "straight", **kwargs)

    def stop_at_3(point: MetricPoint) -> None:
        if point.name == TRAIN_LOSS and point.step == 3:
            raise KeyboardInterrupt

    out = tmp_path / "interrupted"
    first = run(cfg, data, output_dir=out, logger=stop_at_3, **kwargs)
    assert first.status == "interrupted" and first.steps == 3
    assert first.final_dir is None and first.last_checkpoint == out / "step-000003"
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl", "step-000003"]

    resumed = run(cfg, data, output_dir=out, resume=True, **kwargs)
    assert resumed.status == "succeeded" and resumed.steps == 6
    assert resumed.summary["resumed_from"].endswith("step-000003")
    expected, got = losses(straight), losses(resumed)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]  # earlier points come from metrics.jsonl
    for step in (4, 5, 6):
        assert got[step] == pytest.approx(expected[step], rel=1e-6, abs=1e-7)
    assert no_partial_folders(out)


@pytest.mark.slow
def test_live_view_says_how_to_resume_and_shows_the_whole_history(
    tmp_path: Path, shell: Any
) -> None:
    from IPython.utils.capture import capture_output

    def stop_at_2(point: MetricPoint) -> None:
        if point.name == TRAIN_LOSS and point.step == 2:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    kwargs = {"output_dir": out, "max_steps": 4, "live": True, "save_steps": 100}
    with capture_output() as first:
        result = run(config_text(), records(16), logger=stop_at_2, **kwargs)
    assert result.status == "interrupted"
    last = first.outputs[-1].data["text/plain"]
    assert f"checkpoint saved: {out / 'step-000002'}" in last
    assert f"to continue: synth_lab.train.run(..., output_dir={str(out)!r}, resume=True)" in last

    with capture_output() as second:
        run(config_text(), records(16), resume=True, **kwargs)
    # the resumed run's view starts with the loss plot of steps 1-2 already drawn
    assert "data:image/png;base64," in second.outputs[0].data["text/html"]
    assert "step 2/4" in second.outputs[0].data["text/plain"]


def test_best_checkpoint_is_kept_and_becomes_the_final_model(tmp_path: Path) -> None:
    # greater_is_better on a loss makes the *first* evaluation the best: easy to check.
    extra = "[training.validation]\neval_steps = 2\ngreater_is_better = true"
    cfg = config_text(extra=extra)
    out = tmp_path / "run"
    result = run(
        cfg,
        records(32),
        output_dir=out,
        max_steps=6,
        validation_split=0.25,
        keep_checkpoints=1,
        live=False,
    )
    assert result.summary["validation_records"] == 8
    assert sorted(losses(result, VAL_LOSS)) == [2, 4, 6]
    assert result.best_checkpoint == out / "step-000002"
    assert sorted(p.name for p in out.glob("step-*")) == ["step-000002", "step-000006"]
    best = load_file(out / "step-000002" / "model.safetensors")
    final = load_file(result.final_dir / "model.safetensors")
    assert all(torch.equal(best[k], final[k]) for k in best)
    summary = json.loads((result.final_dir / "training_summary.json").read_text())
    assert summary["final_from"] == "step-000002"


def test_activation_checkpointing_gives_the_same_losses(tmp_path: Path) -> None:
    data = records(16, seed=2)
    plain = run(config_text(), data, output_dir=tmp_path / "a", max_steps=2, live=False)
    cfg = config_text(parallel="activation_checkpointing = true")
    checkpointed = run(cfg, data, output_dir=tmp_path / "b", max_steps=2, live=False)
    assert checkpointed.summary["activation_checkpointing"]
    assert not plain.summary["activation_checkpointing"]
    for step, value in losses(plain).items():
        assert losses(checkpointed)[step] == pytest.approx(value, rel=1e-5)


def test_clear_errors_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = config_text().replace("synth-lab/tiny-chat", "no-such-org/no-such-model")
    with pytest.raises(TrainingError, match="not in the local Hugging Face cache") as info:
        run(missing, records(4), output_dir=tmp_path / "a", live=False)
    assert "local folder" in info.value.hint
    with pytest.raises(TrainingError, match="tensor and pipeline") as info:
        run(config_text(parallel="tensor_parallel_size = 2"), records(4), output_dir=tmp_path)
    assert "remote" in info.value.hint
    with pytest.raises(TrainingError, match="asks for 2 nodes") as info:
        run(config_text(extra="[compute]\nnodes = 2"), records(4), output_dir=tmp_path)
    assert "synth-lab launch" in info.value.hint and "--emit torchrun" in info.value.hint
    with pytest.raises(MissingDependencyError, match="deepspeed"):
        run(config_text(parallel="use_deepspeed = true"), records(4), output_dir=tmp_path)
    with pytest.raises(DatasetError, match="no training data"):
        run(config_text(), None, output_dir=tmp_path)
    metric = config_text(extra='[training.validation]\nmetric_for_best_model = "accuracy"')
    with pytest.raises(TrainingError, match="accuracy"):
        run(metric, records(4), output_dir=tmp_path)
    with pytest.raises(TrainingError, match="max_steps"):
        run(config_text(), records(4), output_dir=tmp_path, max_steps=0)
    assert not (tmp_path / "a").exists()


def test_ranks_other_than_0_build_the_model_without_weights() -> None:
    # Under FSDP they get their shards from rank 0: no full copy of the weights is made.
    from synth_lab.config import load_config
    from synth_lab.train.model import choose_precision, load_model

    cpu = torch.device("cpu")
    for kind in ("fft", "peft"):
        config = load_config(config_text(hyper=f'train_kind = "{kind}"'))
        precision = choose_precision("fp32", cpu)
        model, _ = load_model(config, device=cpu, precision=precision, empty=True)
        assert all(p.is_meta for p in model.parameters())
        assert any(p.requires_grad for p in model.parameters())


def live_models() -> int:
    import gc

    from transformers import PreTrainedModel

    gc.collect()
    return sum(isinstance(o, PreTrainedModel) for o in gc.get_objects())


def test_nothing_of_a_run_stays_in_memory_after_it_ends_or_fails(tmp_path: Path) -> None:
    before = live_models()
    result = run(config_text(), records(8), output_dir=tmp_path / "ok", max_steps=1, live=False)
    assert result.status == "succeeded" and live_models() == before

    def fail(point: MetricPoint) -> None:
        raise RuntimeError("a logger failed")

    # The error's traceback is kept (as a notebook keeps it), and the model is still freed.
    with pytest.raises(RuntimeError, match="a logger failed") as info:
        run(config_text(), records(8), output_dir=tmp_path / "x", max_steps=1, logger=fail)
    assert info.value.__traceback__ is not None
    assert live_models() == before
