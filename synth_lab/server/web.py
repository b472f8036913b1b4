"""HTTP plumbing of the server: JSON answers, coded errors, query and body parsing, paths.

Errors are ``{"detail": {"code", "message", ...}, "code", "message"}``; an unexpected
exception is logged with its traceback on the server and answered with a bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from synth_lab.server.errors import RequestError, bad

log = logging.getLogger("synth_lab.server")

MAX_JSON_BYTES = 1 << 20
MAX_INT = 2**63 - 1
"""Largest integer a query parameter may hold (SQLite's INTEGER)."""


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def error_response(exc: RequestError) -> Response:
    headers = {"x-should-retry": "false"} if exc.status == 409 else {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return json_response(exc.body(), exc.status, headers)


def int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(
            "invalid_request", f"query parameter '{name}' must be an integer", field=name
        ) from None
    if abs(value) > MAX_INT:
        raise bad(
            "invalid_request",
            f"query parameter '{name}' is out of range (at most {MAX_INT})",
            field=name,
        )
    value = max(low, value)
    return min(high, value) if high is not None else value


async def read_json(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise RequestError(413, "payload_too_large", "the JSON body is too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise RequestError(413, "payload_too_large", "the JSON body is too large")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad("invalid_payload", f"the body is not valid JSON: {exc}") from None


async def request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return error_response(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(RequestError(exc.status_code, code, str(exc.detail)))


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(RequestError(500, "internal_error", "internal server error"))


class StripTrailingSlash:
    """ASGI middleware: ``/api/files/`` is routed as ``/api/files``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        await self.app(scope, receive, send)
