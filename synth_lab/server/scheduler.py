"""Runs started jobs in worker subprocesses: one per GPU it needs, or one at a time on CPU.

A background thread launches queued jobs when devices are free (fair across tenants, oldest
first within one: :func:`~synth_lab.server.limits.fair_order`), reaps workers that end,
and marks a job ``failed`` with the tail of its log when its worker died without saying how it
ended. Cancelling marks the job ``cancelled`` and terminates the worker's process group.
On start it recovers jobs that were running when the server stopped: they are queued again
and resume from their last checkpoint (at most :data:`MAX_ATTEMPTS` times).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from synth_lab._procs import log_tail, signal_group, start_group
from synth_lab.server.limits import Limits, fair_order
from synth_lab.server.store import Store
from synth_lab.server.worker import DEFAULT_RUNNER

log = logging.getLogger("synth_lab.server")

MAX_ATTEMPTS = 3
"""A job interrupted by server restarts this many times is failed instead of resumed again."""


@dataclass
class _Worker:
    job_id: str
    owner: str
    process: subprocess.Popen[bytes]
    devices: list[int]
    log_file: IO[bytes]
    kill_at: float | None = None


def gpu_environment(devices: list[int], server_env: Mapping[str, str]) -> dict[str, str]:
    """``CUDA_VISIBLE_DEVICES`` for a job given the server's GPUs ``devices`` (0, 1, ...).

    The server's GPUs are those its own ``CUDA_VISIBLE_DEVICES`` lists, when set (indices,
    ``GPU-`` UUIDs or ``MIG-`` ids): job device ``i`` is entry ``i`` of that list, not physical
    GPU ``i``. Ordinals are read in PCI bus order, as ``nvidia-smi`` numbers them, unless the
    server was given another ``CUDA_DEVICE_ORDER``.
    """
    visible = server_env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        ids = [str(d) for d in devices]
    else:
        entries = [v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1"]
        ids = [entries[d] for d in devices]
    order = server_env.get("CUDA_DEVICE_ORDER") or "PCI_BUS_ID"
    return {"CUDA_VISIBLE_DEVICES": ",".join(ids), "CUDA_DEVICE_ORDER": order}


@dataclass
class Scheduler:
    """Starts, watches and stops the worker subprocesses.

    Args:
        store: The database.
        data_dir: The server's data folder (jobs live in ``data_dir/jobs/<id>``).
        gpus: GPUs on this machine (0: one CPU job at a time).
        runner: ``module:function`` of the training entry point.
        poll_interval: Seconds between checks when nothing wakes the thread.
        grace: Seconds a worker gets to stop before it is killed.
        limits: Per-tenant running-job cap used by the fair order.
        private_env: Environment variables workers do not inherit (API keys), by name;
            any variable whose value is one of ``private_values`` is dropped too.
        private_values: Secret values (the accepted API keys).
    """

    store: Store
    data_dir: Path
    gpus: int = 0
    runner: str = DEFAULT_RUNNER
    poll_interval: float = 0.25
    grace: float = 10.0
    limits: Limits = field(default_factory=Limits)
    private_env: tuple[str, ...] = ("SYNTH_API_KEY", "SYNTH_LAB_SERVER_API_KEY")
    private_values: frozenset[str] = frozenset()
    _workers: dict[str, _Worker] = field(default_factory=dict)
    _served: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Recover interrupted jobs, then start the scheduling thread."""
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="synth-lab-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Interrupt every worker (they checkpoint), wait ``grace`` seconds, kill the rest.

        Their jobs stay ``running`` in the database; the next :meth:`start` resumes them.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            signal_group(worker.process, signal.SIGINT)
        deadline = time.monotonic() + self.grace
        for worker in workers:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(worker.process, signal.SIGKILL)
                worker.process.wait()
            worker.log_file.close()
        self.store.close()

    def wake(self) -> None:
        """Look at the queue now (a job was started or cancelled)."""
        self._wake.set()

    def recover(self) -> None:
        """Queue again the jobs a previous server left running."""
        for row in self.store.jobs_with_status("running"):
            attempts = int(row["attempts"]) + 1
            if attempts > MAX_ATTEMPTS:
                reason = f"interrupted by {attempts - 1} server restarts; not resumed again"
                self.store.set_status(
                    row["id"], "failed", error=reason, event=("sft.job.failed", "error", reason, {})
                )
                continue
            message = "server restarted; the job resumes from its last checkpoint"
            self.store.set_status(
                row["id"],
                "queued",
                attempts_delta=1,
                event=("sft.job.resumed", "warning", message, {"attempt": attempts}),
            )

    # -- requests from the API --------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Mark the job cancelled and stop its worker; false if it had already ended."""
        changed = self.store.set_status(
            job_id,
            "cancelled",
            event=("sft.job.cancelled", "info", "job cancelled on request", {}),
        )
        with self._lock:
            worker = self._workers.get(job_id)
            if worker is not None and worker.kill_at is None:
                signal_group(worker.process, signal.SIGTERM)
                worker.kill_at = time.monotonic() + self.grace
        self._wake.set()
        return changed

    @property
    def running(self) -> list[str]:
        """Ids of the jobs with a live worker."""
        with self._lock:
            return list(self._workers)

    # -- the loop -------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                self._launch()
            except Exception:  # keep scheduling whatever one job did
                log.exception("scheduler step failed")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _free_devices(self) -> list[int]:
        used = {d for w in self._workers.values() for d in w.devices}
        return [d for d in range(self.gpus) if d not in used]

    def _launch(self) -> None:
        with self._lock:
            running: dict[str, int] = {}
            for worker in self._workers.values():
                running[worker.owner] = running.get(worker.owner, 0) + 1
        for row in fair_order(self.store.runnable_jobs(), running, self.limits, self._served):
            with self._lock:
                if self._stop.is_set() or row["id"] in self._workers:
                    continue
                if self.gpus == 0:
                    if self._workers:
                        return
                    devices: list[int] = []
                else:
                    free = self._free_devices()
                    need = min(max(int(row["gpus"]), 1), self.gpus)
                    if len(free) < need:
                        return  # in fair order: later jobs wait too
                    devices = free[:need]
                if not self.store.set_status(row["id"], "running", expect=("queued",)):
                    continue
                self._workers[row["id"]] = self._spawn(row["id"], row["owner"], devices)
                self._served[row["owner"]] = max(self._served.values(), default=0) + 1

    def worker_env(self) -> dict[str, str]:
        """The environment workers start with: the server's, without its API keys."""
        return {
            name: value
            for name, value in os.environ.items()
            if name not in self.private_env and value.strip() not in self.private_values
        }

    def _spawn(self, job_id: str, owner: str, devices: list[int]) -> _Worker:
        job_dir = self.data_dir / "jobs" / job_id
        job_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        log_file = open(job_dir / "worker.log", "ab")  # noqa: SIM115 - closed when reaped
        env = self.worker_env()
        env.update(gpu_environment(devices, os.environ))
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONUNBUFFERED"] = "1"
        command = [
            sys.executable,
            "-m",
            "synth_lab.server.worker",
            "--data-dir",
            str(self.data_dir),
            "--job-id",
            job_id,
            "--runner",
            self.runner,
        ]
        process = start_group(command, log=log_file, env=env)
        log.info("job %s: worker %d started on %s", job_id, process.pid, devices or "cpu")
        return _Worker(job_id, owner, process, devices, log_file)

    def _reap(self) -> None:
        with self._lock:
            ended = [w for w in self._workers.values() if w.process.poll() is not None]
            for worker in self._workers.values():
                if worker.kill_at is not None and time.monotonic() > worker.kill_at:
                    signal_group(worker.process, signal.SIGKILL)
            for worker in ended:
                del self._workers[worker.job_id]
        for worker in ended:
            worker.log_file.close()
            code = worker.process.returncode
            reason = f"the worker exited with code {code} before the job ended"
            changed = self.store.set_status(
                worker.job_id,
                "failed",
                error=reason,
                event=("sft.job.failed", "error", reason, {"exit_code": code}),
            )
            if changed:  # the log names server paths: it stays in the server's log
                tail = log_tail(
                    self.data_dir / "jobs" / worker.job_id / "worker.log", 8192, lines=20
                )
                log.warning(
                    "job %s: worker exited with %s; its log ends:\n%s", worker.job_id, code, tail
                )
            else:
                log.info("job %s: worker exited with %s", worker.job_id, code)
