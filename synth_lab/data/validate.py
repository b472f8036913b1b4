"""Streaming validation of chat JSONL datasets for supervised finetuning.

The file is read in binary blocks and checked line by line, so memory stays flat whatever the
file size. Every problem is reported (there is no "first 20" cut-off), each with its physical
line, the field path, a machine-readable code, a message and a hint. What the hosted trainer
rejects is an error here; what it accepts passes, possibly with a warning.

Typical use::

    report = lint_file("train.jsonl")
    report.raise_for_errors()
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from synth_lab.data._lines import MAX_LINE_BYTES, open_dataset, scan_lines
from synth_lab.data._linter import DUPLICATE_TRACK_LIMIT, Linter
from synth_lab.data._records import check_record
from synth_lab.errors import DatasetError, Problem, format_problems

__all__ = [
    "DUPLICATE_TRACK_LIMIT",
    "MAX_LINE_BYTES",
    "MAX_REPORT_PROBLEMS",
    "LintReport",
    "LintStream",
    "Linter",
    "check_record",
    "iter_problems",
    "lint_file",
    "lint_records",
]

MAX_REPORT_PROBLEMS = 50_000
"""Problems a :class:`LintReport` keeps; the rest are only counted (``iter_problems`` has all)."""

_ERROR_LIST_LIMIT = 20


class LintStream:
    """Every problem of a file, yielded while it streams; the counts are there afterwards.

    Opening happens at construction, so a missing file fails early; iterate once.

    Example::

        stream = LintStream("train.jsonl")
        for problem in stream:
            print(problem.format())
        print(stream.records, "records")
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Opens ``path``.

        Args:
            path: The JSONL file.

        Raises:
            DatasetError: If the file does not exist, is a directory or cannot be opened.
        """
        self._handle = open_dataset(path)
        self._linter = Linter()

    @property
    def records(self) -> int:
        """Records (non-blank lines) seen so far."""
        return self._linter.records

    @property
    def valid_records(self) -> int:
        """Records without errors seen so far."""
        return self._linter.valid_records

    def __iter__(self) -> Iterator[Problem]:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        with handle:
            yield from scan_lines(handle, self._linter)
        yield from self._linter.iter_finish()

    def close(self) -> None:
        """Releases the file if the stream was never iterated to the end."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def iter_problems(path: str | os.PathLike[str]) -> Iterator[Problem]:
    """Streams every problem of a JSONL dataset, in line order, file-level ones last.

    Args:
        path: The JSONL file.

    Yields:
        Problems as they are found; memory stays constant whatever the file size.

    Raises:
        DatasetError: If the file does not exist, is a directory or cannot be opened.
    """
    yield from LintStream(path)


@dataclass
class LintReport:
    """The outcome of linting a dataset.

    Attributes:
        path: The file checked, or ``None`` for in-memory records.
        records: Records seen (non-blank lines), valid or not.
        problems: Every problem, ordered by line (file-level ones first), up to
            :data:`MAX_REPORT_PROBLEMS`; beyond that they are only counted.
        valid_records: Records without errors.
        omitted_errors: Errors found but not kept in ``problems``.
        omitted_warnings: Warnings found but not kept in ``problems``.
        characters: Message characters (plus template markup), for the planner's token estimate.
        message_records: Records with a ``messages`` list.
    """

    path: str | None
    records: int
    problems: list[Problem]
    valid_records: int = 0
    omitted_errors: int = 0
    omitted_warnings: int = 0
    characters: int = 0
    message_records: int = 0

    @property
    def errors(self) -> list[Problem]:
        """The kept problems with severity ``"error"``."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The kept problems with severity ``"warning"``."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def error_count(self) -> int:
        """All errors found, kept or not."""
        return len(self.errors) + self.omitted_errors

    @property
    def ok(self) -> bool:
        """True when the dataset has no errors (warnings allowed)."""
        return self.error_count == 0

    def raise_for_errors(self) -> None:
        """Raises :class:`DatasetError` listing the first errors, if there are any."""
        errors = self.errors
        total = self.error_count
        if not total:
            return
        where = f"{self.path}: " if self.path else ""
        listed = format_problems(errors, limit=_ERROR_LIST_LIMIT, total=total)
        title = f"{where}{total:,} error(s) in {self.records:,} record(s):"
        first_hint = errors[0].hint if errors else ""
        hint = "fix the problems listed; `synth-lab data lint FILE` lists every one"
        if total == 1 and first_hint:
            hint = first_hint
        raise DatasetError(f"{title}\n{listed}", hint=hint, problems=self.problems)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: ``{"records": N, "problems": [{line, path, code, ...}, ...]}``."""
        keys = ("line", "path", "code", "severity", "message", "hint")
        return {
            "records": self.records,
            "problems": [{key: getattr(p, key) for key in keys} for p in self.problems],
        }


@dataclass
class _Collector:
    kept: list[Problem] = field(default_factory=list)
    omitted_errors: int = 0
    omitted_warnings: int = 0

    def add_all(self, problems: Iterable[Problem]) -> None:
        kept = self.kept
        for problem in problems:
            if len(kept) < MAX_REPORT_PROBLEMS:
                kept.append(problem)
            elif problem.severity == "error":
                self.omitted_errors += 1
            else:
                self.omitted_warnings += 1

    def report(self, path: str | None, linter: Linter) -> LintReport:
        self.kept.sort(key=lambda p: -1 if p.line is None else p.line)
        return LintReport(
            path,
            linter.records,
            self.kept,
            linter.valid_records,
            self.omitted_errors,
            self.omitted_warnings,
            linter.characters,
            linter.message_records,
        )


def lint_file(path: str | os.PathLike[str]) -> LintReport:
    """Checks a JSONL dataset completely, streaming it.

    Args:
        path: The JSONL file.

    Returns:
        The report; problems in the data never raise.

    Raises:
        DatasetError: If the file does not exist, is a directory or cannot be opened.
    """
    handle = open_dataset(path)
    linter = Linter()
    collector = _Collector()
    with handle:
        collector.add_all(scan_lines(handle, linter))
    collector.add_all(linter.iter_finish())
    return collector.report(os.fspath(path), linter)


def lint_records(records: Iterable[object], start_line: int = 1) -> LintReport:
    """Checks in-memory records (dicts) as if they were consecutive lines of a file.

    Args:
        records: The records, e.g. a list of dicts or ``df.to_dict("records")``.
        start_line: The line number given to the first record.

    Returns:
        The report (``path`` is ``None``).
    """
    linter = Linter()
    collector = _Collector()
    for offset, record in enumerate(records):
        collector.add_all(linter.feed_record(record, start_line + offset))
    collector.add_all(linter.iter_finish())
    return collector.report(None, linter)
