"""Inside a training process: the process group, and how the model is shared between ranks.

One :class:`Strategy` per way of sharing: a single process or DDP (:class:`Strategy`), FSDP
(:class:`FSDPStrategy`) and DeepSpeed ZeRO (:class:`DeepSpeedStrategy`). The loop only calls
``accumulate``, ``backward``, ``step`` and the save/load helpers, so it reads the same for all.
Starting the processes is ``launcher.py``'s job.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from synth_lab.errors import MissingDependencyError, TrainingError


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
    def from_environ(cls) -> DistEnv:
        """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (set by the launcher or torchrun)."""
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
        if torch.cuda.is_available() and os.environ.get("SYNTH_LAB_DEVICE", "") != "cpu":
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        else:
            device = torch.device("cpu")
        return cls(rank, world, local, device)


def init_process_group(env: DistEnv) -> None:
    """Join the job's process group (NCCL on GPUs, gloo on CPUs)."""
    if env.distributed and not dist.is_initialized():
        backend = "nccl" if env.device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"timeout": timedelta(minutes=30)}
        if env.device.type == "cuda":
            kwargs["device_id"] = env.device
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


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay matrices, not biases or norm scales (nanoGPT's rule: ``ndim >= 2``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    rest = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}]
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

    def setup(self, model: Any, make_optimizer: Callable[[Any], Any]) -> tuple[Any, Any]:
        """Wrap ``model`` and build the optimizer over the wrapped parameters."""
        if self.env.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.name = "DDP"
            ids = [self.env.device.index] if self.env.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids)
        self.model, self.optimizer = model, make_optimizer(model)
        return self.model, self.optimizer

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
        """Clip, step the optimizer, clear gradients; returns the gradient norm before clipping."""
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        norm = self._clip(max_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
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

    def extra_state(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict()} if self.scaler else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


class FSDPStrategy(Strategy):
    """PyTorch FSDP: parameters, gradients and optimizer state sharded across ranks."""

    def setup(self, model: Any, make_optimizer: Callable[[Any], Any]) -> tuple[Any, Any]:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp import ShardingStrategy
        from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler
        from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

        par = self.config.parallelism
        strategy = (par.fsdp_sharding_strategy or "full_shard").upper()
        self.name = f"FSDP ({strategy.lower()})"
        policy = None
        if (par.fsdp_auto_wrap_policy or "transformer_block") == "transformer_block":
            blocks = transformer_block_classes(model)
            if blocks:
                policy = functools.partial(
                    transformer_auto_wrap_policy, transformer_layer_cls=blocks
                )
        if self.scaler is not None:
            self.scaler = ShardedGradScaler(self.env.device.type)
        self.model = FSDP(
            model,
            sharding_strategy=ShardingStrategy[strategy],
            auto_wrap_policy=policy,
            # LoRA mixes frozen and trainable weights in one block: that needs orig params.
            use_orig_params=par.fsdp_use_orig_params is not False,
            device_id=self.env.device,
            sync_module_states=False,  # every rank loaded the same weights from disk
            limit_all_gathers=True,
        )
        self.optimizer = make_optimizer(self.model)
        return self.model, self.optimizer

    def _clip(self, max_norm: float) -> torch.Tensor:
        return self.model.clip_grad_norm_(max_norm)

    @contextlib.contextmanager
    def _full_state(self) -> Iterator[None]:
        from torch.distributed.fsdp import (
            FullOptimStateDictConfig,
            FullStateDictConfig,
            StateDictType,
        )
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        # Offloading (and rank-0-only gathering) crashes when the shards already live on the
        # CPU, and buys nothing there; on GPUs it keeps the full copy out of device memory.
        gpu = self.env.device.type == "cuda"
        with warnings.catch_warnings():
            # state_dict_type is deprecated in favour of torch.distributed.checkpoint, which
            # writes sharded files; we want plain save_pretrained folders.
            warnings.simplefilter("ignore", FutureWarning)
            ctx = FSDP.state_dict_type(
                self.model,
                StateDictType.FULL_STATE_DICT,
                FullStateDictConfig(offload_to_cpu=gpu, rank0_only=gpu),
                FullOptimStateDictConfig(offload_to_cpu=gpu, rank0_only=False),
            )
            with ctx:
                yield

    def model_state(self) -> dict[str, Any] | None:
        with self._full_state():
            state = self.model.state_dict()
        return state if self.env.is_main else None

    def save_model(self, folder: Path) -> None:
        bare = self.bare
        if not hasattr(bare, "peft_config"):
            super().save_model(folder)
            return
        # peft picks adapter weights by module name, and FSDP renames modules: select them
        # from the gathered (clean-named) state dict here, in peft's file layout.
        state = self.model_state()
        if self.env.is_main:
            import dataclasses

            from safetensors.torch import save_file

            name = getattr(bare, "active_adapter", "default")
            adapter = {
                k.replace(f".{name}.", "."): v.contiguous()
                for k, v in (state or {}).items()
                if "lora_" in k
            }
            folder.mkdir(parents=True, exist_ok=True)
            save_file(adapter, str(folder / "adapter_model.safetensors"), {"format": "pt"})
            config = dataclasses.replace(bare.peft_config[name], inference_mode=True)
            config.save_pretrained(str(folder))

    def optimizer_state(self) -> dict[str, Any] | None:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        with self._full_state():
            state = FSDP.optim_state_dict(self.model, self.optimizer)
        return state if self.env.is_main else None

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        with self._full_state():
            flat = FSDP.optim_state_dict_to_load(self.model, self.optimizer, state)
        self.optimizer.load_state_dict(flat)


class DeepSpeedStrategy(Strategy):
    """DeepSpeed ZeRO (stage from ``deepspeed_stage``); the engine owns accumulation."""

    def setup(self, model: Any, make_optimizer: Callable[[Any], Any]) -> tuple[Any, Any]:
        import deepspeed

        par = self.config.parallelism
        stage = par.deepspeed_stage if par.deepspeed_stage is not None else 2
        self.name = f"DeepSpeed ZeRO-{stage}"
        precision = self.precision.name
        ds_config = {
            "train_micro_batch_size_per_gpu": 1,
            "gradient_accumulation_steps": self.accumulation,
            "gradient_clipping": 1.0,
            "zero_optimization": {"stage": stage},
            "bf16": {"enabled": precision == "bf16"},
            "fp16": {"enabled": precision == "fp16"},
            "steps_per_print": 10**9,
        }
        optimizer = make_optimizer(model)
        engine, optimizer, _, _ = deepspeed.initialize(
            model=model, optimizer=optimizer, config=ds_config
        )
        self.model, self.optimizer = engine, optimizer
        return engine, optimizer

    def accumulate(self, last: bool) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()  # the engine knows the accumulation boundary

    def backward(self, loss: torch.Tensor) -> None:
        # The engine divides by its accumulation steps; our loss is already normalised.
        self.model.backward(loss * self.accumulation)
        self.model.step()  # an optimizer step only at the accumulation boundary

    def step(self, max_norm: float) -> float:
        norm = self.model.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def model_state(self) -> dict[str, Any] | None:
        stage = self.model.zero_optimization_stage()
        if stage == 3:
            state = self.model._zero3_consolidated_16bit_state_dict()
        else:
            state = self.bare.state_dict()
        return state if self.env.is_main else None

    def optimizer_state(self) -> dict[str, Any] | None:
        return None  # saved by the engine itself, see save_engine

    def save_engine(self, folder: Path) -> None:
        self.model.save_checkpoint(str(folder / "deepspeed"), tag="state")

    def load_engine(self, folder: Path) -> None:
        self.model.load_checkpoint(str(folder / "deepspeed"), tag="state")


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
        return DeepSpeedStrategy(env, config, precision, accumulation)
    if par.fsdp and env.distributed:
        if config.train_mode == "qlora":
            raise TrainingError(
                "QLoRA with FSDP is not supported by the local trainer",
                hint="set fsdp = false (QLoRA then runs one copy per process with DDP)",
            )
        return FSDPStrategy(env, config, precision, accumulation)
    return Strategy(env, config, precision, accumulation)
