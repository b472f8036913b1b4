"""Config changes that make a plan fit: each a set of dotted overrides ``replace()`` takes.

Candidates come in order of how little they change the training: memory savers that train the
same model the same way (activation checkpointing, a smaller micro-batch with more accumulation,
sharding), then more GPUs (same training, more money), CPU offload (same training, slower),
then a different method (LoRA, QLoRA). Each is tried alone, then cumulatively, so a config that
needs two changes still gets a suggestion that fits.
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


def _world(config: SFTConfig, gpus: int) -> dict[str, Any]:
    """Overrides for ``gpus`` GPUs (at most 8 per node), keeping the global batch."""
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
    hp = config.hyperparameters
    if hp.gradient_accumulation_steps:
        per_step = config.per_device_batch * gpus
        out["hyperparameters.gradient_accumulation_steps"] = max(1, config.global_batch // per_step)
    return out


def _candidates(config: SFTConfig) -> list[tuple[dict[str, Any], str]]:
    par, world = config.parallelism, config.world_size
    out: list[tuple[dict[str, Any], str]] = []
    if not par.activation_checkpointing:
        out.append(
            ({PAR + "activation_checkpointing": True}, "recompute activations (~30% slower)")
        )
    if config.per_device_batch > 1:
        accum = config.gradient_accumulation_steps * config.per_device_batch
        out.append(
            (
                {"hyperparameters.per_device_batch": 1,
                 "hyperparameters.gradient_accumulation_steps": accum},
                f"micro-batch 1 × {accum} accumulation: same global batch",
            )
        )  # fmt: skip
    sharded = par.use_deepspeed and (par.deepspeed_stage or 0) == 3
    sharded = sharded or (par.fsdp and (par.fsdp_sharding_strategy or "full_shard") == "full_shard")
    if world > 1 and not sharded:
        if par.use_deepspeed:
            out.append(({PAR + "deepspeed_stage": 3}, "ZeRO-3: shard weights, gradients, states"))
        else:
            out.append(
                (
                    {PAR + "fsdp": True, PAR + "fsdp_sharding_strategy": "full_shard"},
                    "FSDP full shard: weights, gradients and optimizer states split over GPUs",
                )
            )
    gpus = world
    while gpus < MAX_GPUS:
        gpus *= 2
        extra = (
            {} if sharded else {PAR + "fsdp": True, PAR + "fsdp_sharding_strategy": "full_shard"}
        )
        out.append(({**_world(config, gpus), **extra}, f"{gpus} GPUs: same training, more GPUs"))
    if world > 1 and not par.model_extra.get("cpu_offload"):
        out.append(
            (
                {PAR + "cpu_offload": True},
                "CPU offload: sharded weights, gradients, optimizer states in CPU memory (slower)",
            )
        )
    if config.train_mode == "full_finetune":
        out.append(
            (
                {"training.mode": "lora", "hyperparameters.train_kind": "peft"},
                "LoRA: frozen bf16 base, small trained adapters (a different method)",
            )
        )
    if config.train_mode != "qlora":
        out.append(
            (
                {"training.mode": "qlora", "training.use_qlora": True,
                 "hyperparameters.train_kind": "peft"},
                "QLoRA: 4-bit base, LoRA adapters (a different method)",
            )
        )  # fmt: skip
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
    """Tried candidates, fitting ones first (at most one per kind), best first."""
    from synth_lab.plan.estimate import estimate

    def total(overrides: dict[str, Any]) -> tuple[int, bool] | None:
        try:
            plan = estimate(_applied(config, overrides), dataset, **options)
        except (SynthLabError, ValueError):
            return None
        return plan.per_gpu["total"], plan.fits

    found: list[Suggestion] = []
    cumulative: dict[str, Any] = {}
    whys: list[str] = []
    more_gpus_fit = False
    for overrides, why in _candidates(config):
        is_gpus = "compute.gpu_count" in overrides
        if is_gpus and more_gpus_fit:
            continue
        result = total(overrides)
        if result is None:
            continue
        found.append(Suggestion(overrides, result[0], result[1], why))
        more_gpus_fit = more_gpus_fit or (is_gpus and result[1])
        if not is_gpus and "training.mode" not in overrides:
            cumulative.update(overrides)
            whys.append(why.split(":")[0])
    if len(whys) > 1:
        result = total(cumulative)
        if result is not None:
            found.append(Suggestion(dict(cumulative), result[0], result[1], " + ".join(whys)))
    fitting = [s for s in found if s.fits]
    rest = sorted((s for s in found if not s.fits), key=lambda s: s.per_gpu_total)
    return fitting + rest[: max(0, 3 - len(fitting))]
