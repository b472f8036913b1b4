"""Moved to :mod:`synth_lab.job.dryrun`; this import path keeps working for existing code."""

from __future__ import annotations

import warnings

from synth_lab.job.dryrun import DryRun, FileCheck, count_tokens, dry_run

__all__ = ["DryRun", "FileCheck", "count_tokens", "dry_run"]

warnings.warn(
    "synth_lab.dryrun is now synth_lab.job.dryrun (or use synth_lab.dry_run)",
    DeprecationWarning,
    stacklevel=2,
)
