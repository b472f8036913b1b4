"""Checkpoints: ``output_dir/step-000123/``, written atomically, found again on resume.

A checkpoint holds the weights (or the LoRA adapter) and tokenizer, so it loads on its own with
``from_pretrained``; plus the optimizer state (``optimizer.pt``; under FSDP an ``optimizer/``
folder of per-rank shards written with ``torch.distributed.checkpoint``), ``scheduler.pt``
(the gradient scaler, and the schedule for readers; a resume rebuilds the schedule from the
step), one ``rng-rank{r}.pt`` per process, ``trainer_state.json`` (step, data position, best metric)
and ``config.toml``. Everything is written into a hidden ``.step-000123.partial`` folder and
renamed into place, so a folder named ``step-*`` is always complete; an interrupted save leaves
only the hidden folder, which the next save or resume removes.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from synth_lab._files import atomic_write_text
from synth_lab.errors import TrainingError
from synth_lab.train.distributed import DistEnv, Strategy, barrier
from synth_lab.train.model import quiet_progress

STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^step-(\d{6,})$")
_PARTIAL = re.compile(r"^\.step-\d{6,}\.partial$")
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "adapter_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "adapter_model.safetensors",
)


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def list_checkpoints(output_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _NAME.match(child.name)
        if match and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str | os.PathLike[str]) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def resume_point(resume: bool | str, output_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint a run continues from: ``resume`` names one, or ``True`` means the latest
    in ``output_dir`` (``None`` when nothing was saved yet: start from scratch).

    Raises:
        TrainingError: ``resume`` names a folder that is not a checkpoint.
    """
    if not resume:
        return None
    if isinstance(resume, str):
        path = Path(resume)
        if not (path / STATE_FILE).is_file():
            raise TrainingError(f"{path} is not a checkpoint", hint="pass a step-NNNNNN folder")
        return path
    return latest_checkpoint(output_dir)


def remove_partial(output_dir: str | os.PathLike[str]) -> None:
    """Delete what an interrupted save left behind."""
    root = Path(output_dir)
    if root.is_dir():
        for child in root.iterdir():
            if _PARTIAL.match(child.name):
                shutil.rmtree(child, ignore_errors=True)


def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(
    output_dir: str | os.PathLike[str],
    step: int,
    *,
    strategy: Strategy,
    tokenizer: Any,
    scheduler: Any,
    state: dict[str, Any],
    config_toml: str,
) -> Path:
    """Write ``step-{step}/`` atomically; every rank calls this (saving may be collective).

    Returns:
        The checkpoint folder.
    """
    env: DistEnv = strategy.env
    root = Path(output_dir)
    final = root / checkpoint_name(step)
    tmp = root / f".{checkpoint_name(step)}.partial"
    if env.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(env)
    try:
        with quiet_progress():
            strategy.save_model(tmp)  # collective under FSDP
        optimizer = strategy.optimizer_state()  # collective under FSDP
        strategy.save_sharded(tmp)  # collective: every rank writes its own shards
        torch.save(rng_state(env.device), tmp / f"rng-rank{env.rank}.pt")
        if env.is_main:
            if optimizer is not None:
                torch.save(optimizer, tmp / "optimizer.pt")
            torch.save(
                {"scheduler": scheduler.state_dict(), **strategy.extra_state()},
                tmp / "scheduler.pt",
            )
            tokenizer.save_pretrained(tmp)
            atomic_write_text(tmp / "config.toml", config_toml)
            # The state file goes last: list_checkpoints only trusts folders that have it.
            atomic_write_text(tmp / STATE_FILE, json.dumps(state, indent=2))
        barrier(env)
        if env.is_main:
            if final.exists():  # the same step saved again after a resume
                shutil.rmtree(final)
            os.replace(tmp, final)
        barrier(env)
    except BaseException:
        if env.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_state(checkpoint: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads((Path(checkpoint) / STATE_FILE).read_text(encoding="utf-8"))


def load_training_state(checkpoint: str | os.PathLike[str], *, strategy: Strategy) -> None:
    """Restore the optimizer, the gradient scaler and this rank's RNG (weights were loaded
    with the model).

    The saved scheduler is not loaded: the schedule is built for the resuming call's config
    at the checkpoint's step (``schedule.build_scheduler``).
    """
    path = Path(checkpoint)
    env = strategy.env
    if not strategy.load_sharded(path) and (path / "optimizer.pt").is_file():
        # To host memory first: the optimizer moves each state to its parameter's device, so
        # the device never holds the loaded copy and the live one at once.
        optimizer = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)
        strategy.load_optimizer_state(optimizer)
    extra = torch.load(path / "scheduler.pt", weights_only=False)
    extra.pop("scheduler", None)
    strategy.load_extra_state(extra)
    rng = path / f"rng-rank{env.rank}.pt"
    if rng.is_file():  # absent when resuming with more processes than were saved
        set_rng_state(torch.load(rng, weights_only=False), env.device)


def prune(output_dir: str | os.PathLike[str], keep: int, protect: Path | None) -> None:
    """Keep the newest ``keep`` checkpoints, and ``protect`` (the best) whatever its age."""
    if keep <= 0:
        return
    found = list_checkpoints(output_dir)
    for path in found[:-keep]:
        if protect is None or path.resolve() != protect.resolve():
            shutil.rmtree(path, ignore_errors=True)


def copy_model_files(source: Path, target: Path) -> None:
    """Copy a checkpoint's weights/adapter and tokenizer (not optimizer or RNG) to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    skip = {"optimizer.pt", "optimizer", "scheduler.pt", STATE_FILE, "config.toml", "deepspeed"}
    for item in source.iterdir():
        if item.name in skip or item.name.startswith("rng-rank"):
            continue
        if item.is_dir():
            shutil.copytree(item, target / item.name, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target / item.name)
