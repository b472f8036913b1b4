"""Run a learning API server next to your code (a notebook, a demo, a test).

:class:`ServerProcess` starts ``synth-lab serve`` in a subprocess on a free loopback port and
waits until ``/health`` answers::

    with ServerProcess("server-data", extra_args=["--accept-any-compute"]) as server:
        os.environ["SYNTH_BACKEND_URL_OVERRIDE"] = server.url
        os.environ["SYNTH_API_KEY"] = server.api_key
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from synth_lab._procs import free_port, log_tail, start_group, stop_group

__all__ = ["ServerProcess", "free_port"]


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

    #: The module run with ``python -m`` (it takes the options of ``synth-lab serve``).
    module = "synth_lab.server"

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
        command = [sys.executable, "-m", self.module, "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        command += ["--log-level", "warning"]
        if not {"--keys-file", "--api-key-file"} & set(self.extra_args):
            command += ["--api-key", self.api_key]
        env = {**os.environ, **self.env}
        env.pop("SYNTH_API_KEY", None)
        with open(self.log_path, "ab") as log:
            self.process = start_group(command + self.extra_args, log=log, env=env)
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
        return stop_group(process, sig, timeout)

    def restart(self, sig: int = signal.SIGTERM) -> ServerProcess:
        """Stop and start again on the same port and data folder."""
        self.stop(sig)
        return self.start()

    def log(self) -> str:
        """The server's output so far (its last 4 KB)."""
        return log_tail(self.log_path, 4096)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
