"""Dry-run checks of the plan itself: batch against data, truncation, and the local machine.

They return :class:`~synth_lab.errors.Problem` rows that the dry run lists with the others.
None of them imports torch: the GPU count comes from ``CUDA_VISIBLE_DEVICES`` or
``nvidia-smi -L`` (torch is asked only when something already imported it), and the model
is looked up in the Hugging Face cache by file, without loading it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from synth_lab.config import SFTConfig
from synth_lab.errors import Problem


def _at(config: SFTConfig, dotted: str) -> tuple[int | None, int | None]:
    line, col = config.position(dotted)
    return (line, col) if line is not None else (None, None)


def batch_problems(config: SFTConfig, records: int) -> list[Problem]:
    """A warning when one optimizer step needs more records than the dataset holds."""
    batch = config.global_batch
    if not records or batch <= records:
        return []
    line, col = _at(config, "hyperparameters.global_batch")  # else the table's header
    plural = "s" if records != 1 else ""
    return [
        Problem(
            "hyperparameters.global_batch",
            line,
            col,
            f"the global batch ({batch} sequences) is larger than the dataset ({records} "
            f"record{plural}): less than one full optimizer step per epoch",
            "lower per_device_batch or gradient_accumulation_steps, or use more records",
            "warning",
            "batch_exceeds_dataset",
        )
    ]


def truncation_problems(config: SFTConfig, tokens: dict[str, Any] | None) -> list[Problem]:
    """A warning per dry run whose token count found records longer than the sequence."""
    if not tokens or not tokens.get("truncated_records"):
        return []
    cut = tokens["truncated_records"]
    seq = config.hyperparameters.sequence_length
    limit = f"sequence_length = {seq}" if seq else "the sequence length"
    return [
        Problem(
            "",
            None,
            None,
            f"{cut} record(s) are longer than {limit} tokens and will be cut (the longest has "
            f"{tokens['max_tokens']:,} tokens); the cut part is not trained on",
            "raise [hyperparameters].sequence_length, or shorten or drop those records",
            "warning",
            "truncated",
        )
    ]


def visible_gpus() -> int:
    """GPUs this process could use, found without importing torch.

    ``CUDA_VISIBLE_DEVICES`` decides when it is set; else ``nvidia-smi -L`` lists the GPUs.
    When torch is already imported, its own count is the truth and is cheap to ask.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [i for i in env.split(",") if i.strip()]
        return 0 if not ids or ids[0].strip() == "-1" else len(ids)
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines())


def model_problem(config: SFTConfig) -> Problem | None:
    """Where local training would find ``[job].model``; a problem when it could not."""
    from synth_lab.models.tiny import TINY_CHAT_ID

    model = config.job.model
    line, col = _at(config, "job.model")
    if model == TINY_CHAT_ID:
        return None  # built locally on first use
    folder = Path(model).expanduser()
    if folder.is_dir():
        if (folder / "config.json").is_file():
            return None
        return Problem(
            "job.model",
            line,
            col,
            f"model folder {model} has no config.json",
            "point [job].model at a folder written by save_pretrained()",
            code="model_not_found",
        )
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return Problem(
            "job.model",
            line,
            col,
            "local training needs the 'train' extra (torch, transformers, peft)",
            "run: pip install 'synth-lab[train]'",
            code="missing_dependency",
        )
    try:
        cached = try_to_load_from_cache(model, "config.json")
    except ValueError:  # not a valid repo id either
        cached = None
    if isinstance(cached, str):
        return None
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    return Problem(
        "job.model",
        line,
        col,
        f"model '{model}' is not in the local Hugging Face cache"
        + (" and HF_HUB_OFFLINE is set" if offline else "; local training will download it"),
        f"download it first (huggingface-cli download {model}), set [job].model to a local "
        f"folder, or use {TINY_CHAT_ID}",
        "error" if offline else "warning",
        "model_not_found",
    )


def local_problems(config: SFTConfig, nproc: int | None = None) -> list[Problem]:
    """What would stop or change local training on this machine."""
    out = []
    missing = model_problem(config)
    if missing is not None:
        out.append(missing)
    wanted = nproc or config.world_size
    gpus = visible_gpus()
    if wanted > 1 and wanted > gpus and not (nproc and not gpus):
        line, col = _at(config, "compute.gpu_count")
        runs = f"{gpus} process(es), one per GPU" if gpus else "one process on the CPU"
        out.append(
            Problem(
                "compute.gpu_count",
                line,
                col,
                f"the config asks for {wanted} GPUs but this machine has {gpus or 'none'}: "
                f"local training would run {runs}",
                f"set gpu_count = {max(gpus, 1)} under [compute] for a local run (--nproc N "
                "starts N CPU workers), or submit the job remotely",
                "warning",
                "too_many_gpus",
            )
        )
    return out
