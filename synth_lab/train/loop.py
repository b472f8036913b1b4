"""The training loop of one process, top to bottom: setup, loop, evaluate, checkpoint, export.

Run by :func:`synth_lab.train.run` directly (one process) or by every worker of a multi-process
job (``worker.py``). Rank 0 owns logging and the files that are not per-rank.
"""

from __future__ import annotations

import importlib.util
import math
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synth_lab.config import load_config, schema
from synth_lab.errors import MissingDependencyError, TrainingError
from synth_lab.status import Status
from synth_lab.train import checkpoint as ckpt
from synth_lab.train.data import StepPlan, encode_examples, load_records, pack, pack_rows
from synth_lab.train.distributed import (
    DistEnv,
    all_reduce_sum,
    decay_parameter_names,
    make_strategy,
    param_groups,
    peak_memory,
)
from synth_lab.train.export import write_final
from synth_lab.train.metrics import (
    TRAIN_GRAD_NORM,
    TRAIN_LOSS,
    TRAIN_LR,
    TRAIN_TOKENS,
    TRAIN_TOKENS_PER_SECOND,
    VAL_LOSS,
    BaseLogger,
    MetricPoint,
    RunInfo,
)
from synth_lab.train.model import choose_precision, count_parameters, load_model, token_loss_sum
from synth_lab.train.spec import StopSignal, TrainSpec

MAX_GRAD_NORM = 1.0
DEFAULT_LR = schema.DEFAULT_LEARNING_RATE
_METRIC_ALIASES = {"eval_loss": VAL_LOSS, "loss": VAL_LOSS, "val_loss": VAL_LOSS}


