"""A chat dataset in a notebook: one table row per record, its problems, and the usual edits.

>>> ds = Dataset.load("train.jsonl").with_tokenizer("synth-lab/tiny-chat", sequence_length=512)
>>> ds.df.head(); ds.problems; ds.describe(); ds.plot_lengths(); ds.preview(0)
>>> train, val = ds.dedupe().split(0.1, seed=0)
>>> train.to_jsonl("train.clean.jsonl")

Records are held in memory as parsed JSON (a notebook dataset). Every operation returns a new
:class:`Dataset`; records keep the line numbers they had in the file, so problems always point
at the source. Token counts are computed once per tokenizer, when first needed.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from synth_lab._deps import require
from synth_lab._files import atomic_write_bytes
from synth_lab._html import escape, escape_rendered, no_math
from synth_lab.data._lines import iter_lines, open_dataset, too_long
from synth_lab.data._linter import UNPARSED
from synth_lab.data._rows import (
    TokenStats,
    isna,
    parse_line,
    record_summary,
    records_from_frame,
    token_problems,
    token_stats,
)
from synth_lab.data.chat import (
    encode_chat,
    resolve_tokenizer,
)
from synth_lab.data.preview import ChatPreview
from synth_lab.data.problem_table import SEVERITY_COLOURS, ProblemFrame, first_problems
from synth_lab.data.validate import Linter
from synth_lab.errors import DatasetError, Problem

pd = require("pandas", "The Dataset kit (%sft_data, Dataset)", "notebook")

PROBLEM_COLUMNS = ("line", "path", "code", "severity", "message", "hint")
_HTML_ROWS = 20


class Dataset:
    """Chat records with their source line numbers, problems and (optionally) token counts.

    Build one with :meth:`load`, :meth:`from_records` or :meth:`from_dataframe`.
    """

    def __init__(
        self,
        records: Sequence[Any],
        lines: Sequence[int] | None = None,
        *,
        path: str | None = None,
        problems: list[Problem] | None = None,
        tokenizer: Any = None,
        sequence_length: int | None = None,
        token_stats: list[TokenStats | None] | None = None,
    ) -> None:
        self._records = list(records)
        self._lines = list(lines) if lines is not None else list(range(1, len(self._records) + 1))
        if len(self._lines) != len(self._records):
            raise ValueError("records and lines differ in length")
        self.path = path
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self._lint = problems  # None: lint the records when first asked
        self._stats = token_stats
        self._token_warnings: list[Problem] | None = None
        self._df: pd.DataFrame | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, path: str | os.PathLike[str], *, limit: int | None = None) -> Dataset:
        """Read a JSONL file in one pass, validating every line as it goes.

        Args:
            path: The JSONL file.
            limit: Read only the first ``limit`` records (non-blank lines), like ``--examples``.

        Raises:
            DatasetError: If the file is missing or unreadable (problems in the data never
                raise: they are in :attr:`problems`).
        """
        linter = Linter()
        records: list[Any] = []
        lines: list[int] = []
        problems: list[Problem] = []
        with open_dataset(path) as handle:
            for line, raw in enumerate(iter_lines(handle), start=1):
                if raw is None:
                    linter.records += 1
                    problems.append(too_long(line))
                    continue
                found = linter.feed_line(raw, line)
                if found:
                    problems.extend(found)
                record = linter.last_record
                ok = record is not UNPARSED
                if not ok:
                    ok, record = parse_line(raw)
                if ok:
                    records.append(record)
                    lines.append(line)
                if limit is not None and linter.records >= limit:
                    break
        problems.extend(linter.finish())
        return cls(records, lines, path=os.fspath(path), problems=problems)

    @classmethod
    def from_records(cls, records: Sequence[Any] | Iterator[Any]) -> Dataset:
        """Records (dicts) as if they were lines 1, 2, ... of a file."""
        return cls(list(records))

    @classmethod
    def from_dataframe(cls, df: pd.DataFrame) -> Dataset:
        """Records from a DataFrame with a ``messages`` column (and optional ``tools``,
        ``tool_choice``, ``metadata`` columns; other columns are ignored)."""
        records = records_from_frame(df)
        return cls(records)

    def _subset(self, indices: Sequence[int]) -> Dataset:
        return Dataset(
            [self._records[i] for i in indices],
            [self._lines[i] for i in indices],
            path=self.path,
            tokenizer=self.tokenizer,
            sequence_length=self.sequence_length,
            token_stats=None if self._stats is None else [self._stats[i] for i in indices],
        )

    def with_tokenizer(self, tokenizer: Any, sequence_length: int | None = None) -> Dataset:
        """A copy that also reports token counts (and truncation, given ``sequence_length``).

        Args:
            tokenizer: A tokenizer, or a name/path for :func:`~synth_lab.models.load_tokenizer`.
            sequence_length: Training sequence length; longer records get a warning.
        """
        return Dataset(
            self._records,
            self._lines,
            path=self.path,
            problems=self._lint,
            tokenizer=resolve_tokenizer(tokenizer),
            sequence_length=sequence_length,
        )

    def tokenize(self, tokenizer: Any, sequence_length: int | None = None) -> Dataset:
        """Like :meth:`with_tokenizer`, but counts the tokens now rather than when needed."""
        out = self.with_tokenizer(tokenizer, sequence_length)
        out._token_stats()
        return out

    # ------------------------------------------------------------------ container
    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._records)

    def __getitem__(self, index: int | slice) -> Any:
        """Record ``index`` (a shared dict: copy before editing); a slice gives a Dataset."""
        if isinstance(index, slice):
            return self._subset(range(len(self))[index])
        return self._records[index]

    @property
    def records(self) -> list[Any]:
        """The records, in order (a new list; the dicts are shared)."""
        return list(self._records)

    @property
    def lines(self) -> list[int]:
        """The source line of each record."""
        return list(self._lines)

    # ------------------------------------------------------------------ tables
    def _token_stats(self) -> list[TokenStats | None] | None:
        if self.tokenizer is None:
            return None
        if self._stats is None:
            self._stats = token_stats(self.tokenizer, self._records, self.sequence_length)
        return self._stats

    @property
    def df(self) -> pd.DataFrame:
        """One row per record: line, n_messages, roles, has_system, has_tools, n_chars, and with
        a tokenizer n_tokens, n_trained_tokens, truncated. Row ``i`` is record ``ds[i]``."""
        if self._df is None:
            rows = [record_summary(r) for r in self._records]
            columns = ("n_messages", "roles", "has_system", "has_tools", "n_chars")
            data: dict[str, Any] = {"line": self._lines}
            for j, name in enumerate(columns):
                data[name] = [row[j] for row in rows]
            df = pd.DataFrame(data)
            stats = self._token_stats()
            if stats is not None:
                for j, (name, dtype) in enumerate(
                    (("n_tokens", "Int64"), ("n_trained_tokens", "Int64"), ("truncated", "boolean"))
                ):
                    df[name] = pd.array([None if s is None else s[j] for s in stats], dtype=dtype)
            self._df = df
        return self._df.copy()

    def problem_list(self) -> list[Problem]:
        """Validator problems plus, with a tokenizer, template and truncation warnings."""
        if self._lint is None:
            linter = Linter()
            found: list[Problem] = []
            for record, line in zip(self._records, self._lines, strict=True):
                found.extend(linter.feed_record(record, line))
            found.extend(linter.finish())
            self._lint = found
        problems = list(self._lint) + self._token_problems()
        problems.sort(key=lambda p: -1 if p.line is None else p.line)
        return problems

    def _token_problems(self) -> list[Problem]:
        stats = self._token_stats()
        if stats is None:
            return []
        if self._token_warnings is not None:
            return self._token_warnings
        broken = {p.line for p in self._lint or () if p.severity == "error"}
        out = token_problems(
            self.tokenizer, self._records, self._lines, stats, broken, self.sequence_length
        )
        self._token_warnings = out
        return out

    @property
    def problems(self) -> pd.DataFrame:
        """Every problem as a table: line, path, code, severity, message, hint (shown whole,
        errors in red and warnings in amber)."""
        rows = [{k: getattr(p, k) for k in PROBLEM_COLUMNS} for p in self.problem_list()]
        df = ProblemFrame(rows, columns=list(PROBLEM_COLUMNS))
        df["line"] = df["line"].astype("Int64")
        return df

    # ------------------------------------------------------------------ edits
    def head(self, n: int = 5) -> Dataset:
        """The first ``n`` records."""
        return self._subset(range(min(n, len(self))))

    def sample(self, n: int, seed: int | None = 0) -> Dataset:
        """``n`` records drawn at random without replacement (all of them if fewer)."""
        return self._subset(random.Random(seed).sample(range(len(self)), min(n, len(self))))

    def filter(self, keep: Sequence[bool] | Callable[[Any], bool] | Any) -> Dataset:
        """The records where ``keep`` is true: a boolean mask (list, array, Series; missing
        values count as false) or a function of the record dict."""
        if callable(keep):
            flags = [bool(keep(record)) for record in self._records]
        else:
            flags = [v is True or (not isna(v) and bool(v)) for v in _as_list(keep)]
            if len(flags) != len(self):
                raise ValueError(f"mask has {len(flags)} values for {len(self)} records")
        return self._subset([i for i, flag in enumerate(flags) if flag])

    def drop_invalid(self) -> Dataset:
        """The records without validator errors."""
        bad = {p.line for p in self.problem_list() if p.severity == "error"}
        return self._subset([i for i, line in enumerate(self._lines) if line not in bad])

    def split(self, val_fraction: float = 0.1, seed: int | None = 0) -> tuple[Dataset, Dataset]:
        """A random ``(train, val)`` split; both keep the original record order."""
        if not 0 < val_fraction < 1:
            raise ValueError("val_fraction must be between 0 and 1")
        order = list(range(len(self)))
        random.Random(seed).shuffle(order)
        n_val = round(len(self) * val_fraction)
        if len(self) >= 2:
            n_val = min(max(n_val, 1), len(self) - 1)
        return self._subset(sorted(order[n_val:])), self._subset(sorted(order[:n_val]))

    def dedupe(self) -> Dataset:
        """The records without exact repeats (same JSON, key order ignored); firsts are kept."""
        seen: set[bytes] = set()
        keep = []
        for i, record in enumerate(self._records):
            try:
                key = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
            except TypeError:
                key = repr(record).encode("utf-8", "replace")
            if key not in seen:
                seen.add(key)
                keep.append(i)
        return self._subset(keep)

    def to_jsonl(self, path: str | os.PathLike[str]) -> Path:
        """Write the records as JSONL, atomically (a reader never sees half a file)."""
        chunks = []
        for record, line in zip(self._records, self._lines, strict=True):
            try:
                chunks.append(orjson.dumps(record))
            except TypeError as exc:
                raise DatasetError(f"record from line {line} is not JSON data: {exc}") from exc
        return atomic_write_bytes(path, b"\n".join(chunks) + b"\n" if chunks else b"")

    # ------------------------------------------------------------------ summaries
    def describe(self) -> pd.DataFrame:
        """Counts, role mix and length percentiles (p50/p90/p99/max) as a one-column table."""
        from synth_lab.data.stats import describe

        return describe(self)

    def plot_lengths(
        self,
        ax: Any = None,
        tokenizer: Any = None,
        sequence_length: int | None = None,
        *,
        bins: int = 50,
    ) -> Any:
        """Histogram of record lengths; see :func:`synth_lab.data.stats.plot_lengths`."""
        from synth_lab.data.stats import plot_lengths

        return plot_lengths(self, ax, tokenizer, sequence_length, bins=bins)

    def preview(self, index: int, tokenizer: Any = None) -> ChatPreview:
        """Record ``index`` rendered through the chat template, trained tokens highlighted."""
        tok = resolve_tokenizer(tokenizer) if tokenizer is not None else self.tokenizer
        if tok is None:
            raise DatasetError(
                "preview needs a tokenizer",
                hint="pass one: ds.preview(0, 'synth-lab/tiny-chat'), or use ds.with_tokenizer",
            )
        encoded = encode_chat(tok, self._records[index])  # untruncated: the preview shows the cut
        return ChatPreview(encoded, line=self._lines[index], sequence_length=self.sequence_length)

    # ------------------------------------------------------------------ display
    def _headline(self) -> str:
        problems = self.problem_list()
        errors = sum(p.severity == "error" for p in problems)
        text = f"{len(self):,} records, {errors:,} errors, {len(problems) - errors:,} warnings"
        if self.path:
            text += f" from {self.path}"
        if self.tokenizer is not None:
            name = getattr(self.tokenizer, "name_or_path", "") or type(self.tokenizer).__name__
            text += f"; tokenizer {name}"
            if self.sequence_length:
                text += f", sequence_length {self.sequence_length:,}"
        return text

    def _repr_html_(self) -> str:
        df = self.df
        more = len(df) - _HTML_ROWS
        tail = f"<p>… {more:,} more rows</p>" if more > 0 else ""
        table = escape_rendered(df.head(_HTML_ROWS).to_html(escape=True, border=0))
        listed = "".join(
            f"<li style='color:{SEVERITY_COLOURS.get(severity, 'inherit')}'>{escape(line)}</li>"
            for severity, line in first_problems(self.problem_list())
        )
        shown = f"<ul>{listed}</ul>" if listed else ""
        headline = f"<p><b>Dataset</b>: {escape(self._headline())}</p>"
        return no_math(f"<div>{headline}{shown}{table}{tail}</div>")

    def __repr__(self) -> str:
        df = self.df
        more = len(df) - _HTML_ROWS
        tail = f"\n... {more:,} more rows" if more > 0 else ""
        problems = "".join(f"\n  {line}" for _, line in first_problems(self.problem_list()))
        return f"Dataset: {self._headline()}{problems}\n{df.head(_HTML_ROWS).to_string()}{tail}"


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, Mapping):
        raise TypeError("filter() takes a boolean mask or a function, not a mapping")
    if hasattr(values, "tolist"):
        return values.tolist()
    return list(values)
