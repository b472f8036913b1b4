"""Sweeps: train a grid or a random search of configs, resumably, and compare the runs.

>>> from synth_lab.sweep import loguniform, run_sweep
>>> sweep = run_sweep(cfg, {"hyperparameters.learning_rate": [1e-3, 3e-3]}, "train.jsonl",
...                   max_steps=50)                       # doctest: +SKIP
>>> sweep = run_sweep(cfg, {"hyperparameters.learning_rate": loguniform(1e-5, 1e-3)},
...                   budget=8, remote=True, max_parallel=4)   # doctest: +SKIP
>>> from synth_lab.metrics import VAL_LOSS
>>> sweep.table, sweep.best.config, sweep.plot(metric=VAL_LOSS)   # doctest: +SKIP

Heavy libraries (torch, pandas, matplotlib) are imported only when a sweep runs or is shown.
"""

from __future__ import annotations

from synth_lab.sweep.grid import SweepArgs, SweepPoint, grid, parse_axis
from synth_lab.sweep.manifest import load
from synth_lab.sweep.result import SweepResult, SweepRun
from synth_lab.sweep.runner import run_sweep
from synth_lab.sweep.space import choice, loguniform, randint, sample, uniform
from synth_lab.sweep.stopping import MedianStopping, SuccessiveHalving
from synth_lab.sweep.view import SweepView

__all__ = [
    "MedianStopping",
    "SuccessiveHalving",
    "SweepArgs",
    "SweepPoint",
    "SweepResult",
    "SweepRun",
    "SweepView",
    "choice",
    "grid",
    "load",
    "loguniform",
    "parse_axis",
    "randint",
    "run_sweep",
    "sample",
    "uniform",
]
