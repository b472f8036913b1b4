"""The parts of a ``POST /learning/jobs`` body beyond the config: both upstream request forms.

synth-ai's CLI puts the validation file in ``metadata.effective_config.data.validation_files``;
its Python SDK sends a top-level ``validation_file``, ``suffix`` and ``integrations``
(``docs/contract/learning-api.md`` section 2). This module reads both, refuses what neither
sends, reads the step budget either form gives (``n_epochs``, or the SDK's ``total_steps`` and
its spellings), and lists what is accepted but not acted on (each becomes a warning event on the
job). Refusals are :class:`~synth_lab.server.errors.RequestError` 400s naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synth_lab.config.checks import suggest
from synth_lab.config.schema import HyperparametersSection
from synth_lab.server.errors import bad

STEP_KEYS = ("total_steps", "train_steps", "steps")
"""The SDK's spellings of an optimizer-step budget (they govern over ``n_epochs``)."""

VALIDATION_KEYS = (
    "evaluation_strategy",
    "eval_steps",
    "save_best_model_at_end",
    "metric_for_best_model",
    "greater_is_better",
)
"""``[training.validation]`` settings, which the CLI form sends inside ``hyperparameters``."""

TOP_LEVEL_KEYS = (
    "model",
    "training_type",
    "training_file_id",
    "hyperparameters",
    "metadata",
    "validation_file",
    "suffix",
    "integrations",
)
"""Every top-level key an upstream client (the CLI or the SDK) sends."""


