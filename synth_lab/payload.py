"""Moved to :mod:`synth_lab.job.payload`; this import path keeps working for existing code."""

from __future__ import annotations

import warnings

from synth_lab.job.payload import (
    build_payload,
    dropped_keys,
    dropped_reason,
    request_form_payload,
    sdk_payload,
)

__all__ = ["build_payload", "dropped_keys", "dropped_reason", "request_form_payload", "sdk_payload"]

warnings.warn(
    "synth_lab.payload is now synth_lab.job.payload",
    DeprecationWarning,
    stacklevel=2,
)
