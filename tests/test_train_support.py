"""Helpers shared by the trainer tests (no tests here): data, configs, a shared model cache."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_TEXT = (
    "the cat sat on a mat and then went to sleep while the dog barked loudly at night "
    "water boils at one hundred degrees the answer is yes no maybe please thank you"
)
WORDS = tuple(_TEXT.split(" "))


def records(n: int, seed: int = 0, *, max_words: int = 14) -> list[dict[str, Any]]:
    """``n`` chat records of varied length; replies echo the prompt, so there is a pattern."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        prompt = " ".join(rng.choices(WORDS, k=rng.randint(2, max_words)))
        messages = [{"role": "user", "content": prompt}]
        messages.append({"role": "assistant", "content": f"{prompt} {rng.choice(WORDS)}"})
        if rng.random() < 0.3:  # some multi-turn records
            messages.append({"role": "user", "content": "again"})
            messages.append({"role": "assistant", "content": prompt})
        out.append({"messages": messages})
    return out


def config_text(*, extra: str = "", hyper: str = "", parallel: str = "") -> str:
    """A small config for the tiny model; sections can be extended."""
    text = (
        '[job]\nmodel = "synth-lab/tiny-chat"\n'
        f"{extra}\n"
        "[hyperparameters]\nn_epochs = 1\nglobal_batch = 8\nper_device_batch = 4\n"
        f"sequence_length = 64\nlearning_rate = 2e-3\n{hyper}\n"
    )
    if parallel:
        text += f"[hyperparameters.parallelism]\n{parallel}\n"
    return text


@contextlib.contextmanager
def shared_cache(factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Build the tiny model once per test session, in a temporary cache (also for workers)."""
    path = factory.getbasetemp() / "synth-lab-cache"
    before = os.environ.get("SYNTH_LAB_CACHE")
    os.environ["SYNTH_LAB_CACHE"] = str(path)
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop("SYNTH_LAB_CACHE", None)
        else:
            os.environ["SYNTH_LAB_CACHE"] = before
