"""Chat records as the chat template sees them: content text, normalised messages and tools,
and the template's render of a record."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from synth_lab.errors import DatasetError


def content_text(content: Any) -> str:
    """Content (null, str, list of parts, object) as the plain text a chat template expects."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # Image parts are dropped: the models trained here are text-only.
        texts = [
            part if isinstance(part, str) else part.get("text", "")
            for part in content
            if isinstance(part, str) or (isinstance(part, Mapping) and part.get("type") == "text")
        ]
        return "\n".join(t for t in texts if isinstance(t, str))
    if isinstance(content, Mapping):
        # A single part ({"type": "text", ...}); any other object is shown as its JSON.
        if "type" in content:
            return content_text([content])
        return json.dumps(content, ensure_ascii=False)
    return str(content)


def _tool_call(call: Any) -> dict[str, Any]:
    """A tool call in the ``{"type": "function", "function": {...}}`` shape templates read."""
    if not isinstance(call, Mapping):
        return {"type": "function", "function": {"name": str(call), "arguments": {}}}
    fn = call["function"] if isinstance(call.get("function"), Mapping) else call
    arguments = fn.get("arguments", call.get("arguments", {}))
    if isinstance(arguments, str):
        # Most templates apply ``tojson`` to the arguments, which would double-encode a string.
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            arguments = parsed
    out: dict[str, Any] = {
        "type": "function",
        "function": {"name": fn.get("name", ""), "arguments": arguments},
    }
    if call.get("id") is not None:
        out["id"] = str(call["id"])
    return out


def normalize_messages(record: Mapping[str, Any] | Sequence[Any]) -> list[dict[str, Any]]:
    """A record's messages in the form Hugging Face chat templates expect.

    Content becomes a string (text parts joined by newlines, null as ``""``, an object as its
    ``text`` or its JSON); tool calls take the ``{"type": "function", "function": {name,
    arguments}}`` shape with JSON-string arguments parsed; ``tool_call_id``, ``name`` and
    ``reasoning`` (as ``reasoning_content``) are kept.

    Args:
        record: A dataset record (with ``messages``) or a list of messages.

    Raises:
        DatasetError: If there is no list of messages.
    """
    messages = record.get("messages") if isinstance(record, Mapping) else record
    if not isinstance(messages, list):
        raise DatasetError("record has no list of messages", hint="see the dataset format")
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise DatasetError(f"message is not an object: {message!r:.80}")
        item: dict[str, Any] = {
            "role": str(message.get("role") or ""),
            "content": content_text(message.get("content")),
        }
        if message.get("tool_calls"):
            item["tool_calls"] = [_tool_call(call) for call in message["tool_calls"]]
        if message.get("tool_call_id") is not None:
            item["tool_call_id"] = str(message["tool_call_id"])
        if isinstance(message.get("name"), str):
            item["name"] = message["name"]
        if isinstance(message.get("reasoning"), str):
            item["reasoning_content"] = message["reasoning"]
        out.append(item)
    return out


def normalize_tools(record: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The record's ``tools`` as ``{"type": "function", "function": {...}}`` schemas, or None."""
    tools = record.get("tools") if isinstance(record, Mapping) else None
    if not tools or not isinstance(tools, list):
        return None
    out = []
    for tool in tools:
        if isinstance(tool, Mapping) and "function" not in tool:
            tool = {"type": "function", "function": dict(tool)}
        out.append(dict(tool) if isinstance(tool, Mapping) else tool)
    return out


def render_messages(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    kwargs: Mapping[str, Any],
    *,
    generation_prompt: bool = False,
) -> str:
    return tokenizer.apply_chat_template(
        messages,
        tools=tools,
        tokenize=False,
        add_generation_prompt=generation_prompt,
        **kwargs,
    )


def try_render_messages(*args: Any, **kwargs: Any) -> str | None:
    # Templates may refuse a prefix (say, one not ending on an assistant turn); the full
    # render decides whether the record is usable, a failed prefix only means a fallback.
    try:
        return render_messages(*args, **kwargs)
    except Exception:
        return None


def render_chat(
    tokenizer: Any,
    record: Mapping[str, Any],
    *,
    add_generation_prompt: bool = False,
    template_kwargs: Mapping[str, Any] | None = None,
) -> str:
    """The record rendered as text by the tokenizer's chat template.

    Raises:
        DatasetError: If the tokenizer has no chat template or the template rejects the record.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise DatasetError(
            "the tokenizer has no chat template",
            hint="use a chat (instruct) tokenizer, or set tokenizer.chat_template",
        )
    messages = normalize_messages(record)
    try:
        return render_messages(
            tokenizer,
            messages,
            normalize_tools(record),
            template_kwargs or {},
            generation_prompt=add_generation_prompt,
        )
    except Exception as exc:
        raise DatasetError(f"the chat template rejected the record: {exc}") from exc
