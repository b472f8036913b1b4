"""The learning-rate schedule on resume: built for the resuming call's config at the checkpoint's
step, with the checkpoint's optimizer moments but not its learning rates."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_train_support import config_text, records, shared_cache

torch = pytest.importorskip("torch")

from synth_lab.train import run  # noqa: E402
from synth_lab.train.metrics import TRAIN_LR  # noqa: E402
from synth_lab.train.schedule import build_scheduler, cosine_with_warmup  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with shared_cache(tmp_path_factory) as path:
        yield path


def adamw(lr: float) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    return model, torch.optim.AdamW(model.parameters(), lr=lr)


def test_a_loaded_optimizer_state_keeps_the_new_schedule_and_the_old_moments() -> None:
    model, optimizer = adamw(0.1)
    scheduler = build_scheduler(optimizer, lr=0.1, warmup=2, total_steps=10)
    assert optimizer.param_groups[0]["lr"] == 0.0  # warmup starts at 0
    for _ in range(3):
        model(torch.ones(1, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    saved = optimizer.state_dict()

    # The resumed call doubles the run and halves the learning rate.
    model, optimizer = adamw(0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "scheduler stepped before the optimizer"
        scheduler = build_scheduler(optimizer, lr=0.05, warmup=4, total_steps=20, step=3)
    f = cosine_with_warmup(4, 20)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * f(3))
    optimizer.load_state_dict(saved)
    group = optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(0.05 * f(3)) and group["initial_lr"] == 0.05
    assert saved["param_groups"][0]["lr"] != group["lr"]  # the caller's dict is untouched
    moments = optimizer.state[model.weight]
    assert int(moments["step"]) == 3 and moments["exp_avg"].abs().sum() > 0
    model(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    assert scheduler.last_epoch == 4
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * f(4))


def test_resume_with_a_new_learning_rate_and_length_follows_the_new_schedule(
    tmp_path: Path,
) -> None:
    data = records(24, seed=4)
    out = tmp_path / "run"
    kwargs = {"output_dir": out, "live": False}
    first = run(config_text(hyper="warmup_ratio = 0.2"), data, max_steps=3, **kwargs)
    assert first.status == "succeeded" and first.last_checkpoint == out / "step-000003"

    cfg = config_text(hyper="warmup_ratio = 0.2").replace("2e-3", "1e-3")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = run(cfg, data, max_steps=8, resume=True, **kwargs)
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)]
    assert resumed.summary["start_step"] == 3 and resumed.steps == 8
    f = cosine_with_warmup(math.ceil(8 * 0.2), 8)
    lrs = {p.step: p.value for p in resumed.points if p.name == TRAIN_LR}
    # The rate a step logs is the one it trained with: the schedule's value one step earlier.
    for step in range(4, 9):
        assert lrs[step] == pytest.approx(1e-3 * f(step - 1), rel=1e-9, abs=1e-15)
