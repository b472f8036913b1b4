"""One process's share of a training run as a state object, :class:`Recipe`, in the order it
runs: setup, the loop (step, evaluate, checkpoint), ``final/``, the summary.

:func:`synth_lab.train.loop.train` is the entry that runs it. Rank 0 owns logging and the files
that are not per-rank.
"""

from __future__ import annotations

import functools
import math
import random
import warnings
from pathlib import Path
from typing import Any

import torch

from synth_lab.config import load_config, schema
from synth_lab.errors import TrainingError
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
from synth_lab.train.export import FINAL_DIR, write_final
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
from synth_lab.train.progress import Best, Throughput
from synth_lab.train.schedule import build_scheduler
from synth_lab.train.spec import StopSignal, TrainSpec

MAX_GRAD_NORM = 1.0
DEFAULT_LR = schema.DEFAULT_LEARNING_RATE
# The names the config may give the validation loss.
METRIC_ALIASES = {"eval_loss": VAL_LOSS, "loss": VAL_LOSS, "val_loss": VAL_LOSS}


class Recipe:
    """One process's share of a training run: its state, and the steps that change it.

    :meth:`setup` builds the model, data, step plan, strategy, optimizer and schedule, and
    restores a checkpoint's state; :meth:`run` trains step by step (:meth:`train_step`), with
    :meth:`evaluate` and :meth:`save` when due; :meth:`summary` describes the run.
    """

    def __init__(
        self, spec: TrainSpec, env: DistEnv, logger: Any = None, stop: StopSignal | None = None
    ) -> None:
        self.spec, self.env = spec, env
        self.logger = logger if logger is not None and env.is_main else BaseLogger()
        self.stop = stop or StopSignal()
        self.out = Path(spec.output_dir)
        self.config = load_config(spec.config_toml)
        self.mode = self.config.train_mode
        self.resume_from: Path | None = None
        # Progress: what a checkpoint saves and the summary reports.
        self.status = Status.RUNNING
        self.step = self.start_step = 0
        self.saved_step: int | None = None
        self.tokens_seen = 0  # real (non-padding) tokens, whole run
        self.trained_tokens = 0  # supervised tokens, this call
        self.train_loss: float | None = None
        self.memory_per_rank: list[dict[str, Any]] | None = None
        self.final_from: str | None = None
        self.final_dir: Path | None = None
        self.throughput = Throughput()

    # -- setup

    def setup(self) -> None:
        """Model, data, plan, strategy, optimizer and schedule; then a checkpoint's state."""
        spec, env = self.spec, self.env
        # Where to start: a fresh model, or a checkpoint's weights and state.
        self.resume_from = ckpt.resume_point(spec.resume, self.out)
        saved = ckpt.read_state(self.resume_from) if self.resume_from else {}
        self.step = self.start_step = int(saved.get("step", 0))
        self.saved_step = self.step if self.resume_from else None
        self.tokens_seen = int(saved.get("tokens_seen", 0))
        torch.manual_seed(spec.seed)
        random.seed(spec.seed)
        self._setup_model()
        self._setup_data()
        self._setup_optimization()
        if self.resume_from:
            ckpt.load_training_state(self.resume_from, strategy=self.strategy)
            self.best.value, self.best.step = saved.get("best_metric"), saved.get("best_step")
            if saved.get("n_examples") != len(self.examples) or saved.get("seed") != spec.seed:
                # The data order is a function of (seed, data): it no longer continues the run.
                warnings.warn(
                    f"resuming {self.resume_from.name} with different data or seed than it was "
                    "trained with: the remaining steps will not see the data the original run "
                    "would have",
                    stacklevel=4,
                )
        if env.is_main:
            ckpt.remove_partial(self.out)
            self.out.mkdir(parents=True, exist_ok=True)

    def _setup_model(self) -> None:
        config, env, mode = self.config, self.env, self.mode
        self.precision = choose_precision(config.precision, env.device)
        adapter = mode in ("lora", "qlora")
        # Under FSDP only rank 0 reads the weights (into host memory); the others build the model
        # on the meta device and receive their shards from rank 0 once it is sharded. (QLoRA:
        # every rank loads and quantizes its own copy; the 4-bit weights are never sharded.)
        shard_on_load = bool(config.parallelism.fsdp) and env.distributed and mode != "qlora"
        self.model, self.tokenizer = load_model(
            config,
            device=torch.device("cpu") if shard_on_load else env.device,
            empty=shard_on_load and not env.is_main,
            precision=self.precision,
            adapter_from=self.resume_from if adapter else None,
            weights_from=self.resume_from if not adapter else None,
        )
        model = self.model
        self.trainable_params, self.total_params = count_parameters(model)
        name = "is_activation_checkpointing"  # transformers 5; older versions say "gradient"
        name = name if hasattr(model, name) else "is_gradient_checkpointing"
        self.checkpointing = bool(getattr(model, name, False))

    def _setup_data(self) -> None:
        """Encode, hold out validation, plan every step."""
        spec, config, env = self.spec, self.config, self.env
        hp = config.hyperparameters
        max_positions = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.seq_len = hp.sequence_length or min(schema.DEFAULT_SEQUENCE_LENGTH, max_positions)
        records = load_records(spec.dataset)
        val_records = load_records(spec.validation, what="validation") if spec.validation else []
        if spec.validation_split and not val_records:
            from synth_lab.data.dataset import Dataset

            train_ds, val_ds = Dataset.from_records(records).split(spec.validation_split, spec.seed)
            records, val_records = list(train_ds), list(val_ds)
        self.n_records, self.n_val_records = len(records), len(val_records)
        self.examples, self.encoding = encode_examples(self.tokenizer, records, self.seq_len)
        self.validating = bool(val_records) and config.validation.enabled
        val_examples = []
        if self.validating:
            val_examples = encode_examples(self.tokenizer, val_records, self.seq_len)[0]
        self.per_device = per_device = min(config.per_device_batch, config.global_batch)
        self.accumulation = max(1, math.ceil(config.global_batch / (per_device * env.world_size)))
        self.plan = plan = StepPlan(
            [e.n_tokens for e in self.examples],
            [e.n_trained for e in self.examples],
            global_batch=config.global_batch,
            world_size=env.world_size,
            accumulation=self.accumulation,
            n_epochs=hp.n_epochs,
            seed=spec.seed,
            max_steps=spec.max_steps,
        )
        self.val_rows = _shard_rows(pack_rows(val_examples, per_device * self.seq_len), env)
        self.eval_every = config.validation.eval_steps or plan.steps_per_epoch
        self.save_every = spec.save_steps or (
            self.eval_every if self.validating else math.ceil(plan.total_steps / 10)
        )
        metric = config.validation.metric_for_best_model
        self.best = Best(METRIC_ALIASES.get(metric, metric), config.validation.greater_is_better)

    def _setup_optimization(self) -> None:
        """AdamW and its schedule (warmup, then cosine), built over the wrapped model."""
        hp = self.config.hyperparameters
        self.lr = hp.learning_rate or DEFAULT_LR[self.mode]
        self.warmup = math.ceil(self.plan.total_steps * (hp.warmup_ratio or 0.0))
        self.strategy = make_strategy(self.config, self.env, self.precision, self.accumulation)
        self.decay = decay_parameter_names(self.model)  # by name, before the strategy wraps it
        # The strategy builds the schedule over the torch optimizer (DeepSpeed wraps it in one
        # of its own); a resumed run's schedule starts at the checkpoint's step.
        make_scheduler = functools.partial(
            build_scheduler,
            lr=self.lr,
            warmup=self.warmup,
            total_steps=self.plan.total_steps,
            step=self.step,
        )
        self.model, self.optimizer, self.scheduler = self.strategy.setup(
            self.model, self._make_optimizer, make_scheduler
        )

    def _make_optimizer(self, model: Any) -> torch.optim.Optimizer:
        hp, par = self.config.hyperparameters, self.config.parallelism
        fused = self.env.device.type in ("cuda", "cpu") and not par.use_deepspeed
        groups = param_groups(model, hp.weight_decay or 0.0, self.decay)
        return torch.optim.AdamW(groups, lr=self.lr, betas=(0.9, 0.999), eps=1e-8, fused=fused)

    # -- the loop

    def run(self) -> dict[str, Any]:
        """Set up, train to the plan's last step or a stop request, finish; returns the summary."""
        self.setup()
        plan = self.plan
        self.logger.start(
            RunInfo(
                plan.total_steps,
                self.start_step,
                self.config.job.model,
                self.mode,
                self.env.world_size,
                str(self.out),
                self.summary(),
            )
        )
        self.throughput = Throughput()
        stopping = False
        try:
            with self.stop.installed():
                while self.step < plan.total_steps and not stopping:
                    stopping = self.train_step()
                    last = self.step == plan.total_steps
                    if self.validating and (self.step % self.eval_every == 0 or last):
                        self.evaluate()
                        self.save()
                    elif self.step % self.save_every == 0 or last:
                        self.save()
        except KeyboardInterrupt:  # a second Ctrl-C, or raised by a logger: maybe mid-step
            stopping = True
            self.optimizer.zero_grad(set_to_none=True)
        self.status = Status.INTERRUPTED if stopping else Status.SUCCEEDED
        if stopping and self.step > self.start_step and self.saved_step != self.step:
            self.save()
        return self.finish()

    def train_step(self) -> bool:
        """One optimizer step over this rank's micro-batches, then its metrics.

        Returns:
            Whether any rank was asked to stop (the vote rides on the loss's all-reduce).

        Raises:
            TrainingError: The loss is not finite.
        """
        env, model, strategy = self.env, self.model, self.strategy
        model.train()
        lr = self._groups()[0]["lr"]  # before the step moves the schedule on
        bins, n_trained, n_tokens = self.plan.micro_batches(self.step, env.rank)
        step_loss = torch.zeros((), device=env.device)
        for i, indices in enumerate(bins):
            batch = pack([self.examples[j] for j in indices]).to(env.device)
            with strategy.accumulate(last=i == len(bins) - 1):
                loss = token_loss_sum(model, batch, self.precision, env.device)
                # Normalise by the supervised tokens of the whole step, on all ranks;
                # DDP/FSDP average gradients over ranks, hence the world-size factor.
                strategy.backward(loss * (env.world_size / n_trained))
            step_loss += loss.detach()
        grad_norm = strategy.step(MAX_GRAD_NORM)
        self.step += 1
        total_loss, stop_votes = all_reduce_sum([float(step_loss), float(self.stop.requested)], env)
        self.train_loss = total_loss / n_trained
        self.trained_tokens += n_trained
        self.tokens_seen += n_tokens
        if not math.isfinite(self.train_loss):
            raise TrainingError(
                f"the training loss is {self.train_loss} at step {self.step}",
                hint="lower the learning rate, or check the data for empty targets",
            )
        step, epoch = self.step, self.plan.epoch_at(self.step)
        points = [
            MetricPoint(TRAIN_LOSS, self.train_loss, step, epoch),
            MetricPoint(TRAIN_LR, lr, step, epoch),
            MetricPoint(TRAIN_GRAD_NORM, grad_norm, step, epoch),
            MetricPoint(TRAIN_TOKENS, self.tokens_seen, step, epoch),
        ]
        speed = self.throughput.add(n_tokens, last=step == self.plan.total_steps)
        if speed is not None:
            points.append(MetricPoint(TRAIN_TOKENS_PER_SECOND, speed, step, epoch))
        self.logger.log(points)
        return stop_votes > 0

    def evaluate(self) -> float:
        """The validation loss (collective), logged and weighed against the best so far.

        Returns:
            The token-weighted mean loss over all ranks' validation rows.
        """
        env, model = self.env, self.model
        model.eval()
        total = torch.zeros((), dtype=torch.float64, device=env.device)
        n = 0
        with torch.no_grad():
            for row in self.val_rows:
                total += token_loss_sum(
                    model, row.to(env.device), self.precision, env.device
                ).double()
                n += row.n_trained
        loss_sum, count = all_reduce_sum([float(total), float(n)], env)
        val_loss = loss_sum / max(count, 1.0)
        epoch = self.plan.epoch_at(self.step)
        self.logger.log([MetricPoint(VAL_LOSS, val_loss, self.step, epoch, "validation")])
        self.best.update(val_loss if self.best.metric == VAL_LOSS else self.train_loss, self.step)
        return val_loss

    def save(self) -> Path:
        """Checkpoint this step (every rank calls it: saving is collective), prune old ones."""
        state = {
            "step": self.step,
            "epoch": self.plan.epoch_at(self.step),
            "data_position": self.plan.position(self.step),
            "n_examples": len(self.examples),
            "seed": self.spec.seed,
            "world_size": self.env.world_size,
            "best_metric": self.best.value,
            "best_step": self.best.step,
            "best_metric_name": self.best.metric,
            "total_steps": self.plan.total_steps,
            "tokens_seen": self.tokens_seen,
        }
        path = ckpt.save_checkpoint(
            self.out,
            self.step,
            strategy=self.strategy,
            tokenizer=self.tokenizer,
            scheduler=self.scheduler,
            state=state,
            config_toml=self.config.to_toml(),
        )
        if self.env.is_main:
            ckpt.prune(self.out, self.spec.keep_checkpoints, self._checkpoint(self.best.step))
        self.saved_step = self.step
        return path

    def finish(self) -> dict[str, Any]:
        """Write ``final/`` after a successful run (rank 0): the best checkpoint if the config
        says so, else the last one. Returns the summary."""
        self.memory_per_rank = peak_memory(self.env)  # collective
        if self.status is Status.SUCCEEDED and self.env.is_main and self.saved_step:
            best = self._checkpoint(self.best.step)
            use_best = self.config.validation.save_best_model_at_end and best and best.is_dir()
            source = best if use_best else self.out / ckpt.checkpoint_name(self.saved_step)
            self.final_from, self.final_dir = source.name, self.out / FINAL_DIR
            write_final(self.out, source, summary=self.summary(), config_toml=self.config.to_toml())
        summary = self.summary()
        self.logger.finish(self.status)
        return summary

    def summary(self) -> dict[str, Any]:
        """The run in one dict: what setup built, then how far it got. Sent with the start
        event, written into ``final/`` and returned by :func:`train`."""
        plan, best = self.plan, self.best
        best_dir, last = self._checkpoint(best.step), self._checkpoint(self.saved_step)
        return {
            "model": self.config.job.model,
            "mode": self.mode,
            "records": self.n_records,
            "examples_kept": self.encoding.kept,
            "truncated": self.encoding.truncated,
            "validation_records": self.n_val_records,
            "total_steps": plan.total_steps,
            "steps_per_epoch": plan.steps_per_epoch,
            "global_batch": plan.global_batch,
            "per_device_batch": self.per_device,
            "gradient_accumulation_steps": self.accumulation,
            "learning_rate": self.lr,
            "warmup_steps": self.warmup,
            "sequence_length": self.seq_len,
            "precision": self.precision.name,
            "activation_checkpointing": self.checkpointing,
            "world_size": self.env.world_size,
            "strategy": self.strategy.name,
            "trainable_params": self.trainable_params,
            "weight_decay_tensors": len(self._groups()[0]["params"]),
            "total_params": self.total_params,
            "resumed_from": str(self.resume_from) if self.resume_from else None,
            "start_step": self.start_step,
            "output_dir": str(self.out),
            "memory_per_rank": self.memory_per_rank,
            "status": self.status,
            "steps": self.step,
            "epoch": plan.epoch_at(self.step),
            "train_loss": self.train_loss,
            "trained_tokens": self.trained_tokens,
            "tokens_seen": self.tokens_seen,
            "best_metric": best.value,
            "best_metric_name": best.metric,
            "best_step": best.step,
            "best_checkpoint": str(best_dir) if best_dir else None,
            "last_checkpoint": str(last) if last else None,
            "final_from": self.final_from,
            "final_dir": str(self.final_dir) if self.final_dir else None,
        }

    def _groups(self) -> list[dict[str, Any]]:
        """The torch optimizer's param groups, under any wrapper. Looked up each time: loading
        an optimizer state replaces them."""
        return self.scheduler.optimizer.param_groups

    def _checkpoint(self, step: int | None) -> Path | None:
        return self.out / ckpt.checkpoint_name(step) if step else None


def _shard_rows(rows: list[Any], env: DistEnv) -> list[Any]:
    """This rank's share of the validation rows; every rank gets as many (placeholders pad),
    because FSDP's forward is collective."""
    per_rank = math.ceil(len(rows) / env.world_size) if rows else 0
    mine = rows[env.rank :: env.world_size]
    return mine + [pack([])] * (per_rank - len(mine))
