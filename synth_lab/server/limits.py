"""What one job may ask for and what one tenant may hold: the server's limits and quotas.

Job limits are checked when a job is created (400 ``limit_exceeded`` naming the limit); tenant
quotas when a job is created or a file uploaded (429 ``quota_exceeded``). Running jobs are
shared fairly by the scheduler (:func:`fair_order`), each tenant at most
:attr:`Limits.max_running_jobs` at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synth_lab.job.requestform import StepBudget
from synth_lab.server.errors import RequestError, bad


@dataclass(frozen=True)
class Limits:
    """Server-side limits (``synth-lab serve --max-...`` flags); ``0`` in a quota means none.

    Attributes:
        max_steps: Optimizer steps one job may run (``n_epochs`` × steps per epoch).
        max_sequence_length: Largest ``hyperparameters.sequence_length``.
        max_batch: Largest global batch (sequences per optimizer step).
        max_lora_rank: Largest LoRA rank.
        max_gpus: Largest ``compute.gpu_count`` asked for, even with ``--accept-any-compute``.
        max_running_jobs: Jobs of one tenant running at once (more wait their turn).
        max_queued_jobs: Jobs of one tenant waiting (created or started, not yet running).
        max_stored_bytes: Bytes of uploaded files one tenant may keep.
    """

    max_steps: int = 1_000_000
    max_sequence_length: int = 131_072
    max_batch: int = 8192
    max_lora_rank: int = 1024
    max_gpus: int = 1024
    max_running_jobs: int = 8
    max_queued_jobs: int = 200
    max_stored_bytes: int = 100 << 30


def over_limit(name: str, field: str, value: int, limit: int, unit: str = "") -> RequestError:
    """A 400 naming the limit a job went over and the field that set it."""
    amount = f"{value:,} {unit}".strip()
    return bad(
        "limit_exceeded",
        f"{field}: {amount} is over this server's limit {name} = {limit:,}",
        hint=f"lower {field}, or ask the server's operator to raise --{name.replace('_', '-')}",
        field=field,
        limit=name,
        value=value,
        maximum=limit,
    )


def over_quota(name: str, message: str, limit: int) -> RequestError:
    """A 429 naming the tenant quota that is full (retrying later may succeed)."""
    return RequestError(
        429,
        "quota_exceeded",
        message,
        hint="wait for your jobs to finish, or ask the operator to raise "
        f"--{name.replace('_', '-')}",
        limit=name,
        maximum=limit,
    )


def job_steps(config: Any, records: int, budget: StepBudget | None = None) -> int:
    """Optimizer steps a job will run: the single place the step limit is computed from.

    Args:
        config: The job's :class:`~synth_lab.config.SFTConfig`.
        records: Records in its training file.
        budget: The request's step budget (an exact step key, or ``n_epochs``); ``None``:
            ``n_epochs`` of the config governs.
    """
    batch = max(1, min(config.global_batch, max(records, 1)))
    per_epoch = math.ceil(max(records, 1) / batch)
    if budget is not None:
        return budget.total_steps(per_epoch)
    return per_epoch * int(config.hyperparameters.n_epochs)


def check_job(
    config: Any,
    records: int,
    requested_gpus: int,
    limits: Limits,
    budget: StepBudget | None = None,
) -> None:
    """Refuse a job over a limit (400 ``limit_exceeded``, the limit and field named).

    Args:
        config: The job's config (on the devices it will use).
        records: Records in its training file.
        requested_gpus: ``compute.gpu_count`` as asked (before any adjustment).
        limits: The server's limits.
        budget: The request's step budget (see :func:`job_steps`).
    """
    hp = config.hyperparameters
    step_field = "hyperparameters.n_epochs"
    if budget is not None and budget.max_steps is not None:
        step_field = f"hyperparameters.{budget.governed_by}"
    checks = [
        ("max_gpus", "compute.gpu_count", requested_gpus, "GPUs"),
        ("max_steps", step_field, job_steps(config, records, budget), "steps"),
        ("max_batch", "hyperparameters.global_batch", config.global_batch, "sequences"),
        ("max_sequence_length", "hyperparameters.sequence_length", hp.sequence_length or 0, ""),
    ]
    if config.train_mode != "full_finetune":
        checks.append(("max_lora_rank", "training.lora.r", config.lora.r, ""))
    for name, field, value, unit in checks:
        limit = getattr(limits, name)
        if value > limit:
            raise over_limit(name, field, value, limit, unit)


def fair_order(
    runnable: Sequence[Mapping[str, Any]],
    running: Mapping[str, int],
    limits: Limits,
    served: Mapping[str, int] | None = None,
) -> list[Mapping[str, Any]]:
    """Runnable jobs in the order to launch them, fair across tenants.

    The tenant with the fewest running jobs goes first, then the one served longest ago
    (``served``: tenant -> number of the launch that last ran one of its jobs), then the
    oldest job; so one tenant's long queue does not hold back another's jobs. A tenant at
    ``max_running_jobs`` waits.
    """
    counts = dict(running)
    last = dict(served or {})
    pending = list(runnable)  # oldest first
    order: list[Mapping[str, Any]] = []
    turn = max(last.values(), default=0)
    while pending:
        cap = limits.max_running_jobs
        allowed = [row for row in pending if not cap or counts.get(row["owner"], 0) < cap]
        if not allowed:
            break
        pick = min(
            allowed, key=lambda row: (counts.get(row["owner"], 0), last.get(row["owner"], 0))
        )
        order.append(pick)
        pending.remove(pick)
        counts[pick["owner"]] = counts.get(pick["owner"], 0) + 1
        turn += 1
        last[pick["owner"]] = turn
    return order
