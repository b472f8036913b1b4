"""Test doubles for the learning API server (they live under tests/, never in the package).

- :func:`fake_run` and :func:`final_run`: stand-in trainers (no torch) that log a plausible loss
  curve and checkpoints, for exercising the job machinery quickly.
- :class:`Fault` and :class:`FaultMiddleware`: answer the first N matching requests with an
  error status.
- ``python -m server_doubles``: the server with those injected, via ``--runner``, ``--gpus``
  and ``--fault`` on top of the options of ``synth-lab serve``; :class:`FakeServer` runs it.
- :func:`restart_while_watching`: restart a server while a client watches a job.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from synth_lab.errors import SynthLabError
from synth_lab.server.process import ServerProcess
from synth_lab.train.result import TrainResult

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

TESTS = Path(__file__).resolve().parent
FAKE = "server_doubles:fake_run"
FINAL = "server_doubles:final_run"


def fake_run(
    config: Any,
    dataset: Any,
    *,
    output_dir: str | os.PathLike[str],
    resume: bool = False,
    logger: Any = None,
    max_steps: int | None = None,
    **_: Any,
) -> TrainResult:
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
    logged: list[MetricPoint] = []
    try:
        for step in range(start + 1, total + 1):
            time.sleep(delay)
            if step == fail_at:
                raise RuntimeError(f"injected failure at step {step}")
            loss = 2.0 * math.exp(-step / 10.0) + 0.1
            points = [
                MetricPoint("train.loss", loss, step, step / total),
                MetricPoint("train.learning_rate", 1e-4, step, step / total),
            ]
            if step % 5 == 0:
                points.append(
                    MetricPoint("val.loss", loss + 0.05, step, step / total, "validation")
                )
                (out / f"step-{step:06d}").mkdir(exist_ok=True)
            logged += points
            if logger is not None:
                logger.log(points)
    except KeyboardInterrupt:
        return TrainResult("interrupted", step - 1, out, points=logged)
    return TrainResult("succeeded", total, out, points=logged)


def final_run(config: Any, dataset: Any, *, output_dir: Any, **kwargs: Any) -> TrainResult:
    """:func:`fake_run`, plus a final model folder (``final/config.json``) and the worker's
    environment (``env.json``) in ``output_dir``: tests use a job's output as a model and see
    what a worker inherits."""
    result = fake_run(config, dataset, output_dir=output_dir, **kwargs)
    out = Path(output_dir)
    (out / "env.json").write_text(json.dumps(dict(os.environ)))
    if result.status == "succeeded":
        result.final_dir = out / "final"
        result.final_dir.mkdir(exist_ok=True)
        (result.final_dir / "config.json").write_text(json.dumps({"base": str(config.job.model)}))
    return result


_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


@dataclass
class Fault:
    """Fail the first ``count`` requests matching ``method`` and ``prefix`` with ``status``.

    A spec is ``STATUS:COUNT[:METHOD][:PATH_PREFIX]``, for example
    ``503:2:POST:/api/learning/jobs`` or ``429:3``.
    """

    status: int
    count: int
    method: str = ""
    prefix: str = ""

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Parse ``STATUS:COUNT[:METHOD][:PATH_PREFIX]``."""
        parts = spec.split(":", 3)
        if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ValueError(f"bad fault spec {spec!r}: expected STATUS:COUNT[:METHOD][:PATH]")
        fault = cls(int(parts[0]), int(parts[1]))
        rest = parts[2:]
        if rest and rest[0].upper() in _METHODS:
            fault.method = rest.pop(0).upper()
        if rest:
            fault.prefix = ":".join(rest)
        return fault

    def matches(self, method: str, path: str) -> bool:
        return (not self.method or method == self.method) and path.startswith(self.prefix)


class FaultMiddleware:
    """ASGI middleware applying a list of :class:`Fault` in order; the error carries
    ``Retry-After: 0`` so that clients honouring it retry at once."""

    def __init__(self, app: ASGIApp, faults: list[Fault]) -> None:
        self.app = app
        self.faults = faults
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].endswith("/health"):
            status = self._take(scope["method"], scope["path"])
            if status:
                body = orjson.dumps(
                    {"detail": {"code": "fault_injected", "message": f"injected {status}"}}
                )
                headers = [
                    (b"content-type", b"application/json"),
                    (b"retry-after", b"0"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _take(self, method: str, path: str) -> int:
        with self._lock:
            for fault in self.faults:
                if fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    return fault.status
        return 0


class FakeServer(ServerProcess):
    """:class:`ServerProcess` running ``python -m server_doubles``: ``extra_args`` may add
    ``--runner``, ``--gpus`` and ``--fault``. This folder goes on the server's (and so its
    workers') ``PYTHONPATH`` so that runners here can be named."""

    module = "server_doubles"

    def __init__(self, data_dir: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(data_dir, **kwargs)
        path = self.env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), path) if p)


def restart_while_watching(
    server: ServerProcess, watcher: Any, *, after_step: int, sig: int, timeout: float
) -> None:
    """Watch ``watcher`` (a ``RemoteJob``) to its end in a thread, restarting ``server`` with
    ``sig`` once a metric point at ``after_step`` or later has been seen.

    Raises:
        AssertionError: The watch did not end within ``timeout`` or raised (its error attached).
    """
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m server_doubles``: ``synth-lab serve`` with a stand-in trainer and faults."""
    from synth_lab.server.app import create_app
    from synth_lab.server.cli import add_arguments, serve, settings_from

    parser = argparse.ArgumentParser(prog="server_doubles")
    add_arguments(parser)
    parser.add_argument("--runner", default=FAKE, help="module:function the workers train with")
    parser.add_argument("--gpus", type=int, default=None, help="GPUs to schedule on")
    parser.add_argument("--fault", action="append", default=[], help="STATUS:COUNT[:METHOD][:PATH]")
    args = parser.parse_args(argv)
    try:
        settings, where = settings_from(args)
        faults = [Fault.parse(spec) for spec in args.fault]
    except (SynthLabError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    settings = dataclasses.replace(settings, runner=args.runner, gpus=args.gpus)
    app = create_app(settings)
    if faults:
        app.add_middleware(FaultMiddleware, faults=faults)
    return serve(app, args, where)


if __name__ == "__main__":
    sys.exit(main())
