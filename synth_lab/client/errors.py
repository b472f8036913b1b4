"""Errors of the learning API client: one class per kind of failure, all :class:`APIError`.

Status errors are chosen by HTTP status (:func:`error_for_status`); their message is read from
the body's ``detail``, ``message`` or ``error`` (in that order) and their machine code from
``detail.code`` or ``code``. Known codes come with a hint that says what to change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from synth_lab.errors import APIError, Problem, TrainingError, as_problems, format_problems

# The error classes, which synth_lab.client offers as they are; error_for_status is internal.
__all__ = [
    "APIConnectionError",
    "APIError",
    "APIKeyMissingError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "DeadlineExceededError",
    "FileRejectedError",
    "JobFailedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PollTimeoutError",
    "RateLimitError",
    "ResponseTooLargeError",
    "ServerError",
]

CODE_HINTS: dict[str, str] = {
    "missing_gpu_type": 'set [compute].gpu_type (e.g. gpu_type = "H100")',
    "insufficient_resources": "lower [compute].gpu_count, or start the server with "
    "--accept-any-compute",
    "model_not_available": "map it on the server: synth-lab serve --model-map ID=LOCAL_MODEL",
    "file_not_ready": "wait until the file's status is ready, then create the job",
    "file_not_found": "upload the file first; ids are only visible to the key that uploaded them",
    "file_invalid": "fix the dataset (synth-lab data lint FILE) and upload it again",
    "invalid_payload": "run synth-lab train --dry-run to see the payload and its problems",
    "payload_too_large": "upload a smaller file, or raise the server's --max-upload-mb",
}


class APIKeyMissingError(APIError):
    """No API key was given or found."""

    def __init__(self) -> None:
        super().__init__(
            "No API key for the learning API",
            hint="set SYNTH_API_KEY (in the environment or a .env file) or pass api_key=...",
        )


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke."""

    def __init__(self, message: str, *, url: str = "", hint: str = "") -> None:
        super().__init__(
            message, hint=hint or "check the backend URL and that the server is running"
        )
        self.url = url


class APITimeoutError(APIConnectionError):
    """A request took longer than the client's timeout."""


class DeadlineExceededError(APITimeoutError):
    """A request outlived its overall deadline (a server answering too slowly). Not retried."""


class APIResponseValidationError(APIError):
    """The server answered, but not as the API promises; not retried.

    A redirect (never followed), a success whose body is not JSON or is empty where JSON is
    promised, or a malformed server-sent-event line.

    Attributes:
        status_code: The HTTP status of the answer.
        body: A short excerpt of the answer (credentials masked).
        method: The request method.
        url: The request URL (credentials masked).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str = "",
        method: str = "",
        url: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(
            message,
            hint=hint
            or "check that the backend URL points at the learning API, not a proxy, "
            "a login page or another service",
        )
        self.status_code = status_code
        self.body = body
        self.method = method
        self.url = url


class ResponseTooLargeError(APIResponseValidationError):
    """An answer was larger than the client's ``max_response_bytes``; reading stopped there."""


class APIStatusError(APIError):
    """The server answered with an error status.

    Attributes:
        status_code: The HTTP status.
        code: The machine code from the body (``missing_gpu_type`` ...), or ``""``.
        body: The decoded JSON body, or the text.
        method: The request method.
        url: The request URL.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str = "",
        body: Any = None,
        method: str = "",
        url: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint or CODE_HINTS.get(code, ""))
        self.status_code = status_code
        self.code = code
        self.body = body
        self.method = method
        self.url = url

    @property
    def problems(self) -> list[Problem]:
        """Located problems the server sent with the error (``detail.problems``), if any."""
        detail = self.body.get("detail") if isinstance(self.body, dict) else None
        found = detail.get("problems") if isinstance(detail, dict) else None
        if found is None and isinstance(self.body, dict):
            found = self.body.get("problems")
        return as_problems(found) if isinstance(found, list) else []


class BadRequestError(APIStatusError):
    """400: the request was refused; ``.code`` says why (``missing_gpu_type`` ...)."""


class AuthenticationError(APIStatusError):
    """401/403: the API key is missing, wrong, or not allowed to do this."""


class NotFoundError(APIStatusError):
    """404: no such file or job (or it belongs to another key)."""


class ConflictError(APIStatusError):
    """409: the resource is in a state that does not allow this."""


class PayloadTooLargeError(APIStatusError):
    """413: the upload is larger than the server accepts."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried automatically before this is raised."""


class ServerError(APIStatusError):
    """5xx: the server failed; retried automatically before this is raised."""


class PollTimeoutError(APIError):
    """Watching a job took longer than allowed. The job itself keeps running."""

    def __init__(self, job_id: str, timeout: float, status: str = "") -> None:
        state = f" (status {status})" if status else ""
        super().__init__(
            f"Stopped waiting for job {job_id} after {timeout:g}s{state}; the job keeps running",
            hint=f"reattach with synth_lab.attach({job_id!r}) or "
            f"%sft_train --attach {job_id}; cancel it with .cancel()",
        )
        self.job_id = job_id
        self.timeout = timeout
        self.status = status


class FileRejectedError(APIError):
    """The server refused an uploaded file after checking it (``status`` = ``failed``)."""

    def __init__(self, file_id: str, problems: Iterable[Any]) -> None:
        found = as_problems(problems)
        super().__init__(
            f"The server rejected file {file_id}:\n" + format_problems(found, limit=10),
            hint=CODE_HINTS["file_invalid"],
        )
        self.file_id = file_id
        self.problems: list[Problem] = found


class JobFailedError(TrainingError):
    """A remote job ended ``failed``; ``.job`` is the :class:`~synth_lab.client.RemoteJob`."""

    def __init__(self, job: Any, reason: str) -> None:
        super().__init__(
            f"Remote job {job.id} failed: {reason}",
            hint="read job.events for the details; fix and submit again",
        )
        self.job = job
        self.reason = reason


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: BadRequestError,
    429: RateLimitError,
}


def parse_error_body(body: Any) -> tuple[str, str]:
    """``(message, code)`` from an error body: ``detail``/``message``/``error``; ``code``."""
    message, code = "", ""
    if isinstance(body, dict):
        for field in ("detail", "message", "error"):
            value = body.get(field)
            if isinstance(value, dict):
                code = code or str(value.get("code") or "")
                value = value.get("message") or value.get("detail") or value.get("error")
            if isinstance(value, list) and value:
                value = "; ".join(str(v.get("msg", v) if isinstance(v, dict) else v) for v in value)
            if value and not message:
                message = str(value)
        code = code or str(body.get("code") or "")
    elif isinstance(body, str):
        message = body.strip()[:500]
    return message, code


def error_for_status(
    status_code: int, body: Any, *, method: str, url: str, key_mask: str = ""
) -> APIStatusError:
    """The right :class:`APIStatusError` subclass for a response."""
    message, code = parse_error_body(body)
    cls = _BY_STATUS.get(status_code, ServerError if status_code >= 500 else APIStatusError)
    text = f"{method} {url} failed with {status_code}"
    if code:
        text += f" [{code}]"
    if message:
        text += f": {message}"
    hint = ""
    if cls is AuthenticationError:
        hint = (
            f"the API key {key_mask or '<none>'} was refused; check SYNTH_API_KEY "
            "and that it belongs to this backend"
        )
    return cls(
        text, status_code=status_code, code=code, body=body, method=method, url=url, hint=hint
    )
