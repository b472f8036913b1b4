"""The streaming engine of :mod:`synth_lab.data.validate`: line scanning, cross-record state.

Lines are parsed with orjson; only lines it rejects take the slow path, which reproduces the
trainer's own reading (UTF-8 text, universal newlines, Unicode whitespace stripped, the
standard library's lenient JSON parser) so that anything the trainer accepts passes here.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from array import array
from collections.abc import Iterator
from typing import Any

import orjson

from synth_lab.data._records import inspect_record
from synth_lab.errors import Problem

MARKUP_CHARACTERS = 16  # a message's share of the chat template, for token estimates
DUPLICATE_TRACK_LIMIT = 3_000_000
"""Records whose hashes are kept for duplicate detection (8 bytes each, sorted at the end)."""

DUPLICATE_TRACK_LIMIT_PURE = 500_000
"""The same limit when numpy is missing and a dict (about 100 bytes a record) does the work."""


_SMALL_DUPLICATE_SET = 200_000
"""Up to this many hashes a plain dict resolves duplicates faster than importing numpy."""

_loads = orjson.loads


@functools.lru_cache(maxsize=1)
def _numpy_available() -> bool:
    return importlib.util.find_spec("numpy") is not None


def _numpy() -> Any:
    """The numpy module, or None when it is not installed."""
    if not _numpy_available():
        return None
    import numpy

    return numpy


def _invalid_json(line: int, reason: str, col: int | None) -> Problem:
    hint = "fix the JSON syntax on this line; each line must hold exactly one JSON object"
    if "BOM" in reason:
        hint = "save the file as UTF-8 without a byte-order mark"
    return Problem("", line, col, f"invalid JSON ({reason})", hint, "error", "invalid_json")


UNPARSED: Any = object()
""":attr:`Linter.last_record` after a line that was not plain JSON (blank, broken, lenient)."""


def message_characters(messages: list[Any]) -> int:
    """Characters of every message's content plus the template's markup: what the planner
    turns into a token estimate when no tokenizer is at hand."""
    total = 0
    for m in messages:
        if type(m) is dict:
            content = m.get("content")
            text = content if type(content) is str else str(content or "")
            total += len(text) + MARKUP_CHARACTERS
    return total


class Linter:
    """Checks records one at a time and keeps the cross-record state (counts, duplicates).

    Feed lines (or in-memory records) in order, then call :meth:`finish` once for the
    file-level problems. Memory is bounded: duplicates are tracked as 8-byte hashes for at
    most :data:`DUPLICATE_TRACK_LIMIT` records.

    Attributes:
        records: Non-blank lines (or records) seen, valid or not.
        valid_records: Records without errors.
        characters: Characters of every message's content, plus 16 a message for the chat
            template's markup: the planner's token estimate, counted in the same pass.
        message_records: Records with a ``messages`` list (those ``characters`` counts).
    """

    def __init__(self) -> None:
        self.records = 0
        self.valid_records = 0
        self.characters = 0
        self.message_records = 0
        self._with_assistant = 0
        self._hashes = array("q")
        self._lines: array[int] | None = None  # materialised only once lines stop being dense
        self._line_base = 0
        self._untracked = 0
        self._track_limit = (
            DUPLICATE_TRACK_LIMIT if _numpy_available() else DUPLICATE_TRACK_LIMIT_PURE
        )
        self._finished = False
        self.last_record: Any = UNPARSED

    def feed_line(self, raw: bytes, line: int) -> list[Problem]:
        """Checks one physical line (without its newline). Blank lines return ``[]``.

        After the call, :attr:`last_record` holds the parsed value when the line was plain JSON
        (so callers that keep records need not parse it again), else :data:`UNPARSED`.
        """
        self.last_record = UNPARSED
        if type(raw) is not bytes:
            return self._feed_unparsed(raw, line)
        try:
            record = _loads(raw)
        except ValueError:
            return self._feed_unparsed(raw, line)
        carriage_return = raw.find(b"\r")
        if carriage_return >= 0 and carriage_return != len(raw) - 1:
            return self._feed_unparsed(raw, line)  # a bare CR splits the line for the trainer
        self.records += 1
        self.last_record = record
        return self._accept(record, raw.strip(), line)

    def feed_record(self, record: object, line: int) -> list[Problem]:
        """Checks one in-memory record (from a list or a DataFrame) as if it were ``line``."""
        self.records += 1
        try:
            key: bytes | None = orjson.dumps(record)
        except Exception:
            try:
                key = repr(record).encode("utf-8", "replace")
            except Exception:
                key = None
        return self._accept(record, key, line)

    def finish(self) -> list[Problem]:
        """Returns the file-level problems: duplicates, empty file, nothing to train on."""
        return list(self.iter_finish())

    def iter_finish(self) -> Iterator[Problem]:
        """Like :meth:`finish`, yielding the problems one at a time (duplicates can be many)."""
        if self._finished:
            return
        self._finished = True
        tracked = len(self._hashes)
        yield from self._duplicates()
        self._hashes, self._lines = array("q"), None
        if self._untracked:
            yield Problem(
                "",
                None,
                None,
                f"duplicates were only checked in the first {tracked:,} records "
                f"({self._untracked:,} later records were not compared)",
                "deduplicate the file beforehand if it may hold repeated records",
                "warning",
                "duplicates_not_checked",
            )
        if self.records == 0:
            yield Problem(
                "",
                None,
                None,
                "File contains no SFT examples",
                'add one JSON object per line, like {"messages": [...]}',
                "error",
                "empty_file",
            )
        elif self.valid_records and not self._with_assistant:
            yield Problem(
                "",
                None,
                None,
                "no record has an assistant turn, so there is nothing to train on",
                'SFT learns the "assistant" messages; check the role names in the file',
                "error",
                "no_assistant_in_file",
            )

    def _accept(self, record: object, key: bytes | None, line: int) -> list[Problem]:
        problems, has_assistant = inspect_record(record, line)
        messages = record.get("messages") if type(record) is dict else None
        if type(messages) is list:
            self.message_records += 1
            self.characters += message_characters(messages)
        if has_assistant:
            self._with_assistant += 1
        if key is not None and isinstance(record, dict):
            self._remember(hash(key), line)
        if not problems or all(p.severity != "error" for p in problems):
            self.valid_records += 1
        return problems

    def _remember(self, digest: int, line: int) -> None:
        hashes = self._hashes
        index = len(hashes)
        if index >= self._track_limit:
            self._untracked += 1
            return
        if index == 0:
            self._line_base = line
        if self._lines is not None:
            try:
                self._lines.append(line)
            except OverflowError:  # beyond 2**32 lines (or negative): stop comparing here
                self._track_limit = index
                self._untracked += 1
                return
        elif line != self._line_base + index:
            try:
                self._lines = array("I", range(self._line_base, self._line_base + index))
                self._lines.append(line)
            except OverflowError:
                self._lines = None
                self._track_limit = index
                self._untracked += 1
                return
        hashes.append(digest)

    def _line_of(self, index: int) -> int:
        return self._lines[index] if self._lines is not None else self._line_base + index

    def _duplicates(self) -> Iterator[Problem]:
        for index, first in _duplicate_pairs(self._hashes):
            earlier = self._line_of(first)
            yield Problem(
                "",
                self._line_of(index),
                None,
                f"duplicate record: identical to line {earlier}",
                "remove the repeated record unless you mean to weight it",
                "warning",
                "duplicate_record",
            )

    def _feed_unparsed(self, raw: bytes | bytearray | memoryview | str, line: int) -> list[Problem]:
        """The slow path: blank lines, bad bytes, bad JSON and JSON only a lenient parser takes."""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        elif not isinstance(raw, (bytes, bytearray, memoryview)):
            raise TypeError(f"feed_line takes bytes, not {type(raw).__name__}")
        raw = bytes(raw)
        stripped = raw.strip()
        if not stripped:
            return []
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.records += 1
            bad = raw[exc.start]
            return [
                Problem(
                    "",
                    line,
                    exc.start + 1,
                    f"line is not valid UTF-8 (byte 0x{bad:02x} at position {exc.start + 1})",
                    "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 in.jsonl)",
                    "error",
                    "not_utf8",
                )
            ]
        body = text.strip()
        if not body:  # only Unicode whitespace: the trainer skips such lines too
            return []
        if "\r" not in body:
            return self._parse_text(body, line, len(text) - len(text.lstrip()))
        # A bare carriage return ends a line for the trainer (universal newlines).
        problems = [
            Problem(
                "",
                line,
                None,
                "line contains a bare carriage return; it is read as a line break",
                "use \\n (or \\r\\n) line endings",
                "warning",
                "bare_carriage_return",
            )
        ]
        for piece in body.split("\r"):
            if piece.strip():
                problems.extend(self._parse_text(piece.strip(), line, None))
        return problems

    def _parse_text(self, text: str, line: int, indent: int | None) -> list[Problem]:
        self.records += 1
        lenient: str | None = None
        try:
            record = _loads(text)
        except ValueError as strict_exc:
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                col = exc.colno + indent if indent is not None and exc.lineno == 1 else None
                return [_invalid_json(line, exc.msg, col)]
            except (ValueError, RecursionError) as exc:
                reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
                return [_invalid_json(line, reason, None)]
            lenient = str(strict_exc).split(":", 1)[0]
        problems = self._accept(record, text.encode("utf-8", "surrogatepass"), line)
        if lenient is not None:
            note = Problem(
                "",
                line,
                None,
                f"line is not strict JSON ({lenient}); only lenient parsers accept it",
                "write strict JSON: no NaN/Infinity, no lone surrogates, no odd whitespace",
                "warning",
                "nonstandard_json",
            )
            problems.insert(0, note)
        return problems


def _duplicate_pairs(hashes: array[int]) -> Iterator[tuple[int, int]]:
    """Yields ``(index, first_index)`` for every repeated hash, in index order."""
    count = len(hashes)
    if count < 2:
        return
    np = _numpy() if count > _SMALL_DUPLICATE_SET else None
    if np is None:
        first_seen: dict[int, int] = {}
        for index, digest in enumerate(hashes):
            first = first_seen.setdefault(digest, index)
            if first != index:
                yield index, first
        return
    values = np.frombuffer(hashes, dtype=np.int64)
    ordered = np.sort(values)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if not repeated.size:
        return
    # ``repeated`` is sorted, so its distinct values are where it changes.
    distinct = repeated[np.concatenate(([True], repeated[1:] != repeated[:-1]))]
    del repeated
    firsts = array("q", [-1]) * len(distinct)
    step = 1 << 18
    for start in range(0, count, step):
        chunk = values[start : start + step]
        slots = np.searchsorted(distinct, chunk)
        np.minimum(slots, len(distinct) - 1, out=slots)
        hits = np.flatnonzero(distinct[slots] == chunk)
        for offset, slot in zip(hits.tolist(), slots[hits].tolist(), strict=True):
            first = firsts[slot]
            if first < 0:
                firsts[slot] = start + offset
            else:
                yield start + offset, first
