"""DeepSpeed wiring, with a stand-in for the ``deepspeed`` package (it needs GPUs and a CUDA
build): the engine's optimizer is a wrapper that is not a ``torch.optim.Optimizer``, as ZeRO's
are, so a torch LR scheduler can only be built over the optimizer inside it."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from synth_lab.config import load_config  # noqa: E402
from synth_lab.train.distributed import DistEnv  # noqa: E402
from synth_lab.train.model import Precision  # noqa: E402
from synth_lab.train.zero import DeepSpeedStrategy  # noqa: E402


class ZeroOptimizerStandIn:
    """Like DeepSpeed's ZeRO optimizers: holds the torch optimizer, is not one."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.param_groups = optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)


class EngineStandIn(torch.nn.Module):
    """What ``deepspeed.initialize`` returns, reduced to what the strategy calls."""

    def __init__(self, module: torch.nn.Module, optimizer: Any, scheduler: Any, cfg: dict) -> None:
        super().__init__()
        self.module, self.optimizer, self.lr_scheduler, self.config = (
            module,
            optimizer,
            scheduler,
            cfg,
        )
        self.micro_steps = 0

    def backward(self, loss: torch.Tensor) -> None:
        (loss / self.config["gradient_accumulation_steps"]).backward()

    def step(self) -> None:  # DeepSpeed steps optimizer and scheduler at the boundary
        self.micro_steps += 1
        if self.micro_steps % self.config["gradient_accumulation_steps"] == 0:
            self.optimizer.optimizer.step()
            self.lr_scheduler.step()
            self.optimizer.zero_grad()

    def get_global_grad_norm(self) -> float:
        return 0.5


def initialize(*, model: Any, optimizer: Any, lr_scheduler: Any = None, config: dict) -> tuple:
    # DeepSpeed's contract: a callable lr_scheduler is called with the torch optimizer.
    scheduler = lr_scheduler(optimizer) if callable(lr_scheduler) else lr_scheduler
    wrapper = ZeroOptimizerStandIn(optimizer)
    return EngineStandIn(model, wrapper, scheduler, config), wrapper, None, scheduler


@pytest.fixture
def deepspeed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "deepspeed", types.SimpleNamespace(initialize=initialize))


def test_the_schedule_is_built_over_the_torch_optimizer_and_stepped_by_the_engine(
    deepspeed: None,
) -> None:
    text = '[job]\nmodel = "m"\n[hyperparameters.parallelism]\nuse_deepspeed = true\n'
    config = load_config(text)
    strategy = DeepSpeedStrategy(DistEnv(), config, Precision("fp32", None, False, "t"), 2)
    model = torch.nn.Linear(4, 1)

    def make_scheduler(opt: Any) -> Any:
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))

    _engine, wrapper, scheduler = strategy.setup(
        model, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), make_scheduler
    )
    # One default stage: what the config reports is what the trainer runs.
    assert strategy.name == config.strategy == "DeepSpeed ZeRO-2"
    assert not isinstance(wrapper, torch.optim.Optimizer)
    assert isinstance(scheduler.optimizer, torch.optim.Optimizer)
    before = model.weight.detach().clone()
    for _ in range(2):  # one optimizer step of two micro-batches
        strategy.backward(model(torch.ones(1, 4)).sum())
    assert strategy.step(1.0) == 0.5
    assert not torch.equal(model.weight, before)
    assert scheduler.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
