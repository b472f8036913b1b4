"""The training loop's entry: what the launcher, the workers and ``train.run`` call.

:func:`train` refuses what the local trainer cannot do, then runs a
:class:`~synth_lab.train.recipe.Recipe` (setup, steps, evaluation, checkpoints, ``final/``).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from synth_lab.errors import MissingDependencyError, TrainingError
from synth_lab.train.distributed import DistEnv
from synth_lab.train.metrics import TRAIN_LOSS, VAL_LOSS
from synth_lab.train.recipe import METRIC_ALIASES, Recipe
from synth_lab.train.schedule import cosine_with_warmup
from synth_lab.train.spec import StopSignal, TrainSpec

__all__ = ["Recipe", "cosine_with_warmup", "train"]


def train(
    spec: TrainSpec, env: DistEnv, logger: Any = None, stop: StopSignal | None = None
) -> dict[str, Any]:
    """Train as ``spec`` says; returns a summary (rank 0's is the one that matters).

    Raises:
        TrainingError: The config asks for what the local trainer cannot do, or training
            failed (a loss that is not finite, a checkpoint that is not one).
        MissingDependencyError: The config needs a package that is not installed.
    """
    recipe = Recipe(spec, env, logger, stop)
    _check_supported(recipe.config)
    return recipe.run()


def _check_supported(config: Any, *, launched: bool | None = None) -> None:
    """Refuse, before any work, what the local trainer cannot do.

    ``launched``: started as one rank by torchrun or srun (default: read from the environment),
    which is how a job spans several nodes.
    """
    par, compute = config.parallelism, config.compute
    if par.use_deepspeed and importlib.util.find_spec("deepspeed") is None:
        raise MissingDependencyError("deepspeed", "DeepSpeed ZeRO (use_deepspeed = true)")
    metric = config.validation.metric_for_best_model
    if METRIC_ALIASES.get(metric, metric) not in (VAL_LOSS, TRAIN_LOSS):
        raise TrainingError(
            f"metric_for_best_model = {metric!r} is not computed by the local trainer",
            hint=f'use "{VAL_LOSS}" (or "{TRAIN_LOSS}")',
        )
    if (par.tensor_parallel_size or 1) > 1 or (par.pipeline_parallel_size or 1) > 1:
        raise TrainingError(
            "tensor and pipeline parallelism are not available in the local trainer",
            hint="submit the job remotely (synth-lab train without --local), or set both to 1",
        )
    if launched is None:
        from synth_lab.train.distributed import launched_as_rank

        launched = launched_as_rank()
    if compute and (compute.nodes or 1) > 1 and not launched:
        raise TrainingError(
            f"the config asks for {compute.nodes} nodes: one process here cannot start them",
            hint="start it with torchrun or Slurm on every node: `synth-lab launch --config "
            "CONFIG --dataset DATA --emit torchrun` (or `--emit slurm`) prints the commands; "
            "or set nodes = 1",
        )
