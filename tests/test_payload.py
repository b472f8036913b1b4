"""The job payload: the golden files, and a differential check against the reference mapping."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import GOLDEN, SEEDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth_lab.config import SFTConfig
from synth_lab.job.payload import build_payload, dropped_keys


@pytest.mark.parametrize("seed", SEEDS)
def test_golden_payloads(seed: str) -> None:
    config = SFTConfig.from_file(GOLDEN / f"{seed}.toml")
    expected = json.loads((GOLDEN / f"{seed}.payload.json").read_text())
    assert build_payload(config, "file_TRAIN") == expected


def test_validation_file_goes_into_effective_config() -> None:
    config = SFTConfig.from_file(GOLDEN / "seed_minimal_fft_qwen3_4b.toml")
    payload = build_payload(config, "file_TRAIN", "file_VAL")
    assert payload["metadata"]["effective_config"]["data"]["validation_files"] == ["file_VAL"]
    assert "validation_file" not in payload


def test_lora_is_the_one_addition() -> None:
    config = SFTConfig.from_toml(
        '[job]\nmodel = "m"\n[hyperparameters]\ntrain_kind = "peft"\n'
        '[training.lora]\nr = 8\ntarget_modules = ["q_proj"]\n'
    )
    payload = build_payload(config, "f")
    assert payload["metadata"]["effective_config"]["training"] == {
        "lora": {"r": 8, "target_modules": ["q_proj"]}
    }


def test_minimal_config_payload() -> None:
    payload = build_payload(SFTConfig.from_toml('[job]\nmodel = " m "\n'), "f")
    assert payload == {
        "model": "m",
        "training_type": "sft_offline",
        "training_file_id": "f",
        "hyperparameters": {"n_epochs": 1},
        "metadata": {"effective_config": {"compute": {}, "data": {"topology": {}}, "training": {}}},
    }


def test_dropped_keys() -> None:
    config = SFTConfig.from_toml(
        '[job]\nmodel = "m"\n[compute]\nvariant = "H100-4x"\ngpus_per_node = 4\n'
        "[hyperparameters]\nweight_decay = 0.1\n[tags]\nx = 1\n"
    )
    assert dropped_keys(config) == [
        "hyperparameters.weight_decay",
        "compute.variant",
        "compute.gpus_per_node",
        "tags",
    ]
    payload_text = json.dumps(build_payload(config, "f"))
    assert "weight_decay" not in payload_text and "variant" not in payload_text


# -- differential: the reference client's mapping, written from the contract -----------------


def reference_payload(data: dict[str, Any], training_file_id: str) -> dict[str, Any]:
    """How the reference client maps a parsed TOML document (docs/contract/sft-config.md)."""
    hp_cfg = data.get("hyperparameters", {})
    hp: dict[str, Any] = {"n_epochs": int(hp_cfg.get("n_epochs", 1))}
    for key in (
        "batch_size",
        "global_batch",
        "per_device_batch",
        "gradient_accumulation_steps",
        "sequence_length",
        "learning_rate",
        "warmup_ratio",
        "train_kind",
    ):
        if key in hp_cfg:
            hp[key] = hp_cfg[key]
    if "parallelism" in hp_cfg:
        hp["parallelism"] = hp_cfg["parallelism"]
    compute = data.get("compute", {})
    train = data.get("training", {})
    effective: dict[str, Any] = {
        "compute": {k: compute[k] for k in ("gpu_type", "gpu_count", "nodes") if k in compute},
        "data": {"topology": data.get("data", {}).get("topology", {})},
        "training": {k: v for k, v in train.items() if k in ("mode", "use_qlora")},
    }
    validation = train.get("validation")
    if isinstance(validation, dict):
        hp.update(
            {
                "evaluation_strategy": validation.get("evaluation_strategy", "steps"),
                "eval_steps": int(validation.get("eval_steps", 0) or 0),
                "save_best_model_at_end": bool(validation.get("save_best_model_at_end", True)),
                "metric_for_best_model": validation.get("metric_for_best_model", "val.loss"),
                "greater_is_better": bool(validation.get("greater_is_better", False)),
            }
        )
        effective["training"]["validation"] = {"enabled": bool(validation.get("enabled", True))}
    return {
        "model": data["job"]["model"].strip(),
        "training_file_id": training_file_id,
        "training_type": "sft_offline",
        "hyperparameters": hp,
        "metadata": {"effective_config": effective},
    }


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


pos = st.integers(1, 64)
flag = st.booleans()
configs = st.fixed_dictionaries(
    {"job": st.fixed_dictionaries({"model": st.sampled_from(["Qwen/Qwen3-4B", "org/m"])})},
    optional={
        "compute": optional(
            gpu_type=st.sampled_from(["H100", "A100"]),
            gpu_count=pos,
            nodes=pos,
            variant=st.just("v"),
        ),
        "data": optional(
            topology=optional(container_count=pos, total_gpus=pos, variant=st.just("v"))
        ),
        "training": optional(
            mode=st.sampled_from(["full_finetune", "lora", "sft_offline"]),
            validation=optional(
                enabled=flag,
                eval_steps=st.integers(0, 100),
                save_best_model_at_end=flag,
                greater_is_better=flag,
                evaluation_strategy=st.just("steps"),
                metric_for_best_model=st.just("val.loss"),
            ),
        ),
        "hyperparameters": optional(
            n_epochs=pos,
            batch_size=pos,
            sequence_length=pos,
            per_device_batch=pos,
            learning_rate=st.floats(1e-7, 1e-2),
            warmup_ratio=st.floats(0, 1),
            parallelism=optional(
                bf16=flag, tensor_parallel_size=pos, activation_checkpointing=flag
            ),
        ),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_payload_matches_the_reference_mapping(data: dict[str, Any]) -> None:
    config = SFTConfig.from_dict(data)
    assert build_payload(config, "file_X") == reference_payload(data, "file_X")


def test_old_lora_spellings_are_sent_as_training_lora_with_their_types() -> None:
    config = SFTConfig.from_toml(
        '[job]\nmodel = "m"\n[hyperparameters]\nworld_size = 1\nlora_rank = 8\nlora_alpha = 16\n'
    )
    payload = build_payload(config, "f")
    lora = payload["metadata"]["effective_config"]["training"]["lora"]
    assert lora == {"r": 8, "alpha": 16} and isinstance(lora["alpha"], int)
    assert "lora_rank" not in json.dumps(payload) and "world_size" not in json.dumps(payload)
    assert dropped_keys(config) == ["hyperparameters.world_size"]
