"""Sweeps: train a grid of configs and compare their curves and results.

>>> from synth_lab.sweep import run_sweep
>>> sweep = run_sweep(cfg, {"hyperparameters.learning_rate": [1e-3, 3e-3]}, "train.jsonl",
...                   max_steps=50)                       # doctest: +SKIP
>>> sweep.table, sweep.best, sweep.plot()                 # doctest: +SKIP

Heavy libraries (torch, pandas, matplotlib) are imported only when a sweep runs or is shown.
"""

from __future__ import annotations

from synth_lab.sweep.grid import SweepArgs, SweepPoint, grid, parse_axis
from synth_lab.sweep.result import SweepResult, SweepRun
from synth_lab.sweep.runner import SweepView, run_sweep

__all__ = [
    "SweepArgs",
    "SweepPoint",
    "SweepResult",
    "SweepRun",
    "SweepView",
    "grid",
    "parse_axis",
    "run_sweep",
]
