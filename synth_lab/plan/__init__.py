"""The launch planner: will a config fit, how long will it take, what will it cost.

``estimate(config)`` works from the model's shape (``config.json`` or a built-in table) and
arithmetic; it imports no torch and loads no weights, so it runs in milliseconds.
"""

from __future__ import annotations

from synth_lab.plan.estimate import estimate, setup_from_config
from synth_lab.plan.gpus import GPUS, gpu_named
from synth_lab.plan.memory import LOGITS_CHUNK, Setup, Term
from synth_lab.plan.result import Plan, Suggestion
from synth_lab.plan.shapes import BUILTIN, ModelShape, resolve_shape

__all__ = [
    "BUILTIN",
    "GPUS",
    "LOGITS_CHUNK",
    "ModelShape",
    "Plan",
    "Setup",
    "Suggestion",
    "Term",
    "estimate",
    "gpu_named",
    "resolve_shape",
    "setup_from_config",
]