def cosine_with_warmup(warmup: int, total: int) -> Any:
    """LR multiplier: linear warmup over ``warmup`` steps, then cosine decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


@dataclass
class Best:
    """The best evaluation so far, by the configured metric."""

    metric: str
    greater_is_better: bool
    value: float | None = None
    step: int | None = None

    def update(self, value: float, step: int) -> bool:
        better = self.value is None or (
            value > self.value if self.greater_is_better else value < self.value
        )
        if better:
            self.value, self.step = value, step
        return better


def train(
    spec: TrainSpec, env: DistEnv, logger: Any = None, stop: StopSignal | None = None
) -> dict[str, Any]:
    """Train as ``spec`` says; returns a summary (rank 0's is the one that matters)."""
    logger = logger if logger is not None and env.is_main else BaseLogger()
    stop = stop or StopSignal()
    out = Path(spec.output_dir)
    config = load_config(spec.config_toml)
    hp, mode = config.hyperparameters, config.train_mode
    _check_supported(config)

    # -- where to start: a fresh model, or a checkpoint's weights and state
    resume_from = _resume_checkpoint(spec, out)
    state = ckpt.read_state(resume_from) if resume_from else {}
    torch.manual_seed(spec.seed)
    random.seed(spec.seed)
    precision = choose_precision(config.precision, env.device)
    adapter = mode in ("lora", "qlora")
    # Under FSDP only rank 0 reads the weights (into host memory); the others build the model
    # on the meta device and receive their shards from rank 0 once it is sharded.
    shard_on_load = bool(config.parallelism.fsdp) and env.distributed and mode != "qlora"
    model, tokenizer = load_model(
        config,
        device=torch.device("cpu") if shard_on_load else env.device,
        empty=shard_on_load and not env.is_main,
        precision=precision,
        adapter_from=resume_from if adapter else None,
        weights_from=resume_from if not adapter else None,
    )
    trainable_params, total_params = count_parameters(model)
    name = "is_activation_checkpointing"  # transformers 5; older versions say "gradient"
    checkpointing = bool(
        getattr(model, name if hasattr(model, name) else "is_gradient_checkpointing", False)
    )

    # -- data: encode, hold out validation, plan every step
    max_positions = getattr(model.config, "max_position_embeddings", None) or 2048
    seq_len = hp.sequence_length or min(schema.DEFAULT_SEQUENCE_LENGTH, max_positions)
    records = load_records(spec.dataset)
    val_records = load_records(spec.validation, what="validation") if spec.validation else None
    if spec.validation_split and not val_records:
        from synth_lab.data.dataset import Dataset

        train_ds, val_ds = Dataset.from_records(records).split(spec.validation_split, spec.seed)
        records, val_records = list(train_ds), list(val_ds)
    examples, enc_stats = encode_examples(tokenizer, records, seq_len)
    validating = bool(val_records) and config.validation.enabled
    val_examples = encode_examples(tokenizer, val_records, seq_len)[0] if validating else []
    per_device = min(config.per_device_batch, config.global_batch)
    accumulation = max(1, math.ceil(config.global_batch / (per_device * env.world_size)))
    plan = StepPlan(
        [e.n_tokens for e in examples],
        [e.n_trained for e in examples],
        global_batch=config.global_batch,
        world_size=env.world_size,
        accumulation=accumulation,
        n_epochs=hp.n_epochs,
        seed=spec.seed,
        max_steps=spec.max_steps,
    )
    val_rows = _shard_rows(pack_rows(val_examples, per_device * seq_len), env)
    eval_every = config.validation.eval_steps or plan.steps_per_epoch
    save_every = spec.save_steps or (eval_every if validating else math.ceil(plan.total_steps / 10))
    metric = config.validation.metric_for_best_model
    best = Best(_METRIC_ALIASES.get(metric, metric), config.validation.greater_is_better)

    # -- optimizer and schedule (AdamW, warmup then cosine), built over the wrapped model
    lr = hp.learning_rate or DEFAULT_LR[mode]
    warmup = math.ceil(plan.total_steps * (hp.warmup_ratio or 0.0))
    strategy = make_strategy(config, env, precision, accumulation)
    decay = decay_parameter_names(model)  # by name, before the strategy wraps the model

    def make_optimizer(m: Any) -> torch.optim.Optimizer:
        fused = env.device.type in ("cuda", "cpu") and not config.parallelism.use_deepspeed
        groups = param_groups(m, hp.weight_decay or 0.0, decay)
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=fused)

    def make_scheduler(torch_optimizer: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.LambdaLR(
            torch_optimizer, cosine_with_warmup(warmup, plan.total_steps)
        )

    model, optimizer, scheduler = strategy.setup(model, make_optimizer, make_scheduler)
    groups = scheduler.optimizer.param_groups  # the torch optimizer's, under any wrapper
    step = int(state.get("step", 0))
    if resume_from:
        ckpt.load_training_state(resume_from, strategy=strategy, scheduler=scheduler)
        best.value, best.step = state.get("best_metric"), state.get("best_step")
        # The schedule follows this call's config and step count (a resumed run may change
        # max_steps or the learning rate), not the values saved with the optimizer.
        factor = cosine_with_warmup(warmup, plan.total_steps)
        scheduler.base_lrs = [lr for _ in groups]
        for group in groups:
            group["lr"] = lr * factor(step)
            group["initial_lr"] = lr
        if state.get("n_examples") != len(examples) or state.get("seed") != spec.seed:
            # The data order is a function of (seed, data): it no longer continues the run.
            warnings.warn(
                f"resuming {resume_from.name} with different data or seed than it was trained "
                "with: the remaining steps will not see the data the original run would have",
                stacklevel=2,
            )
    if env.is_main:
        ckpt.remove_partial(out)
        out.mkdir(parents=True, exist_ok=True)
    start_step, saved_step = step, step if resume_from else None
    summary: dict[str, Any] = {
        "model": config.job.model,
        "mode": mode,
        "records": len(records),
        "examples_kept": enc_stats.kept,
        "truncated": enc_stats.truncated,
        "validation_records": len(val_records or ()),
        "total_steps": plan.total_steps,
        "steps_per_epoch": plan.steps_per_epoch,
        "global_batch": plan.global_batch,
        "per_device_batch": per_device,
        "gradient_accumulation_steps": accumulation,
        "learning_rate": lr,
        "warmup_steps": warmup,
        "sequence_length": seq_len,
        "precision": precision.name,
        "activation_checkpointing": checkpointing,
        "world_size": env.world_size,
        "strategy": strategy.name,
        "trainable_params": trainable_params,
        "weight_decay_tensors": len(groups[0]["params"]),
        "total_params": total_params,
        "resumed_from": str(resume_from) if resume_from else None,
        "start_step": step,
        "output_dir": str(out),
    }
    logger.start(
        RunInfo(
            plan.total_steps, start_step, config.job.model, mode, env.world_size, str(out), summary
        )
    )

    def save(at: int) -> Path:
        nonlocal saved_step
        state = {
            "step": at,
            "epoch": plan.epoch_at(at),
            "data_position": plan.position(at),
            "n_examples": len(examples),
            "seed": spec.seed,
            "world_size": env.world_size,
            "best_metric": best.value,
            "best_step": best.step,
            "best_metric_name": best.metric,
            "total_steps": plan.total_steps,
            "tokens_seen": tokens_seen,
        }
        path = ckpt.save_checkpoint(
            out,
            at,
            strategy=strategy,
            tokenizer=tokenizer,
            scheduler=scheduler,
            state=state,
            config_toml=config.to_toml(),
        )
        if env.is_main:
            best_path = out / ckpt.checkpoint_name(best.step) if best.step else None
            ckpt.prune(out, spec.keep_checkpoints, best_path)
        saved_step = at
        return path

    # -- the loop
    status, train_loss, trained_tokens = Status.SUCCEEDED, None, 0
    tokens_seen = int(state.get("tokens_seen", 0))  # real (non-padding) tokens, whole run
    window_tokens, window_start = 0, time.perf_counter()
    try:
        with stop.installed():
            while step < plan.total_steps:
                model.train()
                step_lr = groups[0]["lr"]  # before the step moves the schedule on
                bins, n_trained, n_tokens = plan.micro_batches(step, env.rank)
                step_loss = torch.zeros((), device=env.device)
                for i, indices in enumerate(bins):
                    batch = pack([examples[j] for j in indices]).to(env.device)
                    with strategy.accumulate(last=i == len(bins) - 1):
                        loss = token_loss_sum(model, batch, precision, env.device)
                        # Normalise by the supervised tokens of the whole step, on all ranks;
                        # DDP/FSDP average gradients over ranks, hence the world-size factor.
                        strategy.backward(loss * (env.world_size / n_trained))
                    step_loss += loss.detach()
                grad_norm = strategy.step(MAX_GRAD_NORM)
                step += 1
                total_loss, stop_votes = all_reduce_sum(
                    [float(step_loss), float(stop.requested)], env
                )
                train_loss = total_loss / n_trained
                trained_tokens += n_trained
                tokens_seen += n_tokens
                window_tokens += n_tokens
                elapsed = time.perf_counter() - window_start
                epoch = plan.epoch_at(step)
                points = [
                    MetricPoint(TRAIN_LOSS, train_loss, step, epoch),
                    MetricPoint(TRAIN_LR, step_lr, step, epoch),
                    MetricPoint(TRAIN_GRAD_NORM, grad_norm, step, epoch),
                    MetricPoint(TRAIN_TOKENS, tokens_seen, step, epoch),
                ]
                if elapsed >= 0.2 or step == plan.total_steps:
                    speed = window_tokens / elapsed
                    points.append(MetricPoint(TRAIN_TOKENS_PER_SECOND, speed, step, epoch))
                    window_tokens, window_start = 0, time.perf_counter()
                if not math.isfinite(train_loss):
                    raise TrainingError(
                        f"the training loss is {train_loss} at step {step}",
                        hint="lower the learning rate, or check the data for empty targets",
                    )
                logger.log(points)
                last = step == plan.total_steps
                if validating and (step % eval_every == 0 or last):
                    val_loss = _evaluate(model, val_rows, precision, env)
                    logger.log([MetricPoint(VAL_LOSS, val_loss, step, epoch, "validation")])
                    metric = val_loss if best.metric == VAL_LOSS else train_loss
                    best.update(metric, step)
                    save(step)
                elif step % save_every == 0 or last:
                    save(step)
                if stop_votes > 0:
                    status = Status.INTERRUPTED
                    break
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
        optimizer.zero_grad(set_to_none=True)
    if status is Status.INTERRUPTED and step > start_step and saved_step != step:
        save(step)

    # -- the final folder: the best checkpoint if asked, else the last one
    final_dir = None
    best_dir = out / ckpt.checkpoint_name(best.step) if best.step else None
    summary["memory_per_rank"] = peak_memory(env)
    summary.update(
        status=status,
        steps=step,
        epoch=plan.epoch_at(step),
        train_loss=train_loss,
        trained_tokens=trained_tokens,
        tokens_seen=tokens_seen,
        best_metric=best.value,
        best_metric_name=best.metric,
        best_step=best.step,
        best_checkpoint=str(best_dir) if best_dir else None,
        last_checkpoint=str(out / ckpt.checkpoint_name(saved_step)) if saved_step else None,
    )
    if status is Status.SUCCEEDED and env.is_main and saved_step:
        use_best = config.validation.save_best_model_at_end and best_dir and best_dir.is_dir()
        source = best_dir if use_best else out / ckpt.checkpoint_name(saved_step)
        summary["final_from"] = source.name
        final_dir = write_final(out, source, summary=summary, config_toml=config.to_toml())
    summary["final_dir"] = str(final_dir) if final_dir else None
    logger.finish(status)
    return summary


def _evaluate(model: Any, rows: list[Any], precision: Any, env: DistEnv) -> float:
    """Token-weighted mean loss over this rank's rows, summed over all ranks."""
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=env.device)
    n = 0
    with torch.no_grad():
        for row in rows:
            total += token_loss_sum(model, row.to(env.device), precision, env.device).double()
            n += row.n_trained
    loss_sum, count = all_reduce_sum([float(total), float(n)], env)
    return loss_sum / max(count, 1.0)


