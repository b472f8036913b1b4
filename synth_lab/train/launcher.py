"""Start N training processes from the caller (a notebook kernel, the CLI) and watch them.

Workers are fresh interpreters (``python -m synth_lab.train.worker``), never forks, so whatever
the kernel did before (CUDA initialised, bitsandbytes imported, an Accelerator made) does not
matter. Each worker runs in its own session, so the group can be killed as a whole and a
terminal's Ctrl-C reaches only the caller, which forwards it as a polite stop request.

Every worker gets one pipe back to the caller. Rank 0 sends its metric points through it as they
are made (into the caller's loggers and live view) and finally its summary; any rank that fails
sends its traceback. A worker that dies without a word is reported with the tail of its log.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from synth_lab._procs import free_port, log_tail, signal_group, start_group
from synth_lab.errors import TrainingError
from synth_lab.train.metrics import BaseLogger, MetricPoint, RunInfo
from synth_lab.train.spec import TrainSpec

EVENT_FD_ENV = "SYNTH_LAB_EVENT_FD"
_GRACE_S = 10.0  # after one worker fails, how long the others get before they are killed


class PipeLogger(BaseLogger):
    """Worker side: sends start/points/finish events to the caller as JSON lines."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "wb", buffering=0)

    def send(self, event: Mapping[str, Any]) -> None:
        if not self._file.closed:
            self._file.write(orjson.dumps(event, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")

    def start(self, info: RunInfo) -> None:
        self.send({"type": "start", "info": info.to_dict()})

    def log(self, points: Any) -> None:
        self.send({"type": "points", "points": [p.to_dict() for p in points]})

    def finish(self, status: str) -> None:
        self.send({"type": "finish", "status": status})

    def close(self) -> None:
        self._file.close()


class _Worker:
    def __init__(self, rank: int, proc: subprocess.Popen[bytes], fd: int, log: Path) -> None:
        self.rank, self.proc, self.fd, self.log = rank, proc, fd, log
        self.buffer = b""
        self.open = True

    def log_tail(self, n: int = 4000) -> str:
        return log_tail(self.log, n)


def launch(spec: TrainSpec, nproc: int, logger: Any, *, device_type: str = "cpu") -> dict:
    """Run ``spec`` on ``nproc`` worker processes; return rank 0's summary.

    Raises:
        TrainingError: A worker failed (with its traceback) or died.
        KeyboardInterrupt: Interrupted twice, or before training started.
    """
    with tempfile.TemporaryDirectory(prefix="synth-lab-run-") as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(spec.to_json(), encoding="utf-8")
        workers = _start(spec_file, nproc, Path(tmp), device_type)
        try:
            return _watch(workers, logger)
        finally:
            _kill(workers)


def _start(spec_file: Path, nproc: int, tmp: Path, device_type: str) -> list[_Worker]:
    port = free_port()
    threads = max(1, (os.cpu_count() or 1) // nproc)
    workers: list[_Worker] = []
    try:
        for rank in range(nproc):
            read_fd, write_fd = os.pipe()
            env = dict(os.environ)
            env.update(
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE=str(nproc),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
                SYNTH_LAB_DEVICE=device_type,
                **{EVENT_FD_ENV: str(write_fd)},
            )
            env.setdefault("OMP_NUM_THREADS", str(threads))
            log = tmp / f"rank{rank}.log"
            with log.open("wb") as log_file:
                command = [sys.executable, "-m", "synth_lab.train.worker", str(spec_file)]
                proc = start_group(command, log=log_file, env=env, pass_fds=(write_fd,))
            os.close(write_fd)
            os.set_blocking(read_fd, False)
            workers.append(_Worker(rank, proc, read_fd, log))
    except BaseException:
        _kill(workers)
        raise
    return workers


def _watch(workers: list[_Worker], logger: Any) -> dict:
    """Relay events until every worker has exited; interpret how they ended."""
    selector = selectors.DefaultSelector()
    for w in workers:
        selector.register(w.fd, selectors.EVENT_READ, w)
    summary: dict | None = None
    errors: list[tuple[int, str]] = []
    failed_at: float | None = None
    interrupted = False
    try:
        while any(w.open for w in workers) or any(w.proc.poll() is None for w in workers):
            try:
                for key, _ in selector.select(timeout=0.2):
                    worker: _Worker = key.data
                    for event in _read_events(worker, selector):
                        if event["type"] == "error" and event.get("interrupted"):
                            interrupted = True
                        elif event["type"] == "error":
                            errors.append((worker.rank, event["traceback"]))
                            failed_at = failed_at or time.monotonic()
                        elif event["type"] == "result":
                            summary = event["summary"]
                        else:
                            _relay(event, logger)
                dead = [w for w in workers if (w.proc.poll() or 0) != 0]
                if dead and failed_at is None and not interrupted:
                    failed_at = time.monotonic()
                if failed_at is not None and time.monotonic() - failed_at > _GRACE_S:
                    break  # the survivors are likely stuck in a collective: kill them
            except KeyboardInterrupt:
                if interrupted:
                    raise  # a second Ctrl-C: stop waiting for a clean checkpoint
                interrupted = True
                _signal(workers, signal.SIGINT)  # workers stop at the next step and checkpoint
    finally:
        selector.close()
    if summary is not None and not errors:
        return summary
    # A rank that dies takes its peers' collectives down with "connection reset" errors: those
    # are symptoms; report the cause (a real traceback, else the rank killed by a signal).
    causes = [(r, t) for r, t in errors if not _is_peer_symptom(t)]
    if causes:
        rank, trace = causes[0]
        raise TrainingError(
            f"worker {rank} of {len(workers)} failed:\n{trace.rstrip()}",
            hint="the traceback above is the worker's; fix the cause and run again "
            "(resume=True continues from the last checkpoint)",
        )
    if interrupted and not errors:
        raise KeyboardInterrupt
    codes = {w.rank: w.proc.poll() for w in workers}
    died = [w for w in workers if codes[w.rank] is not None and codes[w.rank] < 0]
    silent = [w for w in workers if w.rank not in {r for r, _ in errors}]
    bad = (died or silent or workers)[0]
    raise TrainingError(
        f"worker {bad.rank} of {len(workers)} exited with code {codes[bad.rank]} without a "
        f"result; its output ends with:\n{bad.log_tail()}",
        hint="a negative code is the signal that killed it (-9: out of memory, -11: a crash "
        "in native code)",
    )


def _is_peer_symptom(trace: str) -> bool:
    markers = ("Connection reset by peer", "Connection closed by peer", "NCCL communicator")
    return any(m in trace for m in markers)


def _read_events(worker: _Worker, selector: selectors.BaseSelector) -> list[dict]:
    try:
        chunk = os.read(worker.fd, 1 << 16)
    except BlockingIOError:
        return []
    if not chunk:
        selector.unregister(worker.fd)
        os.close(worker.fd)
        worker.open = False
        chunk = b"\n"
    lines = (worker.buffer + chunk).split(b"\n")
    worker.buffer = lines.pop()
    return [orjson.loads(line) for line in lines if line.strip()]


def _relay(event: dict, logger: Any) -> None:
    kind = event["type"]
    if kind == "points":
        logger.log([MetricPoint.from_dict(p) for p in event["points"]])
    elif kind == "start" and hasattr(logger, "start"):
        logger.start(RunInfo(**event["info"]))
    elif kind == "finish" and hasattr(logger, "finish"):
        logger.finish(event["status"])


def _signal(workers: list[_Worker], sig: int) -> None:
    for w in workers:
        if w.proc.poll() is None:
            signal_group(w.proc, sig)


def _kill(workers: list[_Worker]) -> None:
    """Leave no process behind: TERM each worker's group, then KILL what is left."""
    _signal(workers, signal.SIGTERM)
    deadline = time.monotonic() + 5.0
    for w in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    _signal(workers, signal.SIGKILL)
    for w in workers:
        # The group may hold children (compile workers...) even after the leader exited.
        signal_group(w.proc, signal.SIGKILL)
        w.proc.wait()
        if w.open:
            with contextlib.suppress(OSError):
                os.close(w.fd)
            w.open = False
