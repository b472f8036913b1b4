"""``--examples N``: train or lint on the first N records of a dataset without loading it."""

from __future__ import annotations

import operator
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from synth_lab.data._lines import READ_BLOCK, is_blank_line, iter_lines, open_dataset
from synth_lab.errors import DatasetError

__all__ = ["check_examples", "count_records", "first_examples"]

_PARTIAL_LIMIT = 1 << 20
"""Past this many bytes of an unfinished line, counting keeps only whether it is blank."""


def check_examples(n: object, name: str = "--examples") -> int:
    """The one rule for ``--examples N`` (CLI, magics, ``train.run(examples=)``): a positive
    whole number.

    Args:
        n: The value given.
        name: How the caller calls it in the error (``--examples``, ``examples``).

    Returns:
        ``n`` as an ``int``.

    Raises:
        DatasetError: ``n`` is not a positive whole number.
    """
    try:
        count = operator.index(n)  # type: ignore[arg-type]
    except TypeError:
        count = None
    if count is None or isinstance(n, bool) or count <= 0:
        raise DatasetError(
            f"{name} must be a positive whole number, got {n!r}",
            hint=f"{name} N keeps the first N records; leave it out to use the whole file",
        )
    return count


@contextmanager
def first_examples(path: str | os.PathLike[str], n: int) -> Iterator[Path]:
    """Gives a temporary JSONL file holding the first ``n`` non-blank lines of ``path``.

    The lines are copied byte for byte (blank lines are left out), streaming, so the source can
    be any size. The temporary file is removed when the block exits, also on an exception or a
    KeyboardInterrupt. If the file has fewer than ``n`` records, all of them are copied.

    Args:
        path: The source JSONL file.
        n: How many records to keep (at least 1).

    Yields:
        The path of the temporary file.

    Raises:
        DatasetError: If ``n`` is not a positive integer or the source cannot be opened.
    """
    count = check_examples(n)
    source = open_dataset(path)
    stem = Path(path).stem[:40] or "dataset"
    try:
        fd, name = tempfile.mkstemp(prefix=f"{stem}-first{count}-", suffix=".jsonl")
    except BaseException:
        source.close()
        raise
    target = Path(name)
    try:
        with source, os.fdopen(fd, "wb") as out:
            _copy_first(source, out, count)
        yield target
    finally:
        with suppress(OSError):
            target.unlink()


def _copy_first(source: BinaryIO, out: BinaryIO, count: int) -> None:
    copied = 0
    for raw in iter_lines(source):
        # A line over MAX_LINE_BYTES (None) is left out: no training sequence can hold it.
        if raw is not None and not is_blank_line(raw):
            out.write(raw + b"\n")
            copied += 1
            if copied == count:
                return


def count_records(path: str | os.PathLike[str]) -> int:
    """Counts the records (non-blank lines) of a JSONL file quickly, in constant memory.

    Args:
        path: The JSONL file.

    Returns:
        The number of non-blank lines.

    Raises:
        DatasetError: If the file cannot be opened.
    """
    total = 0
    tail = b""
    with open_dataset(path) as source:
        while block := source.read(READ_BLOCK):
            lines = (tail + block).split(b"\n") if tail else block.split(b"\n")
            tail = lines.pop()
            for stripped in map(bytes.strip, lines):
                if stripped and (stripped[0] == 0x7B or not is_blank_line(stripped)):
                    total += 1
            if len(tail) > _PARTIAL_LIMIT:
                # Only the line's blankness matters; a one-byte stand-in keeps memory flat.
                tail = b"" if is_blank_line(tail) else b"x"
    if not is_blank_line(tail):
        total += 1
    return total
