"""The learning API client's core: auth headers, the retry loop, error mapping, request forms.

A request is sent by :class:`~synth_lab.client._transport.Wire` (one attempt) and retried by
:meth:`BaseClient.request` as :mod:`synth_lab.client._retry` says: connection errors, timeouts,
and 408/409/429/5xx answers, at most ``max_retries`` times.

Not retried, and typed: an answer that breaks the API's promises (a redirect, a success that is
empty or not JSON: :class:`APIResponseValidationError`), one larger than ``max_response_bytes``
(:class:`ResponseTooLargeError`), one slower than the per-request ``deadline``
(:class:`DeadlineExceededError`). Credentials in the base URL are masked like the key in every
message, log line and ``repr``.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import orjson

from synth_lab import __version__
from synth_lab.client._response import capped_lines, invalid_answer, parse_json, too_large
from synth_lab.client._retry import backoff_delay, retry_after_seconds, should_retry
from synth_lab.client._transport import Upload, Wire, connection_error
from synth_lab.client.config import (
    identity_headers,
    mask_key,
    mask_url,
    redact,
    url_secrets,
    without_userinfo,
)
from synth_lab.client.errors import APIStatusError, error_for_status

log = logging.getLogger("synth_lab.client")

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
UPLOAD_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_RESPONSE_BYTES = 64 << 20
"""The largest answer read (a full page of metrics is well under 1 MiB)."""

Params = Mapping[str, Any]


def decode(response: httpx.Response) -> Any:
    """The JSON body of an error answer, or its text when it is not JSON."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text


