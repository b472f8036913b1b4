"""Reading an answer within what the API promises: a size cap, an overall deadline, real JSON.

A body is read through :class:`GuardedStream`, which stops at ``max_bytes`` or at the deadline
instead of letting a runaway server grow the client's memory or keep a call waiting one byte
at a time. Failures are :class:`~synth_lab.client.errors.APIResponseValidationError` (and its
:class:`~synth_lab.client.errors.ResponseTooLargeError`) or
:class:`~synth_lab.client.errors.DeadlineExceededError`; none of them is retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson

from synth_lab.client.errors import (
    APIResponseValidationError,
    DeadlineExceededError,
    ResponseTooLargeError,
)

EXCERPT_CHARS = 200

Redact = Callable[[str], str]


def excerpt(content: bytes | str, redact: Redact) -> str:
    """The first :data:`EXCERPT_CHARS` characters of a body, credentials masked."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    text = text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else "")
    return redact(text)


def invalid_answer(
    response: httpx.Response, what: str, redact: Redact, *, content: bytes | str = b""
) -> APIResponseValidationError:
    """The error for an answer that breaks the API's promise (``what`` says how)."""
    method, url = response.request.method, redact(str(response.request.url))
    body = excerpt(content, redact)
    shown = f": {body!r}" if body else ""
    return APIResponseValidationError(
        f"{method} {url} answered {response.status_code} with {what}{shown}",
        status_code=response.status_code,
        body=body,
        method=method,
        url=url,
    )


def too_large(response: httpx.Response, limit: int, redact: Redact) -> ResponseTooLargeError:
    method, url = response.request.method, redact(str(response.request.url))
    return ResponseTooLargeError(
        f"{method} {url} answered {response.status_code} with more than {limit:,} bytes; "
        "stopped reading",
        status_code=response.status_code,
        method=method,
        url=url,
        hint="raise max_response_bytes= on the client if this answer is expected to be large",
    )


def deadline_exceeded(method: str, url: str, seconds: float) -> DeadlineExceededError:
    return DeadlineExceededError(
        f"{method} {url} took longer than its {seconds:g}s deadline; gave up",
        url=url,
        hint="the server is answering too slowly; raise deadline= (or timeout=) on the client",
    )


class GuardedStream(httpx.SyncByteStream):
    """A response's byte stream that stops past ``limit`` bytes or past ``deadline_at``.

    Args:
        stream: The response's own stream.
        limit: Most bytes accepted.
        deadline_at: ``time.monotonic()`` value after which reading stops (``None``: none).
        on_limit: Makes the error raised past ``limit``.
        on_deadline: Makes the error raised past the deadline.
    """

    def __init__(
        self,
        stream: Any,
        *,
        limit: int,
        deadline_at: float | None,
        on_limit: Callable[[], Exception],
        on_deadline: Callable[[], Exception],
    ) -> None:
        self._stream = stream
        self._limit = limit
        self._deadline_at = deadline_at
        self._on_limit = on_limit
        self._on_deadline = on_deadline

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._stream:
            size += len(chunk)
            if size > self._limit:
                raise self._on_limit()
            if self._deadline_at is not None and time.monotonic() > self._deadline_at:
                raise self._on_deadline()
            yield chunk

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def parse_json(response: httpx.Response, redact: Redact, *, allow_empty: bool = False) -> Any:
    """The JSON of a successful answer.

    Raises:
        APIResponseValidationError: The body is empty (unless ``allow_empty``: then ``{}``)
            or is not JSON.
    """
    content = response.content
    if not content.strip():
        if allow_empty:
            return {}
        raise invalid_answer(response, "an empty body where JSON was expected", redact)
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        raise invalid_answer(response, "a body that is not JSON", redact, content=content) from None


def capped_lines(
    chunks: Iterator[bytes], limit: int, on_limit: Callable[[], Exception]
) -> Iterator[str]:
    """Text lines (``\\n`` or ``\\r\\n`` ended) of a byte stream; a line over ``limit`` is an
    error raised before it is held whole in memory."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode("utf-8", "replace")
        if len(pending) > limit:
            raise on_limit()
    if pending:
        yield pending.rstrip(b"\r").decode("utf-8", "replace")
