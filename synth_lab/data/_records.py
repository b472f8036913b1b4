"""Stateless checks of one parsed chat record (one line of an SFT JSONL file).

The accept/reject rules follow the dataset contract: everything the hosted trainer accepts is
accepted here (possibly with a warning), and everything it rejects is an error. The checks are
written for speed on the common case, a ``{"role": ..., "content": "..."}`` message, which takes
a single branch; anything else goes through the complete (slower) checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from synth_lab.errors import Problem

KNOWN_ROLES = frozenset({"system", "user", "assistant", "tool"})
"""Roles every chat template understands; other non-empty roles only draw a warning."""

_IMAGE_PREFIXES = ("http://", "https://", "data:image/")
_IMAGE_PART_TYPES = ("image_url", "image")
_STRING_FIELDS = (
    ("name", "invalid_message_name"),
    ("reasoning", "invalid_reasoning"),
    ("raw_content", "invalid_raw_content"),
)


def json_type(value: object) -> str:
    """Names a value's type the way a JSON author thinks of it ("a string", "null" ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _error(out: list[Problem], line: int, path: str, message: str, hint: str, code: str) -> None:
    out.append(Problem(path, line, None, message, hint, "error", code))


def _warn(out: list[Problem], line: int, path: str, message: str, hint: str, code: str) -> None:
    out.append(Problem(path, line, None, message, hint, "warning", code))


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
        _error(
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
        _error(
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
                _warn(
                    out,
                    line,
                    "messages",
                    "record has no assistant turn, so there is nothing to learn from it",
                    'add a {"role": "assistant", ...} message or drop the record',
                    "no_assistant_turn",
                )
        else:
            _error(
                out,
                line,
                "messages",
                "messages is empty; a record needs at least 1 message",
                "add the conversation's turns or drop the record",
                "empty_messages",
            )
    elif messages is None:
        what = "null" if "messages" in record else "missing"
        _error(
            out,
            line,
            "messages",
            f"messages is {what}; every record needs a messages list",
            'add "messages": [{"role": "user", ...}, {"role": "assistant", ...}]',
            "missing_messages",
        )
    else:
        _error(
            out,
            line,
            "messages",
            f"messages must be a list of message objects, not {json_type(messages)}",
            "store the turns as a JSON array (not a JSON-encoded string)",
            "messages_not_list",
        )
    if len(record) > 1:
        _check_record_fields(record, line, out)
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
            _warn(
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
                _warn(
                    out,
                    line,
                    f"messages[{i}].content",
                    f"messages[{i}] is an assistant turn with empty content and no tool calls",
                    "give the turn its text (or tool_calls), or drop it",
                    "empty_assistant_turn",
                )
        elif role == "system" and i:
            _warn(
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
        _error(
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
        _error(
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
            _warn(
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
            _check_part(part, f"{where}.content[{j}]", line, out)
    elif isinstance(content, dict):
        empty = not content
        _check_part(content, f"{where}.content", line, out)
    else:
        _error(
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
                _check_tool_call(call, f"{where}.tool_calls[{j}]", line, out)
        else:
            _error(
                out,
                line,
                f"{where}.tool_calls",
                f"{where}.tool_calls must be a list, not {json_type(calls)}",
                'write tool_calls as [{"function": {"name": ..., "arguments": ...}}]',
                "tool_calls_not_list",
            )
    for key, code in _STRING_FIELDS:
        value = msg.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            if key != "name" and value.strip():
                empty = False  # a reasoning-only turn still has something to learn
        else:
            _error(
                out,
                line,
                f"{where}.{key}",
                f"{where}.{key} must be a string if present, not {json_type(value)}",
                f"make {key} a string or remove it",
                code,
            )
    return usable, empty


def _check_part(part: object, where: str, line: int, out: list[Problem]) -> None:
    if not isinstance(part, dict):
        _warn(
            out,
            line,
            where,
            f"content part {where} is {json_type(part)}, not a part object",
            'write parts as {"type": "text", "text": ...} or {"type": "image_url", ...}',
            "content_part_not_object",
        )
        return
    kind = part.get("type")
    if kind == "text":
        if not isinstance(part.get("text"), str):
            _warn(
                out,
                line,
                f"{where}.text",
                f"text part {where} has no string text (got {json_type(part.get('text'))})",
                "set text to the part's string",
                "text_part_not_string",
            )
        return
    if kind not in _IMAGE_PART_TYPES:
        shown = repr(kind)[:40] if isinstance(kind, str) else json_type(kind)
        _warn(
            out,
            line,
            f"{where}.type",
            f"content part {where} has an unknown type {shown}",
            'use type "text", "image_url" or "image"',
            "unknown_part_type",
        )
        return
    # Same lookup order as the trainer: an image_url object wins over an "image" string.
    image_url = part.get("image_url")
    if isinstance(image_url, dict):
        url, url_path = image_url.get("url"), f"{where}.image_url.url"
    elif isinstance(part.get("image"), str):
        url, url_path = part["image"], f"{where}.image"
    else:
        url = None
        url_path = f"{where}.image_url.url" if kind == "image_url" else f"{where}.image"
    if not isinstance(url, str) or not url.strip():
        _error(
            out,
            line,
            url_path,
            f"image part {where} has no image URL (missing, empty or not a string)",
            'set {"image_url": {"url": "https://..."}} or a data:image/...;base64 URL',
            "empty_image_url",
        )
    elif not url.startswith(_IMAGE_PREFIXES):
        _warn(
            out,
            line,
            url_path,
            f"image URL {url[:40]!r} is not http(s):// or data:image/",
            "use an http(s) URL or a data:image/<format>;base64 URL; local paths do not upload",
            "image_url_scheme",
        )


def _check_tool_call(call: object, where: str, line: int, out: list[Problem]) -> None:
    if not isinstance(call, dict):
        _error(
            out,
            line,
            where,
            f"tool call {where} is {json_type(call)}, not an object",
            'write each call as {"function": {"name": ..., "arguments": ...}}',
            "tool_call_not_object",
        )
        return
    # The trainer takes function.name when it is a string (even a blank one), else name.
    name: object = None
    name_path = f"{where}.function.name"
    function = call.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        name = function["name"]
    elif isinstance(call.get("name"), str):
        name, name_path = call["name"], f"{where}.name"
    if not isinstance(name, str) or not name.strip():
        _error(
            out,
            line,
            name_path,
            f"tool call {where} does not name its function",
            "set function.name (or name) to the called tool's name",
            "tool_call_missing_name",
        )


def _check_record_fields(record: Mapping[str, Any], line: int, out: list[Problem]) -> None:
    tools = record.get("tools")
    if tools is not None:
        if isinstance(tools, (list, tuple)):
            for j, tool in enumerate(tools):
                _check_tool(tool, f"tools[{j}]", line, out)
        else:
            # An empty string is an empty sequence to the trainer, so it passes there.
            (_warn if isinstance(tools, str) and not tools else _error)(
                out,
                line,
                "tools",
                f"tools must be a list of tool objects, not {json_type(tools)}",
                'write tools as [{"name": ..., "description": ..., "parameters": {...}}]',
                "tools_not_list",
            )
    metadata = record.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        _error(
            out,
            line,
            "metadata",
            f"metadata must be an object if present, not {json_type(metadata)}",
            'wrap the value in an object, e.g. {"source": ...}, or remove it',
            "metadata_not_object",
        )


def _check_tool(tool: object, where: str, line: int, out: list[Problem]) -> None:
    if not isinstance(tool, dict):
        _error(
            out,
            line,
            where,
            f"tool {where} is {json_type(tool)}, not an object",
            'write each tool as {"name": ..., "description": ..., "parameters": {...}}',
            "tool_not_object",
        )
        return
    name = tool.get("name")
    if not isinstance(name, str) or not name.strip():
        _error(
            out,
            line,
            f"{where}.name",
            f"tool {where} has no name (a non-empty string is required)",
            "set the tool's name",
            "tool_missing_name",
        )
    description = tool.get("description")
    if description is not None and not isinstance(description, str):
        _error(
            out,
            line,
            f"{where}.description",
            f"{where}.description must be a string if present, not {json_type(description)}",
            "make the description a string or remove it",
            "invalid_tool_description",
        )
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        _error(
            out,
            line,
            f"{where}.parameters",
            f"{where}.parameters must be an object (a JSON schema), not {json_type(parameters)}",
            'write parameters as a JSON schema object, e.g. {"type": "object", ...}',
            "invalid_tool_parameters",
        )
