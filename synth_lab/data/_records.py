"""Stateless checks of one parsed chat record (one line of an SFT JSONL file).

The accept/reject rules follow the dataset contract: everything the hosted trainer accepts is
accepted here (possibly with a warning), and everything it rejects is an error. The checks are
written for speed on the common case, a ``{"role": ..., "content": "..."}`` message, which takes
a single branch; anything else goes through the complete (slower) checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from synth_lab.data._record_fields import (
    STRING_FIELDS,
    check_part,
    check_record_fields,
    check_tool_call,
    error,
    json_type,
    warn,
)
from synth_lab.errors import Problem

KNOWN_ROLES = frozenset({"system", "user", "assistant", "tool"})
"""Roles every chat template understands; other non-empty roles only draw a warning."""


def check_record(record: object, line: int) -> list[Problem]:
    """Checks one parsed record against the dataset contract.

    Args:
        record: The parsed JSON value of one line (or one in-memory record).
        line: The 1-based line number to put on the problems.

    Returns:
        Errors and per-record warnings, in field order; empty for a clean record. Never raises.
    """
    return inspect_record(record, line)[0]


def inspect_record(record: object, line: int) -> tuple[list[Problem], bool]:
    """Like :func:`check_record`, also saying whether the record has an assistant turn.

    Args:
        record: The parsed record.
        line: The 1-based line number to put on the problems.

    Returns:
        ``(problems, has_assistant_turn)``.
    """
    out: list[Problem] = []
    try:
        return out, _inspect(record, line, out)
    except Exception as exc:  # in-memory records can hold objects whose methods misbehave
        error(
            out,
            line,
            "",
            f"record could not be checked ({type(exc).__name__}: {exc})",
            "make the record plain JSON data: objects, arrays, strings, numbers, booleans, null",
            "unchecked_record",
        )
        return out, False


def _inspect(record: object, line: int, out: list[Problem]) -> bool:
    if type(record) is not dict and not isinstance(record, dict):
        error(
            out,
            line,
            "",
            f"record is {json_type(record)}, not an object",
            'write one JSON object per line, like {"messages": [...]}',
            "not_object",
        )
        return False
    messages = record.get("messages")
    has_assistant = False
    if type(messages) is list or isinstance(messages, (list, tuple)):
        if messages:
            has_assistant = _check_messages(messages, line, out)
            if not has_assistant:
                warn(
                    out,
                    line,
                    "messages",
                    "record has no assistant turn, so there is nothing to learn from it",
                    'add a {"role": "assistant", ...} message or drop the record',
                    "no_assistant_turn",
                )
        else:
            error(
                out,
                line,
                "messages",
                "messages is empty; a record needs at least 1 message",
                "add the conversation's turns or drop the record",
                "empty_messages",
            )
    elif messages is None:
        what = "null" if "messages" in record else "missing"
        error(
            out,
            line,
            "messages",
            f"messages is {what}; every record needs a messages list",
            'add "messages": [{"role": "user", ...}, {"role": "assistant", ...}]',
            "missing_messages",
        )
    else:
        error(
            out,
            line,
            "messages",
            f"messages must be a list of message objects, not {json_type(messages)}",
            "store the turns as a JSON array (not a JSON-encoded string)",
            "messages_not_list",
        )
    if len(record) > 1:
        check_record_fields(record, line, out)
    return has_assistant


def _check_messages(messages: Sequence[Any], line: int, out: list[Problem]) -> bool:
    has_assistant = False
    prev: str | None = None
    for i, msg in enumerate(messages):
        if (
            type(msg) is dict
            and len(msg) == 2
            and type(role := msg.get("role")) is str
            and type(content := msg.get("content")) is str
            and role in KNOWN_ROLES
        ):
            empty = role == "assistant" and (not content or content.isspace())
        else:
            role, empty = _check_message(msg, i, line, out)
            if role is None:
                prev = None
                continue
        if role == prev and role != "tool":  # several tool results in a row are normal
            warn(
                out,
                line,
                f"messages[{i}].role",
                f"messages[{i}] has the same role as messages[{i - 1}] ({role!r})",
                "merge the two turns, or add the missing turn between them",
                "consecutive_roles",
            )
        if role == "assistant":
            has_assistant = True
            if empty:
                warn(
                    out,
                    line,
                    f"messages[{i}].content",
                    f"messages[{i}] is an assistant turn with empty content and no tool calls",
                    "give the turn its text (or tool_calls), or drop it",
                    "empty_assistant_turn",
                )
        elif role == "system" and i:
            warn(
                out,
                line,
                f"messages[{i}].role",
                f"messages[{i}] is a system message but not the first message",
                "move the system message to the start; many chat templates ignore it elsewhere",
                "system_not_first",
            )
        prev = role
    return has_assistant


def _check_message(msg: object, i: int, line: int, out: list[Problem]) -> tuple[str | None, bool]:
    """Full checks of one message; returns its usable role (or None) and whether it is empty."""
    where = f"messages[{i}]"
    if not isinstance(msg, dict):
        error(
            out,
            line,
            where,
            f"{where} is {json_type(msg)}, not an object",
            'write each message as {"role": ..., "content": ...}',
            "message_not_object",
        )
        return None, False
    role = msg.get("role")
    usable: str | None = None
    if not isinstance(role, str) or not role.strip():
        if "role" not in msg:
            got = "missing"
        elif isinstance(role, str):
            got = "a blank string" if role else "an empty string"
        else:
            got = json_type(role)
        error(
            out,
            line,
            f"{where}.role",
            f"{where}.role must be a non-empty string (got {got})",
            'set role to "system", "user", "assistant" or "tool"',
            "invalid_role",
        )
    else:
        usable = role
        if role not in KNOWN_ROLES:
            warn(
                out,
                line,
                f"{where}.role",
                f"{where} has an unusual role {role[:40]!r}",
                'most chat templates know only "system", "user", "assistant" and "tool"',
                "unknown_role",
            )
    content = msg.get("content")
    empty = True
    if content is None:
        pass
    elif isinstance(content, str):
        empty = not content or content.isspace()
    elif isinstance(content, list):
        empty = not content
        for j, part in enumerate(content):
            check_part(part, f"{where}.content[{j}]", line, out)
    elif isinstance(content, dict):
        empty = not content
        check_part(content, f"{where}.content", line, out)
    else:
        error(
            out,
            line,
            f"{where}.content",
            f"{where}.content is {json_type(content)}; it must be a string, a list of parts, "
            "an object or null",
            "write the text as a JSON string",
            "invalid_content",
        )
    calls = msg.get("tool_calls")
    if calls is not None:
        if isinstance(calls, (list, tuple)):
            empty = empty and not calls
            for j, call in enumerate(calls):
                check_tool_call(call, f"{where}.tool_calls[{j}]", line, out)
        else:
            error(
                out,
                line,
                f"{where}.tool_calls",
                f"{where}.tool_calls must be a list, not {json_type(calls)}",
                'write tool_calls as [{"function": {"name": ..., "arguments": ...}}]',
                "tool_calls_not_list",
            )
    for key, code in STRING_FIELDS:
        value = msg.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            if key != "name" and value.strip():
                empty = False  # a reasoning-only turn still has something to learn
        else:
            error(
                out,
                line,
                f"{where}.{key}",
                f"{where}.{key} must be a string if present, not {json_type(value)}",
                f"make {key} a string or remove it",
                code,
            )
    return usable, empty
