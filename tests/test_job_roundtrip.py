"""config -> payload (what the client POSTs) -> the server's training config: the same training.

Configs are generated from the schema's sections (FFT, LoRA and QLoRA in every spelling the
schema accepts, batch keys, validation, parallelism, data fields), sent through the wire's JSON,
planned by the server's :func:`~synth_lab.job.jobspec.plan_job` and read back as the config the
worker trains. What the trainer reads must not change on the way; the one documented exception is
what :func:`~synth_lab.job.payload.dropped_keys` names (the hosted backend never receives it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import GOLDEN, SEEDS
from hypothesis import given, settings
from hypothesis import strategies as st

from synth_lab.config import SFTConfig
from synth_lab.config.schema import DEFAULT_LEARNING_RATE, KNOWN_MODES
from synth_lab.job.jobspec import JobPlan, plan_job
from synth_lab.job.payload import build_payload, dropped_keys, request_form_payload

MODELS = ("Qwen/Qwen3-4B", "Qwen/Qwen3-32B", "synth-lab/tiny-chat", "meta-llama/Llama-3.1-8B")
EXAMPLES = settings(max_examples=60, deadline=None, derandomize=True)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A TOML table holding any subset of ``fields``."""
    return st.fixed_dictionaries({}, optional=fields)


lora_table = optional(
    r=st.integers(1, 128),
    alpha=st.one_of(st.integers(1, 256), st.floats(0.5, 256)),
    dropout=st.floats(0, 0.9),
    target_modules=st.one_of(
        st.just("all-linear"),
        st.just(["all-linear"]),
        st.lists(
            st.sampled_from(["q_proj", "k_proj", "v_proj", "o_proj"]),
            min_size=1,
            max_size=3,
            unique=True,
        ),
    ),
)
validation_table = optional(
    enabled=st.booleans(),
    evaluation_strategy=st.sampled_from(["steps", "epoch", "no"]),
    eval_steps=st.integers(0, 500),
    save_best_model_at_end=st.booleans(),
    metric_for_best_model=st.sampled_from(["val.loss", "eval_loss"]),
    greater_is_better=st.booleans(),
)
parallelism_table = optional(
    use_deepspeed=st.booleans(),
    deepspeed_stage=st.integers(0, 3),
    fsdp=st.booleans(),
    fsdp_sharding_strategy=st.sampled_from(["full_shard", "shard_grad_op", "hybrid_shard"]),
    fsdp_auto_wrap_policy=st.just("transformer_block"),
    fsdp_use_orig_params=st.booleans(),
    activation_checkpointing=st.booleans(),
    tensor_parallel_size=st.integers(1, 4),
    pipeline_parallel_size=st.integers(1, 4),
    bf16=st.booleans(),
    fp16=st.booleans(),
).filter(lambda p: not (p.get("bf16") and p.get("fp16")))
hyperparameters_table = optional(
    n_epochs=st.integers(1, 5),
    batch_size=st.integers(1, 256),
    global_batch=st.integers(1, 256),
    per_device_batch=st.integers(1, 16),
    gradient_accumulation_steps=st.integers(1, 32),
    sequence_length=st.integers(16, 8192),
    learning_rate=st.floats(1e-7, 1e-2),
    warmup_ratio=st.floats(0, 1),
    train_kind=st.sampled_from(["fft", "peft"]),
    weight_decay=st.floats(0, 0.3),
    parallelism=parallelism_table,
    world_size=st.integers(1, 16),
    lora=lora_table,
    lora_rank=st.integers(1, 64),
    lora_alpha=st.integers(1, 128),
    lora_dropout=st.floats(0, 0.5),
    lora_target_modules=st.just(["q_proj", "v_proj"]),
)
training_table = optional(
    mode=st.sampled_from(KNOWN_MODES),
    use_qlora=st.booleans(),
    validation=validation_table,
    lora=lora_table,
)
compute_table = st.fixed_dictionaries(
    {"gpu_type": st.sampled_from(["H100", "A100", "H200"]), "gpu_count": st.integers(1, 8)},
    optional={"nodes": st.integers(1, 2), "variant": st.just("H100-4x")},
)
data_table = optional(
    validation_path=st.just("val.jsonl"),
    topology=optional(container_count=st.integers(1, 8), gpus_per_node=st.integers(1, 8)),
)


def _consistent(doc: dict[str, Any]) -> dict[str, Any]:
    """Make the generated document pass the config's cross-field errors (not its warnings)."""
    hp, compute = doc["hyperparameters"], doc["compute"]
    if {"per_device_batch", "gradient_accumulation_steps", "global_batch"} <= hp.keys():
        hp["global_batch"] = (
            hp["per_device_batch"] * hp["gradient_accumulation_steps"] * compute["gpu_count"]
        )
    par = hp.get("parallelism") or {}
    if par.get("use_deepspeed") and par.get("fsdp"):
        del par["fsdp"]
    training = doc.get("training") or {}
    lora_mode = training.get("use_qlora") or training.get("mode") in ("lora", "qlora")
    if lora_mode and hp.get("train_kind") == "fft":
        del hp["train_kind"]
    if training.get("use_qlora") and training.get("mode") == "full_finetune":
        del training["mode"]
    return doc


