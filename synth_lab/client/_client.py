"""``SynthClient``: the learning API client, with ``files`` and ``jobs`` as attributes."""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from synth_lab.client._base import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    BaseClient,
)
from synth_lab.client.config import resolve_api_key, resolve_base_url
from synth_lab.client.errors import APIKeyMissingError
from synth_lab.client.files import Files
from synth_lab.client.jobs import Jobs


class SynthClient(BaseClient):
    """A client of the hosted learning API (or of ``synth-lab serve``).

    >>> client = SynthClient()  # doctest: +SKIP  (SYNTH_API_KEY and the backend from the env)
    >>> client.files.upload("train.jsonl")["id"]  # doctest: +SKIP

    Args:
        api_key: The key; default ``SYNTH_API_KEY`` from the environment or ``.env``.
        base_url: The backend; default from the environment (see
            :func:`synth_lab.client.config.resolve_base_url`). ``/api`` is appended to a bare host.
        timeout: Per-request timeout in seconds (uploads get at least 300 s).
        max_retries: Retries of a failed request (connection errors, 408/409/429/5xx).
        deadline: Seconds one attempt may take in all, however the server trickles its answer
            (default: the timeout); :class:`DeadlineExceededError` past it.
        max_response_bytes: The largest answer read; :class:`ResponseTooLargeError` past it.
        http_client: An ``httpx.Client`` to send with (for proxies, custom transports, tests).
        env: The environment to read instead of ``os.environ``.
        dotenv: The ``.env`` file to read the key from (``None``: none).

    Raises:
        APIKeyMissingError: No key was given or found.
    """

    files: Files
    jobs: Jobs

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        env: Mapping[str, str] | None = None,
        dotenv: str | os.PathLike[str] | None = ".env",
        deadline: float | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        key = resolve_api_key(api_key, env, dotenv)
        if not key:
            raise APIKeyMissingError()
        super().__init__(
            api_key=key,
            base_url=resolve_base_url(base_url, env),
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
            env=env,
            deadline=deadline,
            max_response_bytes=max_response_bytes,
        )
        self.files = Files(self)
        self.jobs = Jobs(self)

    def __enter__(self) -> SynthClient:
        return self
