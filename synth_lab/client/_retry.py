"""When a failed request is tried again, and after how long.

Retried: connection errors, timeouts, and 408/409/429/5xx answers. The wait is what
``Retry-After`` (or ``retry-after-ms``) says when it is sane, otherwise an exponential backoff
with jitter. A server may opt out with ``x-should-retry: false``.
"""

from __future__ import annotations

import email.utils
import random
import time

import httpx

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({408, 409, 429})


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return float(raw_ms) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        return email.utils.mktime_tz(parsed) - time.time()


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """How long to wait before retry number ``attempt`` (0-based).

    A ``Retry-After`` between 0 and :data:`MAX_RETRY_AFTER` seconds is honoured as given;
    otherwise the delay doubles from :data:`INITIAL_RETRY_DELAY` up to :data:`MAX_RETRY_DELAY`,
    minus up to 25% jitter so that many clients do not retry in lockstep.
    """
    if retry_after is not None and 0 <= retry_after <= MAX_RETRY_AFTER:
        return retry_after
    delay = min(INITIAL_RETRY_DELAY * 2.0**attempt, MAX_RETRY_DELAY)
    return delay * (1.0 - 0.25 * random.random())


def should_retry(response: httpx.Response) -> bool:
    """Whether an error answer is worth another try (the server's ``x-should-retry`` wins)."""
    hint = response.headers.get("x-should-retry", "").lower()
    if hint in ("true", "false"):
        return hint == "true"
    return response.status_code in RETRY_STATUSES or response.status_code >= 500
