"""Inside a training process: the process group, and how the model is shared between ranks.

One :class:`Strategy` per way of sharing: a single process or DDP (:class:`Strategy`), FSDP2
(``fsdp.py``) and DeepSpeed ZeRO (``zero.py``). The loop only calls
``accumulate``, ``backward``, ``step`` and the save/load helpers, so it reads the same for all.
Starting the processes is ``launcher.py``'s job.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from synth_lab.errors import MissingDependencyError, TrainingError

Factory = Callable[[Any], Any]
"""Builds the optimizer over a model's parameters, or the LR scheduler over an optimizer."""


@dataclass(frozen=True, slots=True)
class DistEnv:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> DistEnv:
        """This process's rank, from torchrun's (or our launcher's) ``RANK``/``WORLD_SIZE``/
        ``LOCAL_RANK``, else from Slurm's ``SLURM_PROCID``/``SLURM_STEP_NUM_TASKS``/
        ``SLURM_LOCALID`` (``srun`` tasks without torchrun).

        Raises:
            TrainingError: The variables contradict each other.
        """
        environ = os.environ if environ is None else environ
        rank, world, local = rank_from_environ(environ)
        if torch.cuda.is_available() and environ.get("SYNTH_LAB_DEVICE", "") != "cpu":
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        else:
            device = torch.device("cpu")
        return cls(rank, world, local, device)


def _int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise TrainingError(
            f"{name}={value!r} is not a number", hint=f"unset {name}, or set it to an integer"
        ) from None


def _slurm_tasks(environ: Mapping[str, str]) -> int:
    """Tasks of this Slurm step (``srun``), not of the allocation (the batch script sees that)."""
    return _int(environ, "SLURM_STEP_NUM_TASKS") or 0


