"""The worker subprocess: runs one job with the trainer and writes its progress to the database.

Started by the :class:`~synth_lab.server.scheduler.Scheduler` as
``python -m synth_lab.server.worker --data-dir DIR --job-id ID`` in its own process group.
Metric points and events go straight into the server's SQLite database (:class:`DBLogger`).

Stopping: SIGINT (server shutdown, or the server process gone) interrupts the trainer, which
saves a checkpoint; the job stays ``running`` and the next server start resumes it.
SIGTERM/SIGKILL (cancel) end it at once; the server has already marked it ``cancelled``.
A lock file keeps two workers of one job from overlapping across a server restart.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from synth_lab.metrics import TRAIN_LOSS, VAL_LOSS, VAL_LOSS_BEST
from synth_lab.server.store import TERMINAL, Store
from synth_lab.status import Status

if TYPE_CHECKING:
    from synth_lab.train.metrics import MetricPoint, RunInfo
    from synth_lab.train.result import TrainResult

DB_NAME = "server.db"
DEFAULT_RUNNER = "synth_lab.train:run"
LOCK_WAIT_SECONDS = 120.0


class DBLogger:
    """A trainer logger (``synth_lab.train.metrics`` protocol) that publishes to the server.

    Points are stored as metric points; each ``train.loss`` point also becomes an
    ``sft.progress`` event and each ``val.loss`` an ``sft.validation.summary`` event, so clients
    that read only events see the same curve. After a resume, steps already published get no
    second event (their points are simply replaced).
    """

    def __init__(self, store: Store, job_id: str, model: str = "") -> None:
        self.store = store
        self.job_id = job_id
        self.model = model  # the id the job asked for: the trainer knows a local path
        self.total_steps = 0
        self._progress_after = store.last_event_step(job_id, "sft.progress")
        self._val_after = store.last_event_step(job_id, "sft.validation.summary")
        self._evaluating = False

    def start(self, info: RunInfo) -> None:
        """The trainer is set up: record the plan (total steps, start step after a resume)."""
        self.total_steps, start_step = info.total_steps, info.start_step
        data = {
            "total_steps": self.total_steps,
            "start_step": start_step,
            "model": self.model or info.model,
            "mode": info.mode,
            "world_size": info.world_size,
            "resumed": start_step > 0,
        }
        message = f"training started ({self.total_steps} steps)"
        if start_step:
            message = f"training resumed at step {start_step} of {self.total_steps}"
        self.store.add_event(self.job_id, "sft.training.started", message, data)
        self.store.add_timeline(self.job_id, "training", {"start_step": start_step})

    def log(self, points: Sequence[MetricPoint]) -> None:
        """Store points and the events derived from them in one transaction."""
        rows = [p.to_dict() for p in points]
        events: list[tuple[str, str, str, dict[str, Any]]] = []
        for p in rows:
            step = int(p["step"])
            if p["name"] == TRAIN_LOSS and step > self._progress_after:
                self._progress_after = step
                data = {
                    "step": step,
                    "epoch": p.get("epoch"),
                    "loss": p["value"],
                    "total_steps": self.total_steps,
                }
                message = f"step {step}/{self.total_steps} loss {p['value']:.4f}"
                events.append(("sft.progress", "info", message, data))
            elif p["name"] == VAL_LOSS and step > self._val_after:
                self._val_after = step
                data = {"step": step, "epoch": p.get("epoch"), "val_loss": p["value"]}
                message = f"validation at step {step}: loss {p['value']:.4f}"
                events.append(("sft.validation.summary", "info", message, data))
                if not self._evaluating:
                    self._evaluating = True
                    self.store.add_timeline(self.job_id, "evaluating", {"step": step})
        self.store.add_points(self.job_id, rows, events)

    def finish(self, status: str) -> None:
        """Nothing to do: the worker writes the terminal status from the run's result."""

    def close(self) -> None:
        """Nothing to release: the store's connection belongs to the worker."""


