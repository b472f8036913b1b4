"""``synth_lab.train.run``: train locally, in this process or in several, and return a result."""

from __future__ import annotations

import json
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from synth_lab._deps import require
from synth_lab._files import atomic_write_text
from synth_lab._notebook import in_notebook
from synth_lab.config import SFTConfig, load_config
from synth_lab.errors import DatasetError, TrainingError
from synth_lab.status import Status
from synth_lab.train.metrics import JSONLLogger, LoggerGroup, MemoryLogger, as_logger, read_jsonl
from synth_lab.train.result import EVAL_FILE, TrainResult
from synth_lab.train.spec import StopSignal, TrainSpec


def run(
    config: SFTConfig | str | os.PathLike[str],
    dataset: Any = None,
    *,
    output_dir: str | os.PathLike[str] = "runs/sft",
    max_steps: int | None = None,
    resume: bool | str | os.PathLike[str] = False,
    nproc: int | None = None,
    logger: Any = None,
    live: bool | None = None,
    validation_dataset: Any = None,
    examples: int | None = None,
    seed: int = 0,
    validation_split: float = 0.0,
    save_steps: int | None = None,
    keep_checkpoints: int = 2,
    resume_command: str | None = None,
    evaluation: Any = None,
) -> TrainResult:
    """Finetune the config's model on chat data, here, and return the result.

    Args:
        config: An :class:`~synth_lab.config.SFTConfig`, a TOML path, or TOML text.
        dataset: Training data: a JSONL path, a :class:`~synth_lab.data.dataset.Dataset`, or
            a list of chat records (default: ``[job].data`` of the config).
        output_dir: Folder for checkpoints (``step-000123/``), ``metrics.jsonl`` and ``final/``.
        max_steps: Optimizer steps to run; overrides ``n_epochs``.
        resume: ``True`` continues from the newest checkpoint in ``output_dir`` (from scratch
            when there is none); a checkpoint folder continues from that one.
        nproc: Processes to train with. Default: the config's ``gpu_count`` on a machine with
            that many GPUs, else 1. On a CPU, ``nproc > 1`` runs DDP/FSDP over gloo.
        logger: Extra metric logger(s): objects with ``log(points)``, or callables taking one
            point; raising ``KeyboardInterrupt`` from one stops training with a checkpoint.
        live: Show a live progress view (default: when running in a notebook).
        validation_dataset: Validation data (default: ``[data].validation_path``).
        examples: Use only the first N training records.
        seed: Seed for initialisation, data order and dropout.
        validation_split: Hold out this share of the training data when there is no
            validation data.
        save_steps: Checkpoint every N steps (default: at every evaluation, else 10 per run).
        keep_checkpoints: Recent checkpoints to keep (the best one is always kept; 0 = all).
        resume_command: What the live view tells the user to run to continue an interrupted
            run (default: this call with ``resume=True``).
        evaluation: Score the trained model's generations on the validation data at the end
            (metric ``eval.score``, ``result.eval_score``): a scorer (``"exact"``,
            ``"contains"``, ``"regex:PATTERN"``, a callable ``(reply, reference) -> float``)
            or an :class:`~synth_lab.train.evaluate.Evaluation`.

    Returns:
        A :class:`TrainResult` with status ``succeeded`` or ``interrupted``.

    Raises:
        ConfigError, DatasetError: Bad config or data, before anything is trained.
        TrainingError: Training failed (in a worker: with the worker's traceback).
        MissingDependencyError: No torch or transformers (the ``train`` extra), QLoRA without
            bitsandbytes, DeepSpeed without deepspeed.
    """
    require("torch", "Local training", "train")
    require("transformers", "Local training", "train")
    config = load_config(config)
    if max_steps is not None and max_steps < 1:
        raise TrainingError(f"max_steps must be at least 1, got {max_steps}")
    out = Path(output_dir).expanduser().resolve()
    train_data = _training_data(config, dataset, examples)
    validation = validation_dataset if validation_dataset is not None else config.validation_path
    from synth_lab.train.distributed import launched_as_rank

    as_rank = launched_as_rank()  # one rank of a torchrun / srun job
    if as_rank and nproc not in (None, 1):
        raise TrainingError(
            f"nproc={nproc} inside a job started by torchrun or srun",
            hint="the launcher starts the processes: leave nproc out (--nproc) and set "
            "--nproc_per_node / --ntasks instead",
        )
    world = 1 if as_rank else _world_size(config, nproc)
    if evaluation is not None:
        from synth_lab.train.evaluate import Evaluation

        evaluation = Evaluation.coerce(evaluation)
        if evaluation.data is None and validation is None:
            raise TrainingError(
                "evaluation needs validation data",
                hint="pass validation_dataset=..., set [data].validation_path, or "
                "Evaluation(scorer, data=...)",
            )

    from synth_lab.train.loop import _check_supported
    from synth_lab.train.model import resolve_model_path

    _check_supported(config, launched=as_rank)
    resolve_model_path(config.job.model)  # a missing model fails here, not in N workers

    memory = MemoryLogger()
    extra = as_logger(logger)
    view = None
    history = out / "metrics.jsonl"
    prior = read_jsonl(history) if resume and history.is_file() else []
    if live or (live is None and in_notebook()):
        from synth_lab.train.live import LiveView

        view = LiveView(history=prior)
    spec_args = {
        "config_toml": config.to_toml(),
        "output_dir": str(out),
        "validation_split": validation_split,
        "max_steps": max_steps,
        "resume": os.fspath(resume) if isinstance(resume, (str, os.PathLike)) else bool(resume),
        "seed": seed,
        "save_steps": save_steps,
        "keep_checkpoints": keep_checkpoints,
    }
    group = LoggerGroup([memory, extra, view])
    began = time.monotonic()
    try:
        if as_rank:
            summary = _run_as_rank(spec_args, train_data, validation, group, out)
        elif world == 1:
            summary = _run_here(spec_args, train_data, validation, group, out)
        else:
            summary = _run_workers(spec_args, train_data, validation, group, world)
    except BaseException:
        group.finish(Status.FAILED)
        raise
    finally:
        group.close()
    summary.setdefault("seconds", time.monotonic() - began)  # wall time, for --json
    if view is not None and Status.parse(summary.get("status")) is Status.INTERRUPTED:
        view.progress.step = max(view.progress.step, int(summary.get("steps") or 0))
        view.annotate(_resume_note(summary, out, resume_command))
    start = summary.get("start_step", 0)
    points = [p for p in prior if p.step <= start] + memory.points
    result = TrainResult.from_summary(summary, points)
    # One rank of a torchrun/srun job: rank 0 evaluates (and writes the metrics) for all.
    if evaluation is not None and result.status is Status.SUCCEEDED and not summary.get("rank"):
        _evaluate(result, evaluation, validation, out)
    return result


