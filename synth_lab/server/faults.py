"""Fault injection for tests: answer the first N matching requests with an error status.

Enabled only by the hidden ``--fault`` option of ``synth-lab serve`` (or ``faults=`` of
:func:`~synth_lab.server.app.create_app`). A spec is ``STATUS:COUNT[:METHOD][:PATH_PREFIX]``,
for example ``503:2:POST:/api/learning/jobs`` or ``429:3``; the error carries
``Retry-After: 0`` so that clients honouring it retry at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


@dataclass
class Fault:
    """Fail the first ``count`` requests matching ``method`` and ``prefix`` with ``status``."""

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
    """ASGI middleware applying a list of :class:`Fault` in order."""

    def __init__(self, app: ASGIApp, faults: list[Fault]) -> None:
        self.app = app
        self.faults = faults
        self.injected = 0
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
                    self.injected += 1
                    return fault.status
        return 0
