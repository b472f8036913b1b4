"""The per-record parts of :class:`~synth_lab.data.dataset.Dataset`: parsing a line, a record's
table row, records from a DataFrame, token counts and the warnings they give."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson

from synth_lab.data.chat import content_text, encode_chats, render_chat
from synth_lab.errors import DatasetError, Problem

TokenStats = tuple[int, int, bool, int]  # n_tokens, n_trained, truncated, n_trained_lost
_CHUNK = 512  # records encoded per batch: bounds memory, keeps batch tokenisation fast


def parse_line(raw: bytes) -> tuple[bool, Any]:
    """``(True, value)`` for a line holding JSON, ``(False, None)`` for blank or broken lines."""
    try:
        return True, orjson.loads(raw)
    except ValueError:
        pass
    try:  # what only a lenient parser takes (NaN ...); the linter has warned about it
        text = raw.decode("utf-8").strip()
        return (True, json.loads(text)) if text else (False, None)
    except ValueError:
        return False, None


def record_summary(record: Any) -> tuple[int, str, bool, bool, int]:
    """n_messages, roles, has_system, has_tools, n_chars of one (possibly invalid) record."""
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        return 0, "", False, False, 0
    roles: list[str] = []
    chars = 0
    for message in record["messages"]:
        if isinstance(message, dict):
            role = message.get("role")
            roles.append(role if isinstance(role, str) else "?")
            content = message.get("content")
            chars += len(content) if isinstance(content, str) else len(content_text(content))
        else:
            roles.append("?")
    return len(roles), ",".join(roles), "system" in roles, bool(record.get("tools")), chars


def records_from_frame(df: Any) -> list[dict[str, Any]]:
    """Records from a DataFrame with a ``messages`` column (and optional ``tools``,
    ``tool_choice``, ``metadata`` columns; other columns are ignored)."""
    if "messages" not in df.columns:
        raise DatasetError("the DataFrame has no 'messages' column")
    keys = [k for k in ("messages", "tools", "tool_choice", "metadata") if k in df.columns]
    records = []
    for row in df[keys].itertuples(index=False):
        record = {}
        for key, value in zip(keys, row, strict=True):
            if hasattr(value, "tolist"):  # arrays from parquet-backed frames
                value = value.tolist()
            if key == "messages" or not (value is None or isna(value)):
                record[key] = value
        records.append(record)
    return records


def isna(value: Any) -> bool:
    """Whether pandas calls ``value`` missing (False for values it cannot judge)."""
    import pandas as pd

    try:
        result = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return result if isinstance(result, bool) else False


def token_stats(
    tokenizer: Any, records: Sequence[Any], sequence_length: int | None
) -> list[TokenStats | None]:
    """Token counts of every record (``None`` for one the template cannot render)."""
    stats: list[TokenStats | None] = []
    for start in range(0, len(records), _CHUNK):
        chunk = records[start : start + _CHUNK]
        for enc in encode_chats(tokenizer, chunk, max_length=sequence_length, skip_errors=True):
            stats.append(
                None
                if enc is None
                else (enc.n_tokens, enc.n_trained, enc.truncated, enc.n_trained_lost)
            )
    return stats


def token_problems(
    tokenizer: Any,
    records: Sequence[Any],
    lines: Sequence[int],
    stats: Sequence[TokenStats | None],
    broken: set[int | None],
    sequence_length: int | None,
) -> list[Problem]:
    """Template and truncation warnings (records on ``broken`` lines already have an error)."""
    out: list[Problem] = []
    for record, line, stat in zip(records, lines, stats, strict=True):
        if stat is None and line not in broken:
            try:
                render_chat(tokenizer, record)
                reason = "it could not be tokenised"
            except DatasetError as exc:
                reason = exc.message
            hint = "fix or drop the record; the tokenizer's chat template cannot render it"
            out.append(Problem("", line, None, reason, hint, "warning", "chat_template"))
        elif stat is not None and stat[2]:
            n_tokens, trained, _, lost = stat
            message = (
                f"record is {n_tokens:,} tokens, longer than sequence_length "
                f"{sequence_length:,}; truncation drops {lost:,} of its {trained:,} "
                "supervised tokens"
            )
            hint = "raise sequence_length, or shorten, split or drop the record"
            out.append(Problem("", line, None, message, hint, "warning", "too_long"))
    return out