configs = st.fixed_dictionaries(
    {
        "job": st.fixed_dictionaries({"model": st.sampled_from(MODELS)}),
        "compute": compute_table,
        "hyperparameters": hyperparameters_table,
    },
    optional={
        "training": training_table,
        "data": data_table,
        "lora": lora_table,
        "tags": st.just({"team": "research"}),
        "type": st.just("sft"),
    },
).map(_consistent)


def training(config: SFTConfig) -> dict[str, Any]:
    """What the trainer reads from a config (``synth_lab.train``), resolved."""
    hp, mode = config.hyperparameters, config.train_mode
    return {
        "model": config.job.model,
        "mode": mode,
        "lora": config.lora.model_dump() if mode != "full_finetune" else None,
        "n_epochs": hp.n_epochs,
        "learning_rate": hp.learning_rate or DEFAULT_LEARNING_RATE[mode],
        "warmup_ratio": hp.warmup_ratio or 0.0,
        "sequence_length": hp.sequence_length,
        "weight_decay": hp.weight_decay,
        "global_batch": config.global_batch,
        "per_device_batch": config.per_device_batch,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "world_size": config.world_size,
        "validation": config.validation.model_dump(),
        "precision": config.precision,
        "strategy": config.strategy,
        "parallelism": config.parallelism.model_dump(exclude_none=True),
    }


def served(payload: dict[str, Any], *, gpus: int = 64, any_compute: bool = False) -> JobPlan:
    """The server's plan for ``payload`` after the trip through JSON."""
    return plan_job(
        json.loads(json.dumps(payload)),
        model_map={},
        gpus_available=gpus,
        accept_any_compute=any_compute,
        file_status=lambda file_id: {"status": "ready", "records": 1000},
        resolve_model=lambda model: model,
    )


def expected(config: SFTConfig) -> dict[str, Any]:
    """The config's training, less what the backend is documented never to receive."""
    want = training(config)
    if "hyperparameters.weight_decay" in dropped_keys(config):
        want["weight_decay"] = None
    return want


@pytest.mark.parametrize("seed", SEEDS)
def test_the_seed_configs_train_the_same_on_the_server(seed: str) -> None:
    config = SFTConfig.from_file(GOLDEN / f"{seed}.toml")
    plan = served(build_payload(config, "file_TRAIN"))
    assert training(SFTConfig.from_dict(plan.config)) == expected(config)


@EXAMPLES
@given(configs)
def test_the_server_trains_what_the_config_says(doc: dict[str, Any]) -> None:
    config = SFTConfig.from_dict(doc)
    validation_file = "file_VAL" if config.validation_path else None
    plan = served(build_payload(config, "file_TRAIN", validation_file))

    assert training(SFTConfig.from_dict(plan.config)) == expected(config)
    assert plan.model == plan.local_model == config.job.model
    assert (plan.training_file_id, plan.validation_file_id) == ("file_TRAIN", validation_file)
    assert plan.budget.max_steps is None and plan.budget.n_epochs == config.hyperparameters.n_epochs
    assert plan.gpus == config.world_size and not plan.notes


@EXAMPLES
@given(configs, st.integers(1, 10_000))
def test_the_sdk_form_with_a_step_budget_trains_the_same(doc: dict[str, Any], steps: int) -> None:
    config = SFTConfig.from_dict(doc)
    validation_file = "file_VAL" if config.validation_path else None
    payload = build_payload(config, "file_TRAIN", validation_file)
    plan = served(request_form_payload(payload, "sdk", total_steps=steps))

    got, want = training(SFTConfig.from_dict(plan.config)), expected(config)
    # total_steps replaces n_epochs in this form: the budget, not the epochs, ends the run.
    del got["n_epochs"], want["n_epochs"]
    assert got == want
    assert (plan.budget.governed_by, plan.budget.max_steps) == ("total_steps", steps)
    assert plan.validation_file_id == validation_file


@EXAMPLES
@given(configs, st.sampled_from([0, 1]))
def test_a_cpu_server_keeps_the_batch(doc: dict[str, Any], gpus: int) -> None:
    """On fewer devices than asked for (``--accept-any-compute``), one process trains the same
    global batch: what it loses in parallelism it makes up in gradient accumulation."""
    config = SFTConfig.from_dict(doc)
    plan = served(build_payload(config, "file_TRAIN"), gpus=gpus, any_compute=True)
    got, want = training(SFTConfig.from_dict(plan.config)), expected(config)

    assert got["world_size"] == 1
    assert got["global_batch"] == want["global_batch"]
    assert got["per_device_batch"] == want["per_device_batch"]
    for key in ("world_size", "strategy", "gradient_accumulation_steps"):
        del got[key], want[key]
    assert got == want
    if config.world_size > 1:
        assert plan.notes and plan.notes[0]["requested_gpus"] == config.world_size
