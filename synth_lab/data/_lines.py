"""Reading JSONL files line by line: the one line reader of the validator, ``Dataset.load``
and ``--examples``.

Files are read in large blocks and split on ``\\n`` (the trainer's reading also splits there),
so that a file of any size streams in constant memory; a line longer than
:data:`MAX_LINE_BYTES` is skipped rather than held.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from synth_lab.errors import DatasetError, Problem

if TYPE_CHECKING:
    from synth_lab.data._linter import Linter

READ_BLOCK = 4 << 20
"""Bytes read per system call; large blocks keep the per-line overhead low."""

MAX_LINE_BYTES = 32 << 20
"""A longer line is reported (``line_too_long``) and skipped instead of being held in memory."""


def iter_lines(handle: BinaryIO) -> Iterator[bytes | None]:
    """Every physical line of ``handle`` without its ``\\n``; ``None`` for a line longer than
    :data:`MAX_LINE_BYTES` (skipped unread). A final line without ``\\n`` is included.

    Raises:
        OSError: Reading failed (the lines before it have been yielded).
    """
    tail = b""
    skipping = False  # inside a line already reported as too long
    while block := handle.read(READ_BLOCK):
        if skipping:
            newline = block.find(b"\n")
            if newline < 0:
                continue
            block, skipping = block[newline + 1 :], False
        lines = (tail + block).split(b"\n") if tail else block.split(b"\n")
        tail = lines.pop()
        yield from lines
        if len(tail) > MAX_LINE_BYTES:
            yield None
            tail, skipping = b"", True
    if tail and not skipping:
        yield tail


def too_long(line: int) -> Problem:
    """The problem of a line :func:`iter_lines` skipped as too long."""
    return Problem(
        "",
        line,
        None,
        f"line is longer than {MAX_LINE_BYTES >> 20} MiB and was not checked",
        "split the record; a record this long cannot fit any training sequence",
        "error",
        "line_too_long",
    )


def open_dataset(path: str | os.PathLike[str]) -> BinaryIO:
    """Opens a dataset for binary reading, or raises a :class:`DatasetError` that says why."""
    try:
        target = Path(path)
    except TypeError as exc:
        raise DatasetError(
            f"Dataset path must be a string or a path, not {type(path).__name__}",
            hint="pass the path of a .jsonl file",
        ) from exc
    if target.is_dir():
        raise DatasetError(
            f"Dataset path is a directory, not a file: {target}",
            hint="pass the path of the .jsonl file inside it",
        )
    try:
        return open(target, "rb", buffering=0)
    except FileNotFoundError as exc:
        raise DatasetError(
            f"Dataset file not found: {target}",
            hint=f"check the path; relative paths start from {Path.cwd()}",
        ) from exc
    except PermissionError as exc:
        raise DatasetError(
            f"Dataset file is not readable: {target}", hint="check the file's permissions"
        ) from exc
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"Cannot open dataset file {target}: {exc}", hint="check that the path is a file"
        ) from exc


def scan_lines(handle: BinaryIO, linter: Linter) -> Iterator[Problem]:
    """Feeds every physical line of ``handle`` to ``linter``, yielding problems in line order."""
    feed = linter.feed_line
    line = 0
    lines = iter_lines(handle)
    end = object()
    while True:
        try:
            raw = next(lines, end)
        except OSError as exc:
            message, hint = f"reading stopped: {exc}", "check the disk, then lint again"
            yield Problem("", line + 1, None, message, hint, "error", "read_error")
            return
        if raw is end:
            return
        line += 1
        if raw is None:
            linter.records += 1
            yield too_long(line)
            continue
        problems = feed(raw, line)
        if problems:
            yield from problems


def is_blank_line(raw: bytes) -> bool:
    """True for a line the trainer skips: empty or only (Unicode) whitespace."""
    stripped = raw.strip()
    if not stripped:
        return True
    if stripped[0] == 0x7B:  # "{": the usual record, certainly not blank
        return False
    try:
        return not stripped.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False