def _evaluate(result: TrainResult, evaluation: Any, validation: Any, out: Path) -> None:
    """The evaluation hook: score generations, record ``eval.score`` with the run's metrics."""
    from synth_lab.train.data import load_records
    from synth_lab.train.evaluate import evaluate
    from synth_lab.train.metrics import EVAL_SCORE, MetricPoint

    data = evaluation.data if evaluation.data is not None else validation
    records = load_records(data, what="evaluation")
    model, tokenizer = result.load()
    report = evaluate(
        model,
        tokenizer,
        records,
        evaluation.scorer,
        max_new_tokens=evaluation.max_new_tokens,
        limit=evaluation.limit,
    )
    point = MetricPoint(EVAL_SCORE, report.score, step=result.steps, phase="validation")
    jsonl = JSONLLogger(out / "metrics.jsonl")
    try:
        jsonl.log([point])
    finally:
        jsonl.close()
    result.points.append(point)
    result.summary["eval"] = {"records": len(report.rows), "rows": report.rows}
    # Kept on disk too: a rerun of a finished sweep reads the generations back.
    atomic_write_text(out / EVAL_FILE, json.dumps(result.summary["eval"], default=str))


def _resume_note(summary: dict, out: Path, command: str | None) -> str:
    checkpoint = summary.get("last_checkpoint")
    saved = f"checkpoint saved: {checkpoint}" if checkpoint else "no checkpoint was saved yet"
    command = command or f"synth_lab.train.run(..., output_dir={os.fspath(out)!r}, resume=True)"
    return f"Interrupted at step {summary.get('steps')}; {saved}\nto continue: {command}"


