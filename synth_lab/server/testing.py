"""Helpers to run a learning API server next to your code: tests, demos, notebooks.

:class:`ServerProcess` starts ``synth-lab serve`` in a subprocess on a free loopback port and
waits until ``/health`` answers; :func:`fake_run` is a stand-in trainer (no torch) that logs a
plausible loss curve and checkpoints, for exercising the job machinery quickly.
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from synth_lab.metrics import TRAIN_LOSS, TRAIN_LR, VAL_LOSS


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``synth-lab serve`` in a subprocess; a context manager.

    Args:
        data_dir: The server's data folder (reuse it across restarts to keep the state).
        api_key: The key to accept (a random one by default), or use ``extra_args`` with
            ``--keys-file`` or ``--api-key-file``.
        port: The port (a free one by default; kept across :meth:`restart`).
        extra_args: More ``serve`` options (``--model-map``, ``--accept-any-compute`` ...).
        env: Extra environment variables for the server and its workers.
        startup_timeout: Seconds to wait for ``/health``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        api_key: str | None = None,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.api_key = api_key or "sk-test-" + secrets.token_hex(16)
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:PORT/api``)."""
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> ServerProcess:
        """Start the server and wait until it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "synth_lab.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "warning",
        ]
        if not {"--keys-file", "--api-key-file"} & set(self.extra_args):
            command += ["--api-key", self.api_key]
        env = {**os.environ, **self.env}
        env.pop("SYNTH_API_KEY", None)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command + self.extra_args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Poll ``/health`` until it answers 200 (bounded by ``startup_timeout``)."""
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.05
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"the server exited early:\n{self.log()}")
                try:
                    if client.get(self.url + "/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the server did not answer in time:\n{self.log()}")
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Stop the server (graceful with SIGTERM); returns its exit code."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def restart(self, sig: int = signal.SIGTERM) -> ServerProcess:
        """Stop and start again on the same port and data folder."""
        self.stop(sig)
        return self.start()

    def log(self) -> str:
        """The server's output so far (its last 4 KB)."""
        try:
            return self.log_path.read_bytes()[-4096:].decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class FakeResult:
    """What :func:`fake_run` returns (the fields of the trainer's result that servers read)."""

    status: str
    steps: int
    metrics: dict[str, float]


def fake_run(
    config: Any,
    dataset: Any,
    *,
    output_dir: str | os.PathLike[str],
    resume: bool = False,
    logger: Any = None,
    max_steps: int | None = None,
    **_: Any,
) -> FakeResult:
    """A trainer stand-in: one step per record of ``dataset``, with a decaying loss.

    Each step takes ``SYNTH_LAB_FAKE_STEP_SECONDS`` (default 0.02). A checkpoint marker is
    written every 5 steps and ``val.loss`` logged there; ``resume=True`` continues after the
    last marker, as the real trainer does. A record containing ``fake-fail`` makes the step of
    its line raise.
    """
    from synth_lab.train.metrics import MetricPoint, RunInfo

    lines = [line for line in Path(dataset).read_bytes().splitlines() if line.strip()]
    total = max_steps or len(lines)
    delay = float(os.environ.get("SYNTH_LAB_FAKE_STEP_SECONDS", "0.02"))
    fail_at = next((i for i, line in enumerate(lines, 1) if b"fake-fail" in line), 0)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = sorted(int(p.name[5:]) for p in out.glob("step-*")) if resume else []
    start = done[-1] if done else 0
    if logger is not None and hasattr(logger, "start"):
        logger.start(RunInfo(total_steps=total, start_step=start, model="fake", mode="fake"))
    step = start
    try:
        for step in range(start + 1, total + 1):
            time.sleep(delay)
            if step == fail_at:
                raise RuntimeError(f"injected failure at step {step}")
            loss = 2.0 * math.exp(-step / 10.0) + 0.1
            points = [
                MetricPoint(TRAIN_LOSS, loss, step, step / total),
                MetricPoint(TRAIN_LR, 1e-4, step, step / total),
            ]
            if step % 5 == 0:
                points.append(MetricPoint(VAL_LOSS, loss + 0.05, step, step / total, "validation"))
                (out / f"step-{step:06d}").mkdir(exist_ok=True)
            if logger is not None:
                logger.log(points)
    except KeyboardInterrupt:
        return FakeResult("interrupted", step - 1, {})
    return FakeResult("succeeded", total, {TRAIN_LOSS: 2.0 * math.exp(-total / 10.0) + 0.1})


def restart_while_watching(
    server: ServerProcess, watcher: Any, *, after_step: int, sig: int, timeout: float
) -> None:
    """Watch ``watcher`` (a ``RemoteJob``) to its end in a thread, restarting ``server`` with
    ``sig`` once a metric point at ``after_step`` or later has been seen.

    Raises:
        AssertionError: The watch did not end within ``timeout`` or raised (its error attached).
    """
    import threading

    errors: list[BaseException] = []

    def watch() -> None:
        try:
            watcher.wait(timeout, live=False)
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)

    thread = threading.Thread(target=watch)
    thread.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # until training is under way (bounded)
        if any(p["step"] >= after_step for p in watcher.points):
            break
        time.sleep(0.05)
    server.restart(sig)
    thread.join(timeout)
    assert not thread.is_alive() and not errors, errors
