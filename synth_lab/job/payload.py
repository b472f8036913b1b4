"""The job payload that ``POST /learning/jobs`` receives, built exactly as synth-ai builds it.

The mapping is in ``docs/contract/sft-config.md``. The one addition over the reference client is
``metadata.effective_config.training.lora`` when ``[training.lora]`` is present.
:func:`sdk_payload` rewrites it in the form synth-ai's Python SDK sends
(``docs/contract/learning-api.md`` section 2).
"""

from __future__ import annotations

from typing import Any

from synth_lab.config import SFTConfig
from synth_lab.errors import ConfigError, Problem

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


FORMS = ("cli", "sdk")
"""Request forms: the synth-ai CLI's (``build_payload``) and its Python SDK's."""


def sdk_payload(
    payload: dict[str, Any],
    *,
    total_steps: int | None = None,
    suffix: str | None = None,
    integrations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The same job in the SDK's form (``LearningClient.create_job`` / ``FtClient``).

    The validation file moves from ``metadata.effective_config.data.validation_files`` to a
    top-level ``validation_file``; ``total_steps`` (an exact optimizer-step budget, sent
    instead of ``n_epochs``), ``suffix`` and ``integrations`` are added when given.

    Args:
        payload: A payload from :func:`build_payload` (left unchanged).
        total_steps: Optimizer steps to run instead of ``n_epochs`` passes.
        suffix: A name part for the finetuned model.
        integrations: Integrations to request, by name.
    """
    out = {**payload, "hyperparameters": dict(payload.get("hyperparameters") or {})}
    metadata = dict(payload.get("metadata") or {})
    effective = dict(metadata.get("effective_config") or {})
    data = dict(effective.get("data") or {})
    validation = data.pop("validation_files", None)
    if effective:
        metadata["effective_config"] = {**effective, "data": data}
        out["metadata"] = metadata
    if validation:
        out["validation_file"] = validation[0]
    if total_steps is not None:
        # The budget replaces the epochs, as the SDK's own payloads carry one or the other.
        out["hyperparameters"].pop("n_epochs", None)
        out["hyperparameters"]["total_steps"] = int(total_steps)
    if suffix:
        out["suffix"] = suffix
    if integrations:
        out["integrations"] = dict(integrations)
    return out


def request_form_payload(
    payload: dict[str, Any],
    form: str = "cli",
    *,
    total_steps: int | None = None,
    suffix: str | None = None,
    integrations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``payload`` (from :func:`build_payload`) in request form ``form`` (see :data:`FORMS`).

    Raises:
        ConfigError: An unknown form, a non-positive ``total_steps``, or SDK-only options with
            ``form="cli"`` (the CLI never sends them).
    """

    def refuse(path: str, message: str, hint: str) -> ConfigError:
        return ConfigError("Bad request form", [Problem(path, None, None, message, hint)])

    if form not in FORMS:
        raise refuse("form", f"unknown request form {form!r}", "use 'cli' or 'sdk'")
    if form == "cli":
        given = [
            k
            for k, v in (
                ("total_steps", total_steps),
                ("suffix", suffix),
                ("integrations", integrations),
            )
            if v
        ]
        if given:
            raise refuse(given[0], f"{given[0]} is sent only in the SDK form", "pass form='sdk'")
        return payload
    if total_steps is not None and (isinstance(total_steps, bool) or int(total_steps) < 1):
        raise refuse(
            "total_steps", f"total_steps must be a positive integer, got {total_steps!r}", ""
        )
    return sdk_payload(payload, total_steps=total_steps, suffix=suffix, integrations=integrations)


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
