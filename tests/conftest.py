"""Shared fixtures: the golden examples and small datasets written per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"
SEEDS = ("seed_minimal_fft_qwen3_4b", "seed_qwen3_32b_fsdp_4xh100")


def chat(user: str = "Hi", reply: str = "Hello!", system: str | None = None) -> dict[str, Any]:
    """A valid chat record."""
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return {"messages": messages}


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """Write records (dicts are JSON-encoded, str/bytes written as raw lines)."""
    with path.open("wb") as handle:
        for record in records:
            if isinstance(record, bytes):
                handle.write(record + b"\n")
            elif isinstance(record, str):
                handle.write(record.encode() + b"\n")
            else:
                handle.write(json.dumps(record).encode() + b"\n")
    return path


@pytest.fixture
def shell() -> Iterator[Any]:
    """A real IPython shell with the extension loaded (unloaded and reset afterwards)."""
    from IPython.core.interactiveshell import InteractiveShell

    from synth_lab import errors

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "synth_lab")
    yield ip
    ip.run_line_magic("unload_ext", "synth_lab")
    ip.reset()
    errors.SHOW_TRACEBACKS = False


@pytest.fixture
def golden() -> Path:
    return GOLDEN


@pytest.fixture
def train_jsonl(tmp_path: Path) -> Path:
    """A small valid training file of 10 records."""
    return write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}", f"a{i}") for i in range(10)])