SUFFIX_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class StepBudget:
    """How many optimizer steps a job runs, and which hyperparameter says so.

    Attributes:
        governed_by: ``"n_epochs"``, or the step key that sets the budget (``total_steps``,
            ``train_steps`` or ``steps``).
        n_epochs: Passes over the data (used only when ``governed_by`` is ``"n_epochs"``).
        max_steps: The exact step budget, or ``None`` when ``n_epochs`` governs.
    """

    governed_by: str
    n_epochs: int
    max_steps: int | None = None

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps the job runs when an epoch is ``steps_per_epoch`` steps."""
        return self.max_steps if self.max_steps is not None else steps_per_epoch * self.n_epochs

    def to_dict(self) -> dict[str, Any]:
        return {
            "governed_by": self.governed_by,
            "n_epochs": self.n_epochs,
            "total_steps": self.max_steps,
        }


def step_budget(hyper: Mapping[str, Any]) -> StepBudget:
    """The step budget of a payload's ``hyperparameters`` (either client's form).

    A step key (``total_steps``, ``train_steps``, ``steps``) is an exact optimizer-step budget
    and governs over ``n_epochs``; several step keys must agree. Without one, ``n_epochs``
    (default 1) passes over the training data set the number of steps.

    Raises:
        RequestError: 400 ``invalid_payload`` naming the field: not a positive integer, or
            step keys that disagree.
    """
    for key in ("n_epochs", *STEP_KEYS):
        value = hyper.get(key)
        if key in hyper and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise bad(
                "invalid_payload",
                f"hyperparameters.{key} must be a positive integer, got {value!r}",
                field=f"hyperparameters.{key}",
            )
    n_epochs = int(hyper.get("n_epochs", 1))
    given = {key: int(hyper[key]) for key in STEP_KEYS if key in hyper}
    if len(set(given.values())) > 1:
        shown = ", ".join(f"{k}={v}" for k, v in given.items())
        raise bad(
            "invalid_payload",
            f"the step budget is given twice and disagrees ({shown})",
            hint="send one of total_steps, train_steps, steps",
            fields=[f"hyperparameters.{k}" for k in given],
        )
    if not given:
        return StepBudget("n_epochs", n_epochs)
    key, steps = next(iter(given.items()))
    return StepBudget(key, n_epochs, steps)


def with_request_keys(problem: dict[str, Any]) -> dict[str, Any]:
    """An unknown-hyperparameter problem whose did-you-mean also knows the request's keys.

    The config knows only the TOML's keys; a request may also carry the SDK's step keys and the
    validation keys the CLI moves into ``hyperparameters``.
    """
    path = str(problem.get("path") or "")
    if problem.get("code") != "unknown_key" or path.count(".") != 1:
        return problem
    section, key = path.split(".")
    if section != "hyperparameters":
        return problem

    known = [*HyperparametersSection.model_fields, *STEP_KEYS, *VALIDATION_KEYS]
    guess = suggest(key, known)
    hint = f"did you mean '{guess}'?" if guess else f"remove it; accepted: {', '.join(known)}"
    return {**problem, "hint": hint}


def check_top_level_keys(payload: dict[str, Any]) -> None:
    """Refuse a top-level key no upstream client sends, with a did-you-mean."""

    for key in payload:
        if key not in TOP_LEVEL_KEYS:
            guess = suggest(str(key), TOP_LEVEL_KEYS)
            raise bad(
                "invalid_payload",
                f"unknown key '{key}'" + (f"; did you mean '{guess}'?" if guess else ""),
                hint="" if guess else f"known keys: {', '.join(TOP_LEVEL_KEYS)}",
                field=str(key),
            )


def validation_file_id(payload: Mapping[str, Any], effective: Mapping[str, Any]) -> str | None:
    """The validation file id, from the SDK's ``validation_file`` or the CLI's placement.

    Raises:
        RequestError: 400 ``invalid_payload`` for a malformed id, ``validation_file_conflict``
            when both placements are given and name different files.
    """
    top = payload.get("validation_file")
    if top is not None and not isinstance(top, str):
        raise bad("invalid_payload", "'validation_file' must be a file id (a string)")
    top = (top or "").strip() or None
    data = effective.get("data") or {}
    if not isinstance(data, dict):
        raise bad("invalid_payload", "'metadata.effective_config.data' must be an object")
    val_files = data.get("validation_files") or []
    if not isinstance(val_files, list) or len(val_files) > 1:
        raise bad("invalid_payload", "data.validation_files must be a list of at most one id")
    nested = str(val_files[0]).strip() if val_files else None
    if top and nested and top != nested:
        raise bad(
            "validation_file_conflict",
            f"validation_file is '{top}' but metadata.effective_config.data.validation_files "
            f"names '{nested}'",
            hint="send the validation file in one place (or the same id in both)",
            fields=["validation_file", "metadata.effective_config.data.validation_files"],
        )
    return top or nested


def model_suffix(value: Any) -> str | None:
    """The ``suffix`` for the finetuned model's name (``None``: none)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or not SUFFIX_PATTERN.fullmatch(value.strip()):
        raise bad(
            "invalid_payload",
            "'suffix' must be 1-64 characters of letters, digits, '.', '_' or '-'",
            field="suffix",
        )
    return value.strip()


def ignored_fields(
    payload: Mapping[str, Any], hyper: Mapping[str, Any], budget: StepBudget
) -> list[dict[str, Any]]:
    """What the request sets that this server accepts but does not act on."""
    found: list[dict[str, Any]] = []
    integrations = payload.get("integrations")
    if integrations is not None and not isinstance(integrations, dict):
        raise bad("invalid_payload", "'integrations' must be an object", field="integrations")
    if integrations:
        names = sorted(map(str, integrations))
        found.append(
            {
                "field": "integrations",
                "message": f"integrations {', '.join(names)} are recorded on the job but not "
                "run: synth-lab serve has no integrations",
                "integrations": names,
            }
        )
    if budget.max_steps is not None and "n_epochs" in hyper:
        found.append(
            {
                "field": "hyperparameters.n_epochs",
                "message": f"n_epochs={budget.n_epochs} is ignored: {budget.governed_by}="
                f"{budget.max_steps} sets the step budget",
            }
        )
    if "batch_size" in hyper:
        over = [k for k in ("global_batch", "per_device_batch") if k in hyper]
        if over:
            found.append(
                {
                    "field": "hyperparameters.batch_size",
                    "message": f"batch_size is ignored: {' and '.join(over)} set the batch",
                }
            )
    return found
