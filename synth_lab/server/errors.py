"""The refusals the server answers with: an HTTP status, a machine code, a message, extras."""

from __future__ import annotations

from typing import Any


class RequestError(Exception):
    """A request the server refuses: HTTP status, machine code, message and extras."""

    def __init__(
        self, status: int, code: str, message: str, *, hint: str = "", **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
        self.extra = extra

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            detail["hint"] = self.hint
        detail.update(self.extra)
        return {"detail": detail, "code": self.code, "message": self.message}


def bad(code: str, message: str, **extra: Any) -> RequestError:
    """A 400 with ``code``."""
    return RequestError(400, code, message, **extra)