def _shard_rows(rows: list[Any], env: DistEnv) -> list[Any]:
    """This rank's share of the validation rows; every rank gets as many (placeholders pad),
    because FSDP's forward is collective."""
    per_rank = math.ceil(len(rows) / env.world_size) if rows else 0
    mine = rows[env.rank :: env.world_size]
    return mine + [pack([])] * (per_rank - len(mine))


def _resume_checkpoint(spec: TrainSpec, out: Path) -> Path | None:
    if not spec.resume:
        return None
    if isinstance(spec.resume, str):
        path = Path(spec.resume)
        if not (path / ckpt.STATE_FILE).is_file():
            raise TrainingError(f"{path} is not a checkpoint", hint="pass a step-NNNNNN folder")
        return path
    return ckpt.latest_checkpoint(out)  # nothing saved yet: start from scratch


def _check_supported(config: Any, *, launched: bool | None = None) -> None:
    """Refuse, before any work, what the local trainer cannot do.

    ``launched``: started as one rank by torchrun or srun (default: read from the environment),
    which is how a job spans several nodes.
    """
    par, compute = config.parallelism, config.compute
    if par.use_deepspeed and importlib.util.find_spec("deepspeed") is None:
        raise MissingDependencyError("deepspeed", "DeepSpeed ZeRO (use_deepspeed = true)")
    metric = config.validation.metric_for_best_model
    if _METRIC_ALIASES.get(metric, metric) not in (VAL_LOSS, TRAIN_LOSS):
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
