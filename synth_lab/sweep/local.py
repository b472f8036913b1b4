"""Local sweep points: in this process one after another, or side by side on separate GPUs.

With several GPUs and ``max_parallel > 1``, each point trains in its own worker process group
(``python -m synth_lab.sweep.worker``) that sees only its GPUs (``CUDA_VISIBLE_DEVICES``; no
two running points share one). The sweep reads each worker's ``metrics.jsonl`` as it grows for
the live view and early stopping, stops a worker with SIGINT (it checkpoints, as on Ctrl-C) and
reads its result from ``result.json``. On a CPU the points train here, one at a time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth_lab._files import atomic_write_text
from synth_lab.status import Status
from synth_lab.sweep.manifest import Manifest
from synth_lab.sweep.result import SweepResult, SweepRun
from synth_lab.sweep.view import SweepView

GRACE = 30.0
"""Seconds a stopped worker gets to checkpoint before its process group is killed."""


@dataclass(frozen=True)
class LocalArgs:
    """What every local point trains with (see :func:`~synth_lab.sweep.run_sweep`)."""

    dataset: Any
    validation_dataset: Any
    max_steps: int | None
    seed: int
    logger: Any
    evaluation: Any = None  # scores each run's generations (``eval.score``), see train.run


def curves(sweep: SweepResult, metric: str) -> dict[str, dict[int, float]]:
    """Every started run's ``metric`` curve, for an early stopping rule."""
    found = {}
    for run in sweep.runs:
        if run.status in (Status.FAILED, Status.QUEUED):
            continue
        steps, values = run.series(metric)
        if steps:
            found[run.name] = dict(zip(steps, values, strict=True))
    return found


def slots(devices: Sequence[int], per_point: int, max_parallel: int) -> list[list[int]]:
    """Disjoint GPU sets, ``per_point`` GPUs each, at most ``max_parallel`` of them."""
    groups = [list(devices[i : i + per_point]) for i in range(0, len(devices), per_point)]
    return [g for g in groups if len(g) == per_point][:max_parallel]


@dataclass
class LocalSweep:
    """A sweep whose points train on this machine.

    Attributes:
        sweep: The runs, updated as they go.
        manifest: The sweep's record on disk (saved as each run starts and ends).
        view: The live table and plot, if shown.
        rule: The early stopping rule (``None``: every run trains to the end).
        args: What every point trains with.
    """

    sweep: SweepResult
    manifest: Manifest
    view: SweepView | None
    rule: Any
    args: LocalArgs

    def run(self, gpu_slots: list[list[int]]) -> None:
        """Train every unfinished point: in worker processes when there are 2+ GPU slots."""
        if len(gpu_slots) > 1:
            _Pool(self, gpu_slots).run()
            return
        sweep, manifest, view, args = self.sweep, self.manifest, self.view, self.args
        for run in sweep.runs:
            if Status.parse(run.status).terminal:
                continue
            again = _start(run, manifest)
            if view:
                view.draw(force=True)
            began = time.monotonic() - run.seconds
            feed = _Feed(run, view, sweep, self.rule)
            try:
                _train(run, args, again, [args.logger, feed])
            except KeyboardInterrupt:
                run.status = Status.INTERRUPTED
            except Exception as exc:  # one bad run must not lose the sweep
                run.status, run.error = Status.FAILED, _error(exc)
            finally:
                run.seconds = time.monotonic() - began
            if run.status == Status.INTERRUPTED and run.stopped_step is not None:
                run.status = Status.STOPPED_EARLY
            manifest.record(run).save()
            if run.status == Status.INTERRUPTED:
                raise KeyboardInterrupt


def _start(run: SweepRun, manifest: Manifest) -> bool:
    """Mark ``run`` running; whether it continues from a checkpoint of an earlier attempt."""
    again = run.status in (Status.RUNNING, Status.INTERRUPTED)
    run.status, run.output_dir, run.live_points = Status.RUNNING, manifest.folder / run.name, []
    manifest.record(run).save()
    return again


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"


def _train(run: SweepRun, args: LocalArgs, resume: bool, loggers: list[Any]) -> None:
    from synth_lab.train import run as train

    result = train(
        run.config,
        args.dataset,
        output_dir=run.output_dir,  # type: ignore[arg-type]
        max_steps=args.max_steps,
        resume=resume,
        live=False,
        logger=[lg for lg in loggers if lg is not None],
        validation_dataset=args.validation_dataset,
        seed=args.seed,
        evaluation=args.evaluation,
    )
    run.result, run.status = result, result.status


class _Feed:
    """A metric logger that keeps a running run's points, redraws the sweep view, and stops
    the run (with a checkpoint) when the early stopping rule names it."""

    def __init__(self, run: SweepRun, view: SweepView | None, sweep: SweepResult, rule: Any):
        self.run, self.view, self.sweep, self.rule = run, view, sweep, rule

    def log(self, points: Sequence[Any]) -> None:
        self.run.live_points.extend(points)
        if self.view:
            self.view.draw(force=False)
        if self.rule is not None and any(p.name == self.rule.metric for p in points):
            stop = self.rule.decide(curves(self.sweep, self.rule.metric), [self.run.name])
            if self.run.name in stop:
                self.run.stopped_step = stop[self.run.name]
                raise KeyboardInterrupt  # the trainer's way to stop with a checkpoint


