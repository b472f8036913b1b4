"""Checks of the parts of a chat record beyond its messages' roles: content parts, tool
calls, tool definitions and the record's own fields (helpers of :mod:`._records`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synth_lab.errors import Problem

_IMAGE_PREFIXES = ("http://", "https://", "data:image/")
_IMAGE_PART_TYPES = ("image_url", "image")
STRING_FIELDS = (
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


def error(out: list[Problem], line: int, path: str, message: str, hint: str, code: str) -> None:
    out.append(Problem(path, line, None, message, hint, "error", code))


def warn(out: list[Problem], line: int, path: str, message: str, hint: str, code: str) -> None:
    out.append(Problem(path, line, None, message, hint, "warning", code))


def check_part(part: object, where: str, line: int, out: list[Problem]) -> None:
    if not isinstance(part, dict):
        warn(
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
            warn(
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
        warn(
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
        error(
            out,
            line,
            url_path,
            f"image part {where} has no image URL (missing, empty or not a string)",
            'set {"image_url": {"url": "https://..."}} or a data:image/...;base64 URL',
            "empty_image_url",
        )
    elif not url.startswith(_IMAGE_PREFIXES):
        warn(
            out,
            line,
            url_path,
            f"image URL {url[:40]!r} is not http(s):// or data:image/",
            "use an http(s) URL or a data:image/<format>;base64 URL; local paths do not upload",
            "image_url_scheme",
        )


def check_tool_call(call: object, where: str, line: int, out: list[Problem]) -> None:
    if not isinstance(call, dict):
        error(
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
        error(
            out,
            line,
            name_path,
            f"tool call {where} does not name its function",
            "set function.name (or name) to the called tool's name",
            "tool_call_missing_name",
        )


def check_record_fields(record: Mapping[str, Any], line: int, out: list[Problem]) -> None:
    tools = record.get("tools")
    if tools is not None:
        if isinstance(tools, (list, tuple)):
            for j, tool in enumerate(tools):
                check_tool(tool, f"tools[{j}]", line, out)
        else:
            # An empty string is an empty sequence to the trainer, so it passes there.
            (warn if isinstance(tools, str) and not tools else error)(
                out,
                line,
                "tools",
                f"tools must be a list of tool objects, not {json_type(tools)}",
                'write tools as [{"name": ..., "description": ..., "parameters": {...}}]',
                "tools_not_list",
            )
    metadata = record.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        error(
            out,
            line,
            "metadata",
            f"metadata must be an object if present, not {json_type(metadata)}",
            'wrap the value in an object, e.g. {"source": ...}, or remove it',
            "metadata_not_object",
        )


def check_tool(tool: object, where: str, line: int, out: list[Problem]) -> None:
    if not isinstance(tool, dict):
        error(
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
        error(
            out,
            line,
            f"{where}.name",
            f"tool {where} has no name (a non-empty string is required)",
            "set the tool's name",
            "tool_missing_name",
        )
    description = tool.get("description")
    if description is not None and not isinstance(description, str):
        error(
            out,
            line,
            f"{where}.description",
            f"{where}.description must be a string if present, not {json_type(description)}",
            "make the description a string or remove it",
            "invalid_tool_description",
        )
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        error(
            out,
            line,
            f"{where}.parameters",
            f"{where}.parameters must be an object (a JSON schema), not {json_type(parameters)}",
            'write parameters as a JSON schema object, e.g. {"type": "object", ...}',
            "invalid_tool_parameters",
        )
