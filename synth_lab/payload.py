"""The job payload that ``POST /learning/jobs`` receives, built exactly as synth-ai builds it.

The mapping is in ``docs/contract/sft-config.md``. The one addition over the reference client is
``metadata.effective_config.training.lora`` when ``[training.lora]`` is present.
"""

from __future__ import annotations

from typing import Any

from synth_lab.config import SFTConfig

TRAINING_FILE_PLACEHOLDER = "file_TRAIN"
VALIDATION_FILE_PLACEHOLDER = "file_VAL"

_OPTIONAL_HYPERPARAMETERS = (
    "batch_size",
    "global_batch",
    "per_device_batch",
    "gradient_accumulation_steps",
    "sequence_length",
    "learning_rate",
    "warmup_ratio",
    "train_kind",
)

# Keys the config may hold that the hosted backend never receives, and why.
_NOT_SENT: dict[str, str] = {
    "hyperparameters.weight_decay": "used by the local trainer only",
    "compute.variant": "informational",
    "compute.gpus_per_node": "informational; the backend plans from gpu_count and nodes",
    "tags": "labels kept on your side",
    "type": "tells the config kind; not sent",
    "policy": "not used by SFT jobs",
    "compute.topology": "informational",
    "hyperparameters.world_size": "informational; the backend plans from [compute]",
}


def build_payload(
    config: SFTConfig, training_file_id: str, validation_file_id: str | None = None
) -> dict[str, Any]:
    """The JSON body for ``POST /learning/jobs``.

    Args:
        config: A validated config.
        training_file_id: Id of the uploaded training file.
        validation_file_id: Id of the uploaded validation file, if any; it goes to
            ``metadata.effective_config.data.validation_files``, not to a top-level field.
    """
    hp = config.hyperparameters
    written = hp.model_dump(exclude_none=True)
    hyperparameters: dict[str, Any] = {"n_epochs": hp.n_epochs}
    hyperparameters.update({k: written[k] for k in _OPTIONAL_HYPERPARAMETERS if k in written})
    if hp.parallelism is not None:
        hyperparameters["parallelism"] = hp.parallelism.model_dump(exclude_none=True)

    training = config.training
    effective_training: dict[str, Any] = {}
    if training is not None:
        effective_training = training.model_dump(include={"mode", "use_qlora"}, exclude_none=True)
        if training.validation is not None:
            v = training.validation
            hyperparameters.update(v.model_dump(exclude={"enabled"}))
            effective_training["validation"] = {"enabled": v.enabled}
    lora = config.lora_written()
    if lora:
        effective_training["lora"] = lora

    compute = config.compute
    effective: dict[str, Any] = {
        "compute": compute.model_dump(include={"gpu_type", "gpu_count", "nodes"}, exclude_none=True)
        if compute
        else {},
        "data": {"topology": dict((config.data.topology if config.data else None) or {})},
        "training": effective_training,
    }
    if validation_file_id:
        effective["data"]["validation_files"] = [validation_file_id]

    return {
        "model": config.job.model.strip(),
        "training_type": "sft_offline",
        "training_file_id": training_file_id,
        "hyperparameters": hyperparameters,
        "metadata": {"effective_config": effective},
    }


def dropped_keys(config: SFTConfig) -> list[str]:
    """Dotted paths of keys set in ``config`` that the remote backend will not see."""
    data = config.to_dict()
    found: list[str] = []
    for dotted in _NOT_SENT:
        node: Any = data
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            found.append(dotted)
    return found


def dropped_reason(dotted: str) -> str:
    """Why ``dotted`` (from :func:`dropped_keys`) is not sent."""
    return _NOT_SENT.get(dotted, "")
