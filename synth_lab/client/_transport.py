"""One attempt of a request on the wire, within what the API promises.

:class:`Wire` builds the request (a JSON body, or a multipart upload streamed from disk), sends
it and reads the answer under a size cap (``limit``) and a per-attempt ``deadline``. Retrying
is the caller's business (:meth:`synth_lab.client._base.BaseClient.request`); a failure on the
wire becomes a typed error here (:func:`connection_error`, :class:`DeadlineExceededError`,
:class:`ResponseTooLargeError`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from synth_lab.client._response import GuardedStream, deadline_exceeded, too_large
from synth_lab.client.errors import APIConnectionError, APITimeoutError

Upload = tuple[str | os.PathLike[str], Mapping[str, str]]
"""``(path, form fields)``: a multipart body with the file as part ``file``."""


@dataclass(frozen=True)
class Wire:
    """Sends one attempt with ``http`` and reads its answer.

    Attributes:
        http: The ``httpx.Client`` to send with.
        deadline: Seconds the attempt may take from sending to the answer's last byte
            (``None``: the timeout's read value).
        limit: The largest answer read, in bytes.
        redact: Masks credentials in what errors say.
    """

    http: httpx.Client
    deadline: float | None
    limit: int
    redact: Callable[[str], str]

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: dict[str, Any],
        content: bytes | None,
        upload: Upload | None,
        timeout: httpx.Timeout,
    ) -> httpx.Response:
        """Send once; the answer comes back with its body read (see :meth:`read`)."""
        seconds = self.deadline if self.deadline is not None else timeout.read
        deadline_at = time.monotonic() + seconds if seconds is not None else None
        try:
            if upload is None:
                request = self.http.build_request(
                    method,
                    url,
                    headers=headers,
                    params=params,
                    content=content,
                    timeout=within(timeout, deadline_at),
                )
                response = self.http.send(request, stream=True)
            else:
                path, fields = upload
                deadline_at = None  # sending a large file may take long; the timeouts bound it
                # The file object is read in 64 KiB chunks while sending: memory stays flat.
                with open(path, "rb") as handle:
                    request = self.http.build_request(
                        method,
                        url,
                        headers=headers,
                        params=params,
                        data=dict(fields),
                        files={"file": (Path(path).name, handle, "application/jsonl")},
                        timeout=timeout,
                    )
                    response = self.http.send(request, stream=True)
                # The deadline bounds the answer to the upload.
                deadline_at = time.monotonic() + seconds if seconds is not None else None
            self.read(response, deadline_at, seconds or 0.0)
        except httpx.TimeoutException:
            if deadline_at is not None and time.monotonic() >= deadline_at:
                raise deadline_exceeded(method, self.redact(url), seconds or 0.0) from None
            raise
        return response

    def read(self, response: httpx.Response, deadline_at: float | None, seconds: float) -> None:
        """Read the body into ``response`` within the size cap and the deadline."""
        limit = self.limit
        declared = response.headers.get("content-length", "")
        try:
            if declared.isdigit() and int(declared) > limit:
                raise too_large(response, limit, self.redact)
            response.stream = GuardedStream(
                response.stream,
                limit=limit,
                deadline_at=deadline_at,
                on_limit=lambda: too_large(response, limit, self.redact),
                on_deadline=lambda: deadline_exceeded(
                    response.request.method, self.redact(str(response.request.url)), seconds
                ),
            )
            response.read()
            if len(response.content) > limit:  # a compressed answer despite Accept-Encoding
                raise too_large(response, limit, self.redact)
        finally:
            response.close()


def connection_error(
    exc: httpx.TransportError, method: str, url: str, redact: Callable[[str], str]
) -> APIConnectionError:
    """The typed error for a request that got no answer (a timeout or no connection)."""
    reason = redact(str(exc) or type(exc).__name__)
    url = redact(url)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{method} {url} timed out ({reason})", url=url)
    return APIConnectionError(f"{method} {url} could not connect: {reason}", url=url)


def within(timeout: httpx.Timeout, deadline_at: float | None) -> httpx.Timeout:
    """``timeout`` with no operation allowed to wait past ``deadline_at``."""
    if deadline_at is None:
        return timeout
    left = max(0.001, deadline_at - time.monotonic())

    def cap(value: float | None) -> float:
        return left if value is None else min(value, left)

    return httpx.Timeout(
        connect=cap(timeout.connect),
        read=cap(timeout.read),
        write=cap(timeout.write),
        pool=cap(timeout.pool),
    )
