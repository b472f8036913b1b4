"""The learning-rate schedule: linear warmup, then cosine decay to 0 at the last step.

A run's schedule is a function of this call's config (learning rate, warmup, total steps) and
the step it is at. A resumed run builds it anew at the checkpoint's step rather than loading the
saved scheduler, so it may change ``max_steps`` or the learning rate: the checkpoint gives the
step, the config gives the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

# What the schedule owns in each of the optimizer's param groups.
_SCHEDULED = ("lr", "initial_lr")


def cosine_with_warmup(warmup: int, total: int) -> Callable[[int], float]:
    """LR multiplier: linear warmup over ``warmup`` steps, then cosine decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, *, lr: float, warmup: int, total_steps: int, step: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule over ``optimizer`` (a torch optimizer, not a wrapper), at ``step``.

    Every group's learning rate is ``lr × factor(step)`` on return. An optimizer state loaded
    later (a checkpoint's) keeps these learning rates: they belong to the schedule, and the
    saved ones are the earlier call's.

    Args:
        optimizer: The optimizer whose groups the schedule sets.
        lr: The peak learning rate.
        warmup: Steps of linear warmup.
        total_steps: The step at which the rate reaches 0.
        step: Optimizer steps already taken (a resumed run's checkpoint step).
    """
    for group in optimizer.param_groups:
        group["initial_lr"] = lr  # what LambdaLR scales (and requires when not at step 0)
    optimizer.register_load_state_dict_pre_hook(_keep_scheduled_values)
    factor = cosine_with_warmup(warmup, total_steps)
    # last_epoch is the step before this one: construction steps the schedule once.
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor, last_epoch=step - 1)


def _keep_scheduled_values(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> Any:
    """Load hook: a saved optimizer state brings its moments and step counts, not its groups'
    learning rates (the schedule built for this call set those)."""
    state["param_groups"] = [
        {**saved, **{key: live[key] for key in _SCHEDULED if key in live}}
        for saved, live in zip(state["param_groups"], optimizer.param_groups, strict=False)
    ]
    return state