@contextlib.contextmanager
def job_lock(job_dir: Path, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold ``job_dir/worker.lock`` exclusively (waiting for an earlier worker to let go)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no overlap protection
        yield
        return
    job_dir.mkdir(parents=True, exist_ok=True)
    with open(job_dir / "worker.lock", "a+b") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another worker still holds {job_dir}") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def watch_parent(interval: float = 0.5) -> None:
    """Interrupt this process (as Ctrl-C would) if the server that started it goes away."""
    parent = os.getppid()

    def loop() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=loop, name="watch-parent", daemon=True).start()


def load_runner(spec: str) -> Callable[..., Any]:
    """``module:function`` -> the function."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "run")


def run_job(store: Store, job_id: str, runner: Callable[..., TrainResult]) -> int:
    """Run the job to its end with ``runner`` (:func:`synth_lab.train.run` or a function
    taking its arguments and returning its :class:`TrainResult`); returns the exit code."""
    row = store.job_row(job_id)
    if row is None or row["status"] in TERMINAL:
        return 0
    spec = orjson.loads(row["spec"])
    output_dir = Path(spec["output_dir"])
    resume = output_dir.is_dir() and any(output_dir.glob("step-*"))
    store.add_timeline(job_id, "initializing_trainer", {"resume": resume})
    logger = DBLogger(store, job_id, model=row["model"])
    try:
        from synth_lab.config import SFTConfig

        config = SFTConfig.from_dict(spec["config"])
        result = runner(
            config,
            spec["train_path"],
            output_dir=output_dir,
            resume=resume,
            logger=logger,
            live=False,
            validation_dataset=spec.get("val_path"),
            # An exact step budget (the SDK's total_steps) overrides n_epochs.
            **({"max_steps": spec["max_steps"]} if spec.get("max_steps") else {}),
        )
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # The traceback names server paths: it goes to the worker's log (the server's side);
        # the client gets the error's type and message with the job folder made relative.
        traceback.print_exc()
        message = _relative(f"{type(exc).__name__}: {exc}", output_dir.parent)
        store.set_status(
            job_id,
            Status.FAILED,
            error=message,
            event=("sft.job.failed", "error", message, {"error_type": type(exc).__name__}),
        )
        return 1
    status = Status.parse(result.status)
    if status is Status.INTERRUPTED:
        return 130
    steps = result.steps
    if status is not Status.SUCCEEDED:
        message = f"training ended with status {status}"
        message = _relative(message, output_dir.parent)
        store.set_status(
            job_id, Status.FAILED, error=message, event=("sft.job.failed", "error", message, {})
        )
        return 1
    suffix = f"{spec['suffix']}:" if spec.get("suffix") else ""
    fine_tuned = f"ft:{row['model']}:{suffix}{job_id}"
    final_dir = result.final_dir
    # Folders relative to the job's own folder: clients learn nothing of the server's layout.
    summary = {
        "steps": steps,
        "metrics": _final_metrics(result),
        "output_dir": _relative(str(output_dir), output_dir.parent),
        "final_dir": _relative(str(final_dir), output_dir.parent) if final_dir else None,
    }
    message = f"training finished after {steps} steps"
    store.add_event(job_id, "sft.training.finish", message, summary)
    store.set_status(
        job_id,
        Status.SUCCEEDED,
        result={**summary, "fine_tuned_model": fine_tuned},
        event=("sft.job.completed", "info", "job completed", {**summary, "model": fine_tuned}),
    )
    return 0


def _relative(text: str, job_dir: Path) -> str:
    """``text`` with paths in the job's folder relative to it, and the data folder's removed."""
    data_dir = job_dir.parent.parent
    for root in (job_dir, job_dir.resolve(), data_dir, data_dir.resolve()):
        text = text.replace(str(root) + os.sep, "").replace(str(root), ".")
    return text


def _final_metrics(result: TrainResult) -> dict[str, float | None]:
    """The last train loss and best validation loss of a run."""
    return {TRAIN_LOSS: result.train_loss, VAL_LOSS_BEST: result.best_val_loss}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the worker subprocess."""
    parser = argparse.ArgumentParser(prog="synth_lab.server.worker")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--runner", default=DEFAULT_RUNNER)
    args = parser.parse_args(argv)
    store = Store(Path(args.data_dir) / DB_NAME)
    watch_parent()
    try:
        with job_lock(Path(args.data_dir) / "jobs" / args.job_id):
            return run_job(store, args.job_id, load_runner(args.runner))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
