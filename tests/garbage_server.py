"""A throwaway HTTP server on loopback that answers what the learning API never promises.

Each path under ``/api/`` is one kind of bad answer (see :data:`GarbageHandler.routes`); the
client tests point a real :class:`~synth_lab.client.SynthClient` at it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DRIP_SECONDS = 0.05
DRIP_FOREVER = 60.0
"""How long a dripping answer goes on at most (the client must give up long before)."""


class GarbageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GarbageServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.route()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.route()

    def route(self) -> None:
        self.server.seen.append(self.path)
        name = self.path.split("?")[0].removeprefix("/api/").replace("/", "_").replace("-", "_")
        handler: Callable[[], None] = getattr(self, f"r_{name}", self.r_not_found)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler()  # the client may give up mid-answer, as it should

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    # -- routes ---------------------------------------------------------------------------------

    def r_not_found(self) -> None:
        self.send(404, b'{"detail": "no such route"}', {"Content-Type": "application/json"})

    def r_redirect(self) -> None:
        self.send(302, b"", {"Location": "http://elsewhere.invalid/api/redirect"})

    def r_learning_jobs(self) -> None:  # a create that redirects, as a misrouted proxy does
        self.send(307, b"moved", {"Location": self.server.url + "/learning/jobs/"})

    def r_html(self) -> None:
        self.send(200, b"<html><body>Please log in</body></html>", {"Content-Type": "text/html"})

    def r_learning_files(self) -> None:  # an upload answered by a login page
        self.r_html()

    def r_empty(self) -> None:
        self.send(200, b"", {"Content-Type": "application/json"})

    def r_drip(self) -> None:
        """Headers at once, then one byte of a JSON body at a time, for a long time."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b'{"padding": "')
        end = time.monotonic() + DRIP_FOREVER
        while time.monotonic() < end and not self.server.stopping.is_set():
            self.wfile.write(b"x")
            self.wfile.flush()
            self.server.stopping.wait(DRIP_SECONDS)

    def r_silent(self) -> None:
        """Headers at once, then nothing."""
        self.send_response(200)
        self.send_header("Content-Length", "10")
        self.end_headers()
        self.wfile.flush()
        self.server.stopping.wait(DRIP_FOREVER)

    def r_huge_declared(self) -> None:
        self.send(200, b"[" + b"0," * 200_000 + b"0]", {"Content-Type": "application/json"})

    def r_huge_chunked(self) -> None:
        """A body without a declared length that keeps coming (chunked encoding)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"0," * 8192
        for _ in range(1000):  # 16 MB if nobody stops reading
            if self.server.stopping.is_set():
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def r_learning_jobs_job_1_events(self) -> None:
        self.send(
            200,
            b'data: {"seq": 1, "type": "sft.progress"}\n\ndata: {"seq": 2, "type": \n\n',
            {"Content-Type": "text/event-stream"},
        )

    def r_learning_jobs_job_2_events(self) -> None:
        self.send(200, b"data: " + b"x" * 200_000 + b"\n\n", {"Content-Type": "text/event-stream"})


class GarbageServer(ThreadingHTTPServer):
    """The garbage-speaking server, on a free loopback port; a context manager."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), GarbageHandler)
        self.seen: list[str] = []
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-answer are the point here

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"

    def __enter__(self) -> GarbageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)
