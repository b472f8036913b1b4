"""Local supervised finetuning: ``run(config, dataset)`` trains here and returns a result.

>>> from synth_lab.train import run
>>> result = run("sft.toml", "train.jsonl", output_dir="runs/demo", max_steps=20)  # doctest: +SKIP
>>> result.plot(); result.generate("Hello!")                                      # doctest: +SKIP

Names are imported on first use, so ``synth_lab.train.metrics`` (which a metrics server reuses)
and ``plot_losses`` (from :mod:`synth_lab.plots`) load without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synth_lab._lazy import lazy_attributes

if TYPE_CHECKING:
    from synth_lab.plots import plot_losses
    from synth_lab.train.api import run
    from synth_lab.train.live import LiveView, TextLogger
    from synth_lab.train.metrics import (
        BaseLogger,
        CallbackLogger,
        JSONLLogger,
        MemoryLogger,
        MetricLogger,
        MetricPoint,
        RunInfo,
    )
    from synth_lab.train.result import TrainResult

_EXPORTS = {
    "run": "synth_lab.train.api",
    "TrainResult": "synth_lab.train.result",
    "LiveView": "synth_lab.train.live",
    "TextLogger": "synth_lab.train.live",
    "plot_losses": "synth_lab.plots",
    "BaseLogger": "synth_lab.train.metrics",
    "CallbackLogger": "synth_lab.train.metrics",
    "JSONLLogger": "synth_lab.train.metrics",
    "MemoryLogger": "synth_lab.train.metrics",
    "MetricLogger": "synth_lab.train.metrics",
    "MetricPoint": "synth_lab.train.metrics",
    "RunInfo": "synth_lab.train.metrics",
}
__all__ = [
    "BaseLogger",
    "CallbackLogger",
    "JSONLLogger",
    "LiveView",
    "MemoryLogger",
    "MetricLogger",
    "MetricPoint",
    "RunInfo",
    "TextLogger",
    "TrainResult",
    "plot_losses",
    "run",
]


__getattr__ = lazy_attributes(__name__, _EXPORTS)
