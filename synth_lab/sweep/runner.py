"""``run_sweep``: train every point of a sweep, here or on the learning API, resumably.

Remote points are submitted together, at most ``max_parallel`` in flight, and watched in one
loop; local points train one after another. The sweep folder's manifest records the plan
and every run's state as it changes, so ``resume=True`` picks up where a stopped or killed
sweep left off.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from synth_lab._deps import require
from synth_lab._notebook import in_notebook
from synth_lab.config import SFTConfig, load_config
from synth_lab.errors import SynthLabError
from synth_lab.status import Status
from synth_lab.sweep.grid import SweepPoint, grid
from synth_lab.sweep.local import LocalArgs, LocalSweep, curves, slots
from synth_lab.sweep.manifest import Manifest, rebuild, save_points
from synth_lab.sweep.result import SweepResult, SweepRun
from synth_lab.sweep.space import is_random, sample
from synth_lab.sweep.stopping import make_rule
from synth_lab.sweep.view import SweepView

MAX_POLL_FAILURES = 30
"""Consecutive failed polls of one job (server restarting ...) tolerated while watching."""


def run_sweep(
    base: SFTConfig | str | os.PathLike[str],
    axes_or_points: Mapping[str, Any] | Sequence[Mapping[str, Any] | SweepPoint],
    dataset: Any = None,
    *,
    output_dir: str | os.PathLike[str] = "runs/sweep",
    max_steps: int | None = None,
    validation_dataset: Any = None,
    seed: int = 0,
    live: bool | None = None,
    remote: bool = False,
    backend: str | None = None,
    logger: Any = None,
    max_parallel: int = 1,
    resume: bool = False,
    budget: int | None = None,
    search_seed: int = 0,
    early_stop: Any = None,
    rank_by: str | None = None,
    poll_interval: float | None = None,
    gpus: Sequence[int] | None = None,
    gpus_per_point: int = 1,
    evaluation: Any = None,
) -> SweepResult:
    """Train one run per sweep point and compare them.

    Every point is validated and the plan written to ``output_dir/manifest.json`` before the
    first run starts. A run that fails is recorded as ``failed`` with its error and the sweep
    goes on. An interrupt (Ctrl-C, the notebook's stop button) stops the sweep, keeping what
    finished, marked ``interrupted``; remote jobs keep running (``sweep.cancel()`` stops them,
    ``resume=True`` watches them again).

    Args:
        base: The config every point starts from (config, TOML path or TOML text).
        axes_or_points: ``{"dotted.key": [values]}`` axes (their product); axes with
            distributions (:func:`~synth_lab.sweep.loguniform` ...) for a random search of
            ``budget`` points; a list of override dicts; or points from
            :func:`~synth_lab.sweep.grid`.
        dataset: Training data, as for :func:`synth_lab.train.run` (default: ``[job].data``).
        output_dir: The sweep folder: its manifest and one subfolder per run.
        max_steps: Optimizer steps per local run (remote runs use the config).
        validation_dataset: Validation data (default: ``[data].validation_path``).
        seed: Seed of every local run (the same for all, so only the overrides differ).
        live: Show a live table and plot (default: when running in a notebook).
        remote: Submit the points to the learning API instead of training here.
        backend: The learning API base URL for ``remote`` (default from the environment).
        logger: Extra metric logger(s) for every local run (see :func:`synth_lab.train.run`).
        max_parallel: Remote jobs in flight at once; local points training at once on
            separate GPUs (on a CPU they go one at a time).
        resume: Continue the sweep already in ``output_dir``: finished runs are kept, running
            remote jobs watched again, local runs continued from their last checkpoint.
        budget: Points of a random search.
        search_seed: Seed of a random search (the same seed gives the same points).
        early_stop: ``"median"``, ``"halving"``, or a rule from :mod:`synth_lab.sweep.stopping`;
            weak runs are stopped (local) or cancelled (remote), status ``stopped early``.
        rank_by: The metric the table and :attr:`SweepResult.best` rank by.
        poll_interval: Seconds between polls of remote jobs (default ``[job].poll_seconds``).
        gpus: GPU ids local points may use (default: every GPU of this machine).
        gpus_per_point: GPUs each local point trains on when points run side by side.
        evaluation: Score each local run's generations on the validation data (metric
            ``eval.score``), as ``evaluation`` of :func:`synth_lab.train.run`.

    Returns:
        A :class:`SweepResult` (``succeeded`` or ``interrupted``).

    Raises:
        ConfigError: A point gives an invalid config (nothing was run).
        SynthLabError: ``output_dir`` holds another sweep, or holds this one without ``resume``.
        MissingDependencyError: A local sweep without the ``train`` extra (nothing was run).
    """
    config = load_config(base)
    if not remote:
        # Checked once here: each run would fail alike, and be recorded as a failed run.
        require("torch", "Local training", "train")
        require("transformers", "Local training", "train")
    points = _points(config, axes_or_points, budget, search_seed)
    if not isinstance(max_parallel, int) or max_parallel < 1:
        raise SynthLabError(f"max_parallel must be a positive integer, got {max_parallel!r}")
    if evaluation is not None and remote:
        raise SynthLabError(
            "evaluation scores local runs only", hint="leave evaluation out of a remote sweep"
        )
    if evaluation is not None and not isinstance(evaluation, str) and max_parallel > 1:
        raise SynthLabError(
            "a callable evaluation cannot be sent to the worker processes of a parallel sweep",
            hint='name a scorer ("exact", "contains", "regex:PATTERN") or use max_parallel=1',
        )
    rule = make_rule(early_stop)
    client = None
    if remote:
        from synth_lab.client._client import SynthClient

        client = SynthClient(base_url=backend)
    root = Path(output_dir).expanduser().resolve()
    settings = {"backend": client.base_url if client else None, "max_steps": max_steps}
    plan = Manifest.plan(root, config, points, remote=remote, settings=settings)
    if Manifest.exists(root):
        manifest = _resumable(root, plan, resume)
        sweep = rebuild(manifest)
    else:
        manifest = plan.save()
        sweep = SweepResult([SweepRun(p) for p in points], output_dir=root)
    sweep.rank_by, sweep.backend, sweep.status = rank_by, settings["backend"], Status.RUNNING
    view = SweepView(sweep) if live or (live is None and in_notebook()) else None
    try:
        if remote:
            interval = poll_interval or config.job.poll_seconds or 2.0
            _Remote(sweep, manifest, client, view, rule, max_parallel, interval).run(
                dataset, validation_dataset
            )
        else:
            local = LocalArgs(dataset, validation_dataset, max_steps, seed, logger, evaluation)
            gpu_slots = slots(_gpus(gpus), gpus_per_point, max_parallel) if max_parallel > 1 else []
            LocalSweep(sweep, manifest, view, rule, local).run(gpu_slots)
    except KeyboardInterrupt:
        sweep.status = Status.INTERRUPTED
    else:
        if sweep.status == Status.RUNNING:
            sweep.status = Status.SUCCEEDED
    manifest.update(sweep).save()
    if view:
        view.draw(force=True)
    return sweep


def _points(
    config: SFTConfig, axes_or_points: Any, budget: int | None, search_seed: int
) -> list[SweepPoint]:
    if isinstance(axes_or_points, Sequence) and all(
        isinstance(p, SweepPoint) for p in axes_or_points
    ):
        return list(axes_or_points)
    if is_random(axes_or_points) or budget is not None:
        if not isinstance(axes_or_points, Mapping):
            raise SynthLabError(
                "a budget needs axes to draw from, not a list of points",
                hint='pass {"key": loguniform(1e-5, 1e-3)} with budget=...',
            )
        return grid(config, sample(axes_or_points, budget, search_seed))  # type: ignore[arg-type]
    return grid(config, axes_or_points)


def _resumable(root: Path, plan: Manifest, resume: bool) -> Manifest:
    old = Manifest.read(root)
    if not old.same_plan(plan):
        raise SynthLabError(
            f"{root} holds another sweep (other base config, points or mode)",
            hint="choose another output_dir, or rerun it with the same config and axes",
        )
    if not resume:
        raise SynthLabError(
            f"{root} already holds this sweep",
            hint="pass resume=True (%sft_sweep --resume) to continue it, or another output_dir",
        )
    old.data["settings"] = plan.data["settings"]
    return old


# -- remote -------------------------------------------------------------------------------------


class _Remote:
    """Submits points (at most ``max_parallel`` in flight) and watches them all in one loop."""

    def __init__(
        self,
        sweep: SweepResult,
        manifest: Manifest,
        client: Any,
        view: SweepView | None,
        rule: Any,
        max_parallel: int,
        interval: float,
    ) -> None:
        self.sweep, self.manifest, self.client, self.view = sweep, manifest, client, view
        self.rule, self.max_parallel, self.interval = rule, max_parallel, interval
        self.began: dict[str, float] = {}
        self.failures: dict[str, int] = {}
        self.changed = True

    def run(self, dataset: Any, validation_dataset: Any) -> None:
        from synth_lab.client.remote import attach

        todo = [r for r in self.sweep.runs if not Status.parse(r.status).terminal]
        flight: list[SweepRun] = []
        for run in todo:
            if run.job_id:  # submitted before the sweep stopped: watch it again
                run.result, run.status = attach(run.job_id, client=self.client), Status.RUNNING
                self.began[run.name] = time.monotonic() - run.seconds
                flight.append(run)
        queue = [r for r in todo if not r.job_id]
        try:
            while queue or flight:
                while queue and len(flight) < self.max_parallel:
                    run = queue.pop(0)
                    if self._submit(run, dataset, validation_dataset):
                        flight.append(run)
                flight = self._poll(flight)
                self._draw()
                if flight:
                    time.sleep(self.interval)
        except KeyboardInterrupt:
            for run in flight:
                run.status = Status.INTERRUPTED
            if flight:
                print(
                    f"Stopped watching the sweep; {len(flight)} job(s) keep running on the "
                    "server. Watch them again with run_sweep(..., resume=True) or "
                    "%sft_sweep --resume; stop them with .cancel().",
                    file=sys.stderr,
                    flush=True,
                )
            raise

    def _submit(self, run: SweepRun, dataset: Any, validation_dataset: Any) -> bool:
        from synth_lab.client.remote import submit

        # The key goes to the manifest first: a sweep killed after the create request but
        # before the job id is written submits again with it and gets the same job back.
        entry = self.manifest.entry(run.name)
        key = entry.get("idempotency_key") or f"sweep-{uuid.uuid4()}"
        run.status = Status.RUNNING
        self.manifest.record(run, idempotency_key=key).save()
        self.began[run.name] = time.monotonic()
        try:
            job = submit(
                run.config,
                dataset,
                validation_dataset=validation_dataset,
                client=self.client,
                wait=False,
                idempotency_key=key,
            )
        except Exception as exc:  # one bad point must not lose the sweep
            self._end(run, Status.FAILED, f"{type(exc).__name__}: {getattr(exc, 'message', exc)}")
            return False
        run.result, run.job_id = job, job.id
        self.manifest.record(run).save()
        self.changed = True
        return True

    def _poll(self, flight: list[SweepRun]) -> list[SweepRun]:
        from synth_lab.client.errors import APIConnectionError, RateLimitError, ServerError

        going = []
        for run in flight:
            try:
                run.result.refresh()
                self.failures[run.name] = 0
            except (APIConnectionError, ServerError, RateLimitError):
                self.failures[run.name] = self.failures.get(run.name, 0) + 1
                if self.failures[run.name] > MAX_POLL_FAILURES:
                    raise
            run.seconds = time.monotonic() - self.began[run.name]
            status = _job_status(run.result) if run.result.done else Status.RUNNING
            if status == Status.RUNNING:
                going.append(run)
            else:
                error = run.result.failure_reason() if status == Status.FAILED else None
                self._end(run, status, error)
        for name, step in self._stops(going).items():
            run = next(r for r in going if r.name == name)
            run.result.cancel()
            run.stopped_step = step
            self._end(run, Status.STOPPED_EARLY)
            going.remove(run)
        return going

    def _stops(self, going: list[SweepRun]) -> dict[str, int]:
        if self.rule is None or not going:
            return {}
        return self.rule.decide(curves(self.sweep, self.rule.metric), [r.name for r in going])

    def _end(self, run: SweepRun, status: str, error: str | None = None) -> None:
        run.status, run.error = status, error
        if run.name in self.began:
            run.seconds = time.monotonic() - self.began[run.name]
        if run.result is not None:
            save_points(run, self.manifest.folder)
        self.manifest.record(run).save()
        self.changed = True

    def _draw(self) -> None:
        """Redraw once per poll round when a run started or ended, else when the view's
        throttle allows (a redraw renders the PNG of every curve)."""
        if self.view:
            self.view.draw(force=self.changed)
        self.changed = False


def _gpus(gpus: Sequence[int] | None) -> list[int]:
    if gpus is not None:
        return list(gpus)
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def _job_status(job: Any) -> Status:
    """A finished remote job's sweep status: its own, or interrupted when watching stopped."""
    if job.interrupted:
        return Status.INTERRUPTED
    return job.status if job.status.terminal else Status.RUNNING
