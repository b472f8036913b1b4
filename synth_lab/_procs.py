"""Subprocess groups: start one in its own session, signal or stop it whole, read its log's tail.

The training launcher, the server's scheduler and :class:`~synth_lab.server.process.
ServerProcess` all run children this way, so that a whole group (a worker and whatever it
started) can be stopped at once and a terminal's Ctrl-C reaches only the caller.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO, Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_group(
    command: Sequence[str],
    *,
    log: IO[bytes],
    env: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new session (its own process group), output into ``log``."""
    return subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        start_new_session=True,
        **kwargs,
    )


def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the process group of ``process`` (gone already: nothing to do)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    except AttributeError:  # pragma: no cover - no process groups on this platform
        process.send_signal(sig)


def stop_group(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0
) -> int:
    """Send ``sig`` to the group leader, wait up to ``timeout``, then kill the whole group.

    Returns:
        The leader's exit code.
    """
    if process.poll() is None:
        process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    # The group may hold children (compile workers...) even after the leader exited.
    signal_group(process, signal.SIGKILL)
    process.wait()
    return process.returncode


def log_tail(path: str | os.PathLike[str], nbytes: int = 4096, lines: int | None = None) -> str:
    """The last ``nbytes`` of a log file as text (its last ``lines`` lines when given)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - nbytes))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:]) if lines else text