def rank_from_environ(environ: Mapping[str, str]) -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` of this process; ``(0, 1, 0)`` when started alone.

    Raises:
        TrainingError: Inconsistent variables, which would otherwise have each of N processes
            train alone into the same folder.
    """
    tasks = _slurm_tasks(environ)
    world = _int(environ, "WORLD_SIZE")
    if world is not None:  # torchrun (possibly one per node under srun), or our own launcher
        rank, local = _int(environ, "RANK"), _int(environ, "LOCAL_RANK")
        if rank is None or not 0 <= rank < world or world < 1:
            raise TrainingError(
                f"RANK={environ.get('RANK')!r} does not fit WORLD_SIZE={world}",
                hint="start the job with torchrun (it sets both), or unset both",
            )
        if tasks > 1 and (world < tasks or world % tasks):
            raise TrainingError(
                f"WORLD_SIZE={world} is not a multiple of the {tasks} Slurm tasks of this step",
                hint="run one torchrun per node (srun --ntasks-per-node=1 torchrun ...), or "
                "unset WORLD_SIZE/RANK so each srun task is one rank",
            )
        return rank, world, rank if local is None else local
    if tasks > 1:  # srun with one task per rank, no torchrun
        rank, local = _int(environ, "SLURM_PROCID"), _int(environ, "SLURM_LOCALID")
        if rank is None or not 0 <= rank < tasks or local is None:
            raise TrainingError(
                f"Slurm says this step has {tasks} tasks but SLURM_PROCID="
                f"{environ.get('SLURM_PROCID')!r}, SLURM_LOCALID={environ.get('SLURM_LOCALID')!r}",
                hint="start the ranks with srun (it sets all three), or use torchrun",
            )
        if not environ.get("MASTER_ADDR") or not environ.get("MASTER_PORT"):
            raise TrainingError(
                f"rank {rank} of {tasks} Slurm tasks, but MASTER_ADDR/MASTER_PORT are not set",
                hint="export them in the batch script (synth-lab launch --emit slurm shows how)",
            )
        return rank, tasks, local
    return 0, 1, 0


def launched_as_rank(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process was started as one rank of a job by torchrun or ``srun``."""
    environ = os.environ if environ is None else environ
    return "TORCHELASTIC_RUN_ID" in environ or _slurm_tasks(environ) > 1


def init_process_group(env: DistEnv) -> None:
    """Join the job's process group (NCCL on GPUs, gloo on CPUs)."""
    if env.distributed and not dist.is_initialized():
        backend = "nccl" if env.device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"timeout": timedelta(minutes=30)}
        if env.device.type == "cuda":
            kwargs["device_id"] = env.device
        # Slurm tasks know MASTER_ADDR/PORT from the batch script; the env:// rendezvous
        # reads the rest from these.
        os.environ.setdefault("RANK", str(env.rank))
        os.environ.setdefault("WORLD_SIZE", str(env.world_size))
        dist.init_process_group(backend, rank=env.rank, world_size=env.world_size, **kwargs)


def destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], env: DistEnv) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (one small collective)."""
    if not env.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=env.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def peak_memory(env: DistEnv) -> list[dict[str, Any]]:
    """Peak host memory (RSS) and device memory of every rank, in MiB (collective)."""
    import resource

    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    device = None
    if env.device.type == "cuda":
        device = torch.cuda.max_memory_allocated(env.device) / 2**20
    mine = {"rank": env.rank, "peak_host_mb": round(rss_kib / 1024, 1), "peak_device_mb": device}
    if not env.distributed:
        return [mine]
    every: list[Any] = [None] * env.world_size
    dist.all_gather_object(every, mine)
    return every


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def decay_parameter_names(model: Any) -> set[str]:
    """Trainable parameters that get weight decay: matrices, not biases or norm scales.

    Decided by name and shape on the bare model, before any wrapper: FSDP shards, flat
    parameters and DeepSpeed partitions change shapes, and a rule applied after wrapping puts
    everything in the no-decay group.
    """
    return {
        name
        for name, p in unwrap(model).named_parameters()
        if p.requires_grad
        and p.ndim >= 2
        and not name.endswith("bias")
        and "norm" not in name.rpartition(".")[0].rpartition(".")[2].lower()
    }


def param_groups(model: Any, weight_decay: float, decay: set[str]) -> list[dict[str, Any]]:
    """AdamW groups over ``model`` (possibly wrapped): ``decay`` names first, the rest after."""
    named = [(n, p) for n, p in unwrap(model).named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if n in decay], "weight_decay": weight_decay}]
    rest = [p for n, p in named if n not in decay]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0})
    return groups


def unwrap(model: Any) -> Any:
    """The model under DDP/FSDP/DeepSpeed wrappers."""
    while hasattr(model, "module") and isinstance(model, torch.nn.Module):
        model = model.module
    return model


class Strategy:
    """One process, or DDP across several: every rank holds the whole model."""

    name = "single device"

    def __init__(self, env: DistEnv, config: Any, precision: Any, accumulation: int) -> None:
        self.env = env
        self.config = config
        self.precision = precision
        self.accumulation = accumulation
        use_scaler = precision.use_scaler
        self.scaler = torch.amp.GradScaler(env.device.type) if use_scaler else None
        self.model: Any = None
        self.optimizer: Any = None
        self.scheduler: Any = None

    def setup(
        self, model: Any, make_optimizer: Factory, make_scheduler: Factory
    ) -> tuple[Any, Any, Any]:
        """Wrap ``model`` (:meth:`wrap`); build the optimizer over the wrapped parameters and
        the LR scheduler over the optimizer; returns all three."""
        self.model = self.wrap(model)
        self.optimizer = make_optimizer(self.model)
        self.scheduler = make_scheduler(self.optimizer)
        return self.model, self.optimizer, self.scheduler

    def wrap(self, model: Any) -> Any:
        """The model as this strategy trains it: under DDP when there are several processes."""
        if self.env.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.name = "DDP"
            ids = [self.env.device.index] if self.env.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids)
        return model

    @property
    def bare(self) -> Any:
        return unwrap(self.model)

    def accumulate(self, last: bool) -> contextlib.AbstractContextManager[Any]:
        """Skip the gradient all-reduce on all but the last micro-batch of a step."""
        if last or not self.env.distributed:
            return contextlib.nullcontext()
        return self.model.no_sync()

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def _clip(self, max_norm: float) -> torch.Tensor:
        params = [p for p in self.model.parameters() if p.grad is not None]
        return torch.nn.utils.clip_grad_norm_(params, max_norm)

    def step(self, max_norm: float) -> float:
        """Clip, step the optimizer and the schedule, clear gradients; returns the gradient
        norm before clipping."""
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        norm = self._clip(max_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def model_state(self) -> dict[str, Any] | None:
        """The full state dict on rank 0 (``None`` elsewhere); collective where sharded."""
        return None  # save_pretrained reads the bare model directly

    def save_model(self, folder: Path) -> None:
        """Write weights (or the adapter) as ``save_pretrained`` does; all ranks call it."""
        state = self.model_state()
        if self.env.is_main:
            bare = self.bare
            kwargs = {}
            if state is not None:
                # A gathered state dict holds tied weights as separate copies: keep one, as
                # save_pretrained does for the live model.
                tied = getattr(bare, "all_tied_weights_keys", None) or {}
                drop = {k for k, source in tied.items() if source in state}
                kwargs["state_dict"] = {k: v for k, v in state.items() if k not in drop}
            bare.save_pretrained(folder, safe_serialization=True, **kwargs)

    def optimizer_state(self) -> dict[str, Any] | None:
        return self.optimizer.state_dict() if self.env.is_main else None

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)

    def save_sharded(self, folder: Path) -> None:
        """Write what each rank saves for itself (sharded state); all ranks call it."""

    def load_sharded(self, folder: Path) -> bool:
        """Restore what :meth:`save_sharded` wrote; ``False`` when the folder has none."""
        return False

    def extra_state(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict()} if self.scaler else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


def transformer_block_classes(model: Any) -> set[type]:
    """The classes of the repeated transformer blocks (``_no_split_modules``)."""
    names: set[str] = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or ())
    return {type(m) for m in model.modules() if type(m).__name__ in names}


def make_strategy(config: Any, env: DistEnv, precision: Any, accumulation: int) -> Strategy:
    """The strategy the config asks for.

    Raises:
        MissingDependencyError: DeepSpeed asked for and not installed.
        TrainingError: A combination the local trainer cannot run.
    """
    par = config.parallelism
    if par.use_deepspeed:
        if importlib.util.find_spec("deepspeed") is None:
            raise MissingDependencyError("deepspeed", "DeepSpeed ZeRO (use_deepspeed = true)")
        if env.device.type != "cuda":
            raise TrainingError(
                "DeepSpeed needs GPUs",
                hint="set use_deepspeed = false to train on CPU (DDP or FSDP)",
            )
        from synth_lab.train.zero import DeepSpeedStrategy

        return DeepSpeedStrategy(env, config, precision, accumulation)
    if par.fsdp and env.distributed:
        from synth_lab.train.fsdp import FSDPStrategy

        return FSDPStrategy(env, config, precision, accumulation)
    return Strategy(env, config, precision, accumulation)
