"""``%sft_plan``'s typed arguments; the magic is a shim over :func:`synth_lab.plan.estimate`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PlanArgs:
    """What ``%sft_plan`` was asked for."""

    config: str | None = None
    dataset: str | None = None
    gpu_type: str | None = None
    name: str | None = None

    @classmethod
    def parse(cls, args: Any) -> PlanArgs:
        return cls(args.config, args.dataset, args.gpu_type, args.name)
