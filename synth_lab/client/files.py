"""``client.files``: upload training data (streamed from disk) and wait until it is usable."""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from synth_lab.client._base import UPLOAD_TIMEOUT, BaseClient
from synth_lab.client.errors import APIError, FileRejectedError, NotFoundError
from synth_lab.errors import DatasetError

log = logging.getLogger("synth_lab.client")

READY_STATES = frozenset({"ready", "uploaded", "stored", "complete", "completed"})
"""File states after which a job may use the file."""

PENDING_STATES = frozenset({"processing", "pending", "validating", "queued", "uploading"})
FAILED_STATES = frozenset({"failed", "error", "errored", "rejected", "invalid"})

PREFIXES = ("/learning/files", "/files")
"""Where files live: the first is tried, the second used when it answers 404."""


def file_state(doc: dict[str, Any]) -> str:
    """The state of a file document: ``status``, else ``state``, else ``storage_state``."""
    for field in ("status", "state", "storage_state"):
        value = doc.get(field)
        if isinstance(value, str) and value:
            return value.lower()
    return ""


class Files:
    """The files resource (``client.files``)."""

    def __init__(self, client: BaseClient) -> None:
        self._client = client
        self._prefix = PREFIXES[0]

    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        purpose: str = "fine-tune",
        wait: bool = True,
        timeout: float = 300.0,
        poll_interval: float = 0.5,
    ) -> dict[str, Any]:
        """Upload a JSONL file and (by default) wait until the server says it is ready.

        The file is streamed in chunks (memory stays flat for any size). Retries reuse one
        ``Idempotency-Key``, so a retried upload that had in fact arrived is not stored twice.

        Args:
            path: The file.
            purpose: The form field ``purpose``.
            wait: Poll until the file is ready (see :meth:`wait_ready`).
            timeout: Seconds to wait for readiness.
            poll_interval: Seconds between readiness checks.

        Returns:
            The file document (``id``, ``status`` ...).

        Raises:
            DatasetError: The file does not exist.
            FileRejectedError: The server checked the file and refused it.
        """
        file = Path(path)
        if not file.is_file():
            raise DatasetError(f"Dataset not found: {file}", hint="check the path")
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        doc: Any = None
        for prefix in PREFIXES[PREFIXES.index(self._prefix) :]:
            try:
                response = self._client.request(
                    "POST",
                    prefix,
                    headers=headers,
                    upload=(file, {"purpose": purpose}),
                    timeout=UPLOAD_TIMEOUT,
                )
            except NotFoundError:
                if prefix == PREFIXES[-1]:
                    raise
                log.info("%s answered 404; trying %s", prefix, PREFIXES[-1])
                continue
            self._prefix = prefix
            doc = self._client.json_of(response)
            break
        if not isinstance(doc, dict) or not doc.get("id"):
            raise APIError(f"The upload of {file.name} returned no file id: {str(doc)[:200]}")
        if wait:
            return self.wait_ready(str(doc["id"]), timeout=timeout, poll_interval=poll_interval)
        return doc

    def retrieve(self, file_id: str) -> dict[str, Any]:
        """The file document."""
        return self._client.get_json(f"{self._prefix}/{file_id}")

    def wait_ready(
        self, file_id: str, *, timeout: float = 300.0, poll_interval: float = 0.5
    ) -> dict[str, Any]:
        """Poll until the file is ready; best effort, as the reference client does.

        A 404 means "not yet"; 401/403 fail at once. A document without any state is taken
        as ready. If the time runs out the last document is returned and the job creation
        will say whether the server still objects.

        Raises:
            FileRejectedError: The server's check failed (state ``failed``).
        """
        deadline = time.monotonic() + timeout
        doc: dict[str, Any] = {"id": file_id}
        while True:
            try:
                doc = self.retrieve(file_id)
            except NotFoundError:
                state = "pending"
            else:
                state = file_state(doc)
            if not state or state in READY_STATES:
                return doc
            if state in FAILED_STATES:
                raise FileRejectedError(file_id, list(doc.get("problems") or []))
            if time.monotonic() >= deadline:
                log.warning("file %s still %s after %.0fs; going on", file_id, state, timeout)
                return doc
            self._client._sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))
