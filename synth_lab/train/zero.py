"""DeepSpeed ZeRO as a :class:`~synth_lab.train.distributed.Strategy`; the engine owns
accumulation, clipping and the optimizer step."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from synth_lab.config.model import DEFAULT_ZERO_STAGE
from synth_lab.train.distributed import Factory, Strategy


class DeepSpeedStrategy(Strategy):
    """DeepSpeed ZeRO (stage from ``deepspeed_stage``)."""

    def setup(
        self, model: Any, make_optimizer: Factory, make_scheduler: Factory
    ) -> tuple[Any, Any, Any]:
        # The engine builds the optimizer and the schedule itself, so the whole setup is its.
        import deepspeed

        par = self.config.parallelism
        stage = par.deepspeed_stage if par.deepspeed_stage is not None else DEFAULT_ZERO_STAGE
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
        # The engine wraps the optimizer in one of its own (not a torch Optimizer, which a
        # torch scheduler needs): hand it the scheduler's constructor, so the schedule is
        # built over the torch optimizer inside and stepped by the engine at each boundary.
        engine, optimizer, _, scheduler = deepspeed.initialize(
            model=model,
            optimizer=make_optimizer(model),
            lr_scheduler=make_scheduler,
            config=ds_config,
        )
        self.model, self.optimizer, self.scheduler = engine, optimizer, scheduler
        return engine, optimizer, scheduler

    def accumulate(self, last: bool) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()  # the engine knows the accumulation boundary

    def backward(self, loss: torch.Tensor) -> None:
        # The engine divides by its accumulation steps; our loss is already normalised.
        self.model.backward(loss * self.accumulation)
        self.model.step()  # optimizer and scheduler step only at the accumulation boundary

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
        return None  # saved by the engine itself, see save_sharded

    def save_sharded(self, folder: Path) -> None:
        self.model.save_checkpoint(str(folder / "deepspeed"), tag="state")

    def load_sharded(self, folder: Path) -> bool:
        if not (folder / "deepspeed").is_dir():
            return False
        # The schedule was built for this call at the checkpoint's step (schedule.py); the
        # saved one would bring back the earlier call's learning rate and length.
        self.model.load_checkpoint(
            str(folder / "deepspeed"), tag="state", load_lr_scheduler_states=False
        )
        return True
