"""Config changes that make a plan fit: each a set of dotted overrides ``replace()`` takes.

Candidates come in order of how little they change the training. First the memory savers that
train the same model the same way: activation checkpointing, a micro-batch of 1 with more
accumulation, full sharding; alone, then together. Then the larger changes: more GPUs (same
training, more money), CPU offload (same training, slower), LoRA and QLoRA (a different
method); each alone, and when that is not enough, on top of the savers. The global batch never
changes.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any

from synth_lab.config import SFTConfig
from synth_lab.errors import SynthLabError
from synth_lab.plan.result import Suggestion

PAR = "hyperparameters.parallelism."
MAX_GPUS = 64
GPUS_PER_NODE = 8
SHOWN_NOT_FITTING = 3
Candidate = tuple[dict[str, Any], str]
LORA_WHY = "LoRA (frozen base, small trained adapters: a different method)"
QLORA_WHY = "QLoRA (4-bit frozen base + LoRA: a different method)"


def _fully_sharded(config: SFTConfig) -> bool:
    par = config.parallelism
    if par.use_deepspeed:
        return (par.deepspeed_stage or 0) == 3
    return bool(par.fsdp) and (par.fsdp_sharding_strategy or "full_shard") == "full_shard"


def _shard(config: SFTConfig) -> dict[str, Any]:
    if _fully_sharded(config):
        return {}
    if config.parallelism.use_deepspeed:
        return {PAR + "deepspeed_stage": 3}
    return {PAR + "fsdp": True, PAR + "fsdp_sharding_strategy": "full_shard"}


def _world(config: SFTConfig, gpus: int) -> dict[str, Any] | None:
    """Overrides for ``gpus`` GPUs (at most 8 per node) with the same global batch, or
    ``None`` when the global batch cannot be split over that many."""
    per_step = config.per_device_batch * gpus
    if config.global_batch % per_step:
        return None
    nodes = math.ceil(gpus / GPUS_PER_NODE)
    per_node = gpus // nodes
    out: dict[str, Any] = {"compute.gpu_count": gpus}
    c = config.compute
    if c and c.nodes is not None:
        out["compute.nodes"] = nodes
    if c and c.gpus_per_node is not None:
        out["compute.gpus_per_node"] = per_node
    if c and c.variant is not None and c.gpu_type:
        out["compute.variant"] = f"{c.gpu_type}-{per_node}x"
    topo = config.data.topology if config.data else None
    for key, value in (
        ("total_gpus", gpus), ("gpus_per_node", per_node), ("nodes", nodes),
        ("container_count", gpus), ("variant", out.get("compute.variant")),
    ):  # fmt: skip
        if topo and key in topo and value is not None:
            out[f"data.topology.{key}"] = value
    out["hyperparameters.gradient_accumulation_steps"] = config.global_batch // per_step
    return {**out, **_shard(config)}


def _savers(config: SFTConfig) -> list[Candidate]:
    out: list[Candidate] = []
    if not config.parallelism.activation_checkpointing:
        out.append(({PAR + "activation_checkpointing": True}, "activation checkpointing"))
    if config.per_device_batch > 1:
        accum = config.gradient_accumulation_steps * config.per_device_batch
        overrides = {
            "hyperparameters.per_device_batch": 1,
            "hyperparameters.gradient_accumulation_steps": accum,
        }
        out.append((overrides, f"micro-batch 1 × {accum} accumulation"))
    if config.world_size > 1 and _shard(config):
        name = "ZeRO-3" if config.parallelism.use_deepspeed else "FSDP full shard"
        out.append((_shard(config), name))
    return out


def _methods(config: SFTConfig) -> list[Candidate]:
    out: list[Candidate] = []
    if config.world_size > 1 and not (config.parallelism.model_extra or {}).get("cpu_offload"):
        offload = {PAR + "cpu_offload": True, **_shard(config)}
        out.append((offload, "CPU offload of sharded weights, gradients, optimizer states"))
    if config.train_mode == "full_finetune":
        out.append(({"training.mode": "lora", "hyperparameters.train_kind": "peft"}, LORA_WHY))
    if config.train_mode != "qlora":
        qlora = {"training.mode": "qlora", "training.use_qlora": True}
        out.append(({**qlora, "hyperparameters.train_kind": "peft"}, QLORA_WHY))
    return out


def _applied(config: SFTConfig, overrides: dict[str, Any]) -> SFTConfig:
    """``config`` with dotted overrides, validated by the schema only.

    ``replace()`` re-renders and re-parses the TOML (milliseconds each); the planner tries a
    dozen candidates, so it validates the merged data directly. Every suggestion is also a
    valid ``replace()`` argument (the tests check this).
    """
    data = copy.deepcopy(config.to_dict())
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return SFTConfig.model_validate(data)


def suggestions(
    config: SFTConfig, dataset: str | os.PathLike[str] | None, options: dict[str, Any]
) -> list[Suggestion]:
    """Fitting suggestions in order of preference, then the closest few that do not fit."""
    from synth_lab.plan.estimate import estimate

    found: list[Suggestion] = []

    def trial(overrides: dict[str, Any], why: str) -> bool:
        try:
            plan = estimate(_applied(config, overrides), dataset, **options)
        except (SynthLabError, ValueError):
            return False
        found.append(Suggestion(dict(overrides), plan.per_gpu["total"], plan.fits, why))
        return plan.fits

    savers = _savers(config)
    saved: dict[str, Any] = {}
    for overrides, why in savers:
        trial(overrides, why + ": same training")
        saved.update(overrides)
    names = " + ".join(why for _, why in savers)
    if len(savers) > 1:
        trial(saved, names + ": same training")
    saved_config = _applied(config, saved) if saved else config

    def with_savers(overrides: dict[str, Any], why: str) -> None:
        if not trial(overrides, why) and saved:
            trial({**saved, **overrides}, f"{why} + {names}")

    gpus = config.world_size
    while gpus < MAX_GPUS:
        gpus *= 2
        alone, base = _world(config, gpus), _world(saved_config, gpus)
        why = f"{gpus} GPUs: same training, more GPUs"
        if alone is not None and trial(alone, why):
            break
        if base is not None and saved and trial({**saved, **base}, f"{why} + {names}"):
            break
    for overrides, why in _methods(config):
        with_savers(overrides, why)
    fitting = [s for s in found if s.fits]
    rest = sorted((s for s in found if not s.fits), key=lambda s: s.per_gpu_total)
    return fitting + rest[: max(0, SHOWN_NOT_FITTING - len(fitting))]