class BaseClient:
    """Sends requests to ``base_url`` with the key, retries, and typed errors.

    Args:
        api_key: The bearer key (already resolved).
        base_url: The API base, ending in ``/api``.
        timeout: Per-request timeout (seconds or an ``httpx.Timeout``).
        max_retries: Retries after the first attempt.
        http_client: An ``httpx.Client`` to use (its base URL and auth are not used); the
            caller keeps ownership. One is created (and closed by :meth:`close`) otherwise.
        env: Environment for the identity headers (default ``os.environ``).
        deadline: Seconds one attempt may take from sending the request to the answer's last
            byte (default: the timeout's read value; for uploads it counts from the end of
            the upload). The timeouts bound each network operation; this bounds their sum
            (checked as the body arrives; the status line and headers are bounded by the
            read timeout of each network read).
        max_response_bytes: The largest answer read.

    Attributes:
        base_url: The base URL as it may be shown (credentials masked).
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        env: Mapping[str, str] | None = None,
        deadline: float | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        base_url = base_url.rstrip("/")
        self._secrets = url_secrets(base_url)
        self.base_url = mask_url(base_url)
        # httpx would turn user:password@ into Basic auth, replacing the Bearer key the API
        # reads: the server would answer "missing API key" with no hint why.
        self._base_url = without_userinfo(base_url)
        if self._secrets:
            warnings.warn(
                f"the credentials in the backend URL {self.base_url} are not sent: the learning "
                "API authenticates with the API key (Authorization: Bearer); remove "
                "user:password@ from the URL",
                stacklevel=2,
            )
        self.deadline = deadline
        self.max_response_bytes = int(max_response_bytes)
        self.max_retries = max(0, int(max_retries))
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._api_key = api_key
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=self.timeout)
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            # Uncompressed, so that max_response_bytes caps what is held in memory.
            "Accept-Encoding": "identity",
            "User-Agent": f"synth-lab/{__version__}",
            **identity_headers(env),
        }
        self._sleep: Callable[[float], None] = time.sleep

    @property
    def api_key_masked(self) -> str:
        """The key as it may be shown (``abcd…yz``)."""
        return mask_key(self._api_key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={self.api_key_masked!r})"

    def close(self) -> None:
        """Close the HTTP connections (only when the client created them)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> BaseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/learning/jobs`` (not for display)."""
        return self._base_url + "/" + path.lstrip("/")

    def redact(self, text: str) -> str:
        """``text`` with the key and the base URL's credentials masked."""
        return redact(text, self._api_key, self._secrets)

    def _wire(self) -> Wire:
        # Built per request, so that a changed deadline or size cap takes effect at once.
        return Wire(self._http, self.deadline, self.max_response_bytes, self.redact)

    # -- requests -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        upload: Upload | None = None,
        timeout: httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> httpx.Response:
        """Send one logical request, retrying what is worth retrying.

        Args:
            method: HTTP method.
            path: Path under the base URL.
            json: A JSON body (sent with ``Content-Type: application/json``).
            params: Query parameters; ``None`` values are dropped.
            headers: Extra headers (kept identical across retries, e.g. ``Idempotency-Key``).
            upload: ``(path, form fields)``: a multipart body with the file as part ``file``,
                streamed from disk and reopened for every attempt.
            timeout: Overrides the client's timeout.
            max_retries: Overrides the client's retry count.

        Returns:
            The successful response (status 2xx), its body read.

        Raises:
            APIStatusError: The server answered with an error (a subclass per status).
            APIResponseValidationError: A redirect (never followed), or an answer over
                ``max_response_bytes`` (:class:`ResponseTooLargeError`).
            DeadlineExceededError: The attempt outlived the deadline.
            APIConnectionError: The server could not be reached after the retries.
        """
        url = self.url(path)
        all_headers = {**self._headers, **(headers or {})}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        content = None
        if json is not None:
            content = orjson.dumps(json)
            all_headers["Content-Type"] = "application/json"
        retries = self.max_retries if max_retries is None else max(0, max_retries)
        shown = self.redact(url)
        attempt = 0
        while True:
            try:
                response = self._wire().send(
                    method, url, all_headers, query, content, upload, timeout or self.timeout
                )
            except httpx.TransportError as exc:
                error = connection_error(exc, method, url, self.redact)
                if attempt >= retries:
                    raise error from None
                delay = backoff_delay(attempt)
                log.info("%s %s: %s; retrying in %.2fs", method, shown, error.message, delay)
            else:
                if response.status_code < 300:
                    return response
                if response.status_code < 400:
                    target = self.redact(response.headers.get("location", "?"))
                    what = f"a redirect to {target} (redirects are not followed)"
                    raise invalid_answer(response, what, self.redact, content=response.content)
                if attempt >= retries or not should_retry(response):
                    raise self._status_error(response, method, url)
                delay = backoff_delay(attempt, retry_after_seconds(response.headers))
                status = response.status_code
                log.info("%s %s -> %d; retrying in %.2fs", method, shown, status, delay)
            attempt += 1
            self._sleep(delay)

    def _status_error(self, response: httpx.Response, method: str, url: str) -> APIStatusError:
        body = decode(response)
        if isinstance(body, str):
            body = self.redact(body)
        return error_for_status(
            response.status_code,
            body,
            method=method,
            url=self.redact(url),
            key_mask=self.api_key_masked,
        )

    def json_of(self, response: httpx.Response, *, allow_empty: bool = False) -> Any:
        """The JSON of a successful answer; an empty one is an error unless ``allow_empty``.

        Raises:
            APIResponseValidationError: The body is empty or not JSON.
        """
        return parse_json(response, self.redact, allow_empty=allow_empty)

    def get_json(self, path: str, *, params: Params | None = None) -> Any:
        """``GET`` and decode (see :meth:`json_of`)."""
        return self.json_of(self.request("GET", path, params=params))

    def post_json(
        self,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        allow_empty: bool = False,
    ) -> Any:
        """``POST`` a JSON body and decode the answer (empty gives ``{}`` if ``allow_empty``)."""
        response = self.request("POST", path, json=body, headers=headers)
        return self.json_of(response, allow_empty=allow_empty)

    @contextmanager
    def stream_lines(self, path: str, *, params: Params | None = None) -> Iterator[Iterator[str]]:
        """``GET`` a server-sent-event stream; yields an iterator over its text lines.

        The stream has no deadline (it lasts as long as the job); each line is capped at
        ``max_response_bytes``.
        """
        url = self.url(path)
        headers = {**self._headers, "Accept": "text/event-stream"}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        timeout = httpx.Timeout(self.timeout.connect, read=None, write=30.0, pool=30.0)
        try:
            with self._http.stream("GET", url, headers=headers, params=query, timeout=timeout) as r:
                if r.status_code >= 300:
                    self._wire().read(r, None, 0.0)
                    if r.status_code >= 400:
                        raise self._status_error(r, "GET", url)
                    raise invalid_answer(r, "a redirect (not followed)", self.redact)
                limit = self.max_response_bytes
                yield capped_lines(r.iter_bytes(), limit, lambda: too_large(r, limit, self.redact))
        except httpx.TransportError as exc:
            raise connection_error(exc, "GET", url, self.redact) from None