class _Worker:
    """One point training in its own process group on its own GPUs."""

    def __init__(self, run: SweepRun, devices: list[int], process: subprocess.Popen[bytes]):
        self.run, self.devices, self.process = run, devices, process
        self.offset = 0
        self.began = time.monotonic() - run.seconds
        self.stop_sent: float | None = None

    def read_points(self) -> None:
        """Append the complete lines ``metrics.jsonl`` gained since the last read."""
        from synth_lab.train.metrics import MetricPoint

        path = self.run.output_dir / "metrics.jsonl"  # type: ignore[operator]
        try:
            with path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            try:
                self.run.live_points.append(MetricPoint.from_dict(json.loads(line)).to_dict())
            except (ValueError, KeyError, TypeError):
                continue

    def stop(self) -> None:
        """Ask the worker to stop with a checkpoint (its SIGINT handler)."""
        if self.stop_sent is None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            self.stop_sent = time.monotonic()


class _Pool:
    """Keeps one worker per free GPU slot busy until every point has run."""

    def __init__(self, local: LocalSweep, gpu_slots: list[list[int]]) -> None:
        self.sweep, self.manifest, self.view = local.sweep, local.manifest, local.view
        self.rule, self.args, self.free = local.rule, local.args, list(gpu_slots)
        folder, args = local.manifest.folder, local.args
        self.data = _as_file(args.dataset, folder / "train.jsonl", "training")
        self.validation = _as_file(
            args.validation_dataset, folder / "validation.jsonl", "validation"
        )

    def run(self, interval: float = 0.5) -> None:
        queue = [r for r in self.sweep.runs if not Status.parse(r.status).terminal]
        workers: list[_Worker] = []
        try:
            while queue or workers:
                while queue and self.free:
                    workers.append(self._launch(queue.pop(0), self.free.pop(0)))
                    if self.view:
                        self.view.draw(force=True)
                time.sleep(interval)
                for worker in list(workers):
                    worker.read_points()
                    if worker.process.poll() is not None:
                        workers.remove(worker)
                        self.free.append(worker.devices)
                        self._finish(worker)
                self._early_stops(workers)
                if self.view:
                    self.view.draw(force=False)
        except KeyboardInterrupt:
            for worker in workers:  # local workers stop with the cell; resume continues them
                worker.stop()
            for worker in workers:
                _wait(worker.process)
                worker.read_points()
                self._finish(worker)
            raise

    def _launch(self, run: SweepRun, devices: list[int]) -> _Worker:
        again = _start(run, self.manifest)
        folder = run.output_dir
        folder.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        for name in ("result.json", "error.json"):
            (folder / name).unlink(missing_ok=True)  # type: ignore[operator]
        spec = {
            "config_toml": run.config.to_toml(),
            "dataset": self.data,
            "validation_dataset": self.validation,
            "output_dir": os.fspath(folder),
            "max_steps": self.args.max_steps,
            "seed": self.args.seed,
            "resume": again,
            "evaluation": self.args.evaluation,
        }
        atomic_write_text(folder / "worker.json", json.dumps(spec))  # type: ignore[operator]
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(map(str, devices))}
        with open(folder / "worker.log", "ab") as log:  # type: ignore[operator]
            process = subprocess.Popen(
                [sys.executable, "-m", "synth_lab.sweep.worker", os.fspath(folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: a stop reaches all ranks
            )
        self.manifest.record(run, devices=devices, started_at=time.time()).save()
        return _Worker(run, devices, process)

    def _finish(self, worker: _Worker) -> None:
        from synth_lab.train.metrics import read_jsonl
        from synth_lab.train.result import TrainResult

        run, folder = worker.run, worker.run.output_dir
        run.seconds = time.monotonic() - worker.began
        result = folder / "result.json"  # type: ignore[operator]
        if result.is_file():
            summary = json.loads(result.read_text())
            points = read_jsonl(folder / "metrics.jsonl")  # type: ignore[operator]
            run.result = TrainResult.from_summary(summary, points)
            run.status = run.result.status
        elif worker.stop_sent is not None:  # stopped before training began: nothing lost
            run.status = Status.INTERRUPTED
        else:
            run.status = Status.FAILED
            error = folder / "error.json"  # type: ignore[operator]
            run.error = (
                json.loads(error.read_text())["error"]
                if error.is_file()
                else f"the worker exited with code {worker.process.returncode}; see "
                f"{folder / 'worker.log'}"  # type: ignore[operator]
            )
        if run.status == Status.INTERRUPTED and run.stopped_step is not None:
            run.status = Status.STOPPED_EARLY
        self.manifest.record(run, devices=worker.devices, ended_at=time.time()).save()
        if self.view:
            self.view.draw(force=True)

    def _early_stops(self, workers: list[_Worker]) -> None:
        going = [w for w in workers if w.stop_sent is None]
        if self.rule is None or not going:
            return
        stop = self.rule.decide(curves(self.sweep, self.rule.metric), [w.run.name for w in going])
        for worker in going:
            if worker.run.name in stop:
                worker.run.stopped_step = stop[worker.run.name]
                worker.stop()


def _as_file(data: Any, path: Path, what: str) -> str | None:
    """A path workers can read: as given, else the records written once to ``path``."""
    if data is None or isinstance(data, (str, os.PathLike)):
        return None if data is None else os.fspath(Path(data).resolve())
    from synth_lab.train.data import load_records

    records = load_records(data, what=what)
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
    return os.fspath(path)


def _wait(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(GRACE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