def _run_here(
    spec_args: dict[str, Any], train_data: Any, validation: Any, group: Any, out: Path
) -> dict:
    import torch

    from synth_lab.train.distributed import DistEnv
    from synth_lab.train.loop import train

    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    spec = TrainSpec(dataset=train_data, validation=validation, **spec_args)
    jsonl = JSONLLogger(out / "metrics.jsonl")
    try:
        return train(spec, DistEnv(device=device), LoggerGroup([jsonl, group]), StopSignal())
    except BaseException as exc:
        _drop_locals(exc)
        raise
    finally:
        jsonl.close()
        release_memory()


def _run_as_rank(
    spec_args: dict[str, Any], train_data: Any, validation: Any, group: Any, out: Path
) -> dict:
    """This process is one rank of a job torchrun or srun started: join it and train our
    share; rank 0 alone writes ``metrics.jsonl`` (the loop ignores loggers elsewhere)."""
    from synth_lab.train.distributed import DistEnv, destroy_process_group, init_process_group
    from synth_lab.train.loop import train

    env = DistEnv.from_environ()
    spec = TrainSpec(dataset=train_data, validation=validation, **spec_args)
    jsonl = JSONLLogger(out / "metrics.jsonl") if env.is_main else None
    init_process_group(env)
    try:
        summary = train(spec, env, LoggerGroup([jsonl, group]), StopSignal())
        return {**summary, "rank": env.rank}
    except BaseException as exc:
        _drop_locals(exc)
        raise
    finally:
        if jsonl is not None:
            jsonl.close()
        destroy_process_group()
        release_memory()


def _drop_locals(exc: BaseException) -> None:
    """Free what the failed run's frames hold (model, optimizer state, batches).

    A notebook keeps the last traceback (``sys.last_traceback``, ``%debug``), and with it every
    frame's locals: without this, a failed run would pin its model in GPU memory until the
    next error replaces the traceback.
    """
    traceback.clear_frames(exc.__traceback__)


def release_memory() -> None:
    """Return cached GPU memory to the driver once nothing refers to the run's tensors."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _run_workers(
    spec_args: dict[str, Any], train_data: Any, validation: Any, group: Any, world: int
) -> dict:
    """Check the data here (errors read better than a worker's traceback), then launch."""
    import orjson
    import torch

    from synth_lab.train.data import load_records
    from synth_lab.train.launcher import launch

    with tempfile.TemporaryDirectory(prefix="synth-lab-data-") as tmp:

        def to_file(data: Any, name: str, what: str) -> str:
            records = load_records(data, what=what)
            path = Path(tmp) / name
            path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
            return str(path)

        spec = TrainSpec(
            dataset=to_file(train_data, "train.jsonl", "training"),
            validation=to_file(validation, "val.jsonl", "validation") if validation else None,
            **spec_args,
        )
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
        return launch(spec, world, group, device_type=device_type)


def _training_data(config: SFTConfig, dataset: Any, examples: int | None) -> Any:
    data = dataset if dataset is not None else config.dataset_path
    if data is None:
        raise DatasetError(
            "no training data given",
            hint="pass dataset=... (path, Dataset or records) or set [job].data in the config",
        )
    if examples is None:
        return data
    from synth_lab.data.examples import check_examples, first_examples

    examples = check_examples(examples, "examples")
    if isinstance(data, (str, os.PathLike)):
        with first_examples(data, examples) as subset:
            from synth_lab.train.data import load_records

            return load_records(subset)
    return list(data)[:examples]


def _world_size(config: SFTConfig, nproc: int | None) -> int:
    if nproc is not None:
        if nproc < 1:
            raise TrainingError(f"nproc must be at least 1, got {nproc}")
        import torch

        if torch.cuda.is_available() and nproc > torch.cuda.device_count():
            raise TrainingError(
                f"nproc={nproc} but this machine has {torch.cuda.device_count()} GPU(s)",
                hint="lower nproc, or submit the job remotely",
            )
        return nproc
    if config.world_size > 1:
        import torch

        if torch.cuda.is_available():
            return min(config.world_size, torch.cuda.device_count())
    return 1
