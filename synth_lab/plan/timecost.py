"""Training time and cost: tokens × epochs × FLOPs per token / (GPUs × peak × MFU) × price.

FLOPs per token follow the usual accounting (Kaplan et al.; Chinchilla appendix F): a matmul
with ``N`` weights costs ``2N`` forward and ``4N`` backward (input and weight gradients), so a
full finetune is ``6N``; a frozen base skips the weight gradients, so LoRA is about ``4N`` (plus
``6×`` its adapter); activation checkpointing runs the forward twice (``+2N``). Attention adds
``6 × layers × (heads × head_dim) × context`` per token (causal: half of the ``12·L·d·s`` of
a full square), with the context the length of the packed conversation, at most the sequence.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth_lab.data._linter import message_characters
from synth_lab.plan.memory import Setup
from synth_lab.plan.shapes import ModelShape

DEFAULT_MFU = 0.4
CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class Tokens:
    """Training tokens per epoch and how they were obtained."""

    per_epoch: int | None
    records: int | None
    how: str


def tokens_from_characters(path: str | os.PathLike[str]) -> Tokens:
    """Estimate tokens from the characters of every message (about 4 per token in English).

    The dry run has these counts from its validation pass already (:func:`tokens_from_counts`);
    this reads the file for callers that have not validated it.
    """
    chars = records = 0
    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            messages = record.get("messages") if isinstance(record, dict) else None
            if not isinstance(messages, list):
                continue
            records += 1
            chars += message_characters(messages)
    return tokens_from_counts(chars, records)


def tokens_from_counts(characters: int, records: int) -> Tokens:
    """The character-based estimate from counts (a linter's ``characters``, ``message_records``)."""
    how = (
        f"estimated from {characters:,} characters at {CHARS_PER_TOKEN:g} per token "
        "(no tokenizer at hand; pass tokens= or count them with the dry run's --tokens)"
    )
    return Tokens(round(characters / CHARS_PER_TOKEN), records, how)


def flops_per_token(shape: ModelShape, s: Setup, trainable: int, context: int) -> tuple[float, str]:
    n = shape.active_params
    attn = 6 * shape.layers * shape.heads * shape.head_dim * context
    if s.mode == "full_finetune":
        dense, words = 6 * n, f"6 × {n:,} (forward 2N + backward 4N)"
    else:
        dense, words = 4 * n + 6 * trainable, f"4 × {n:,} + 6 × {trainable:,} (frozen base)"
    if s.checkpointing:
        dense += 2 * n
        words += f" + 2 × {n:,} (recomputed forward)"
    how = f"{words} + attention 6 × {shape.layers} × {shape.heads * shape.head_dim} × {context}"
    return float(dense + attn), how


def time_and_cost(
    tokens: Tokens,
    n_epochs: int,
    fpt: float,
    fpt_how: str,
    *,
    gpus: int,
    peak: float,
    mfu: float,
    price: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``time`` and ``cost`` sections of a plan."""
    total = tokens.per_epoch * n_epochs if tokens.per_epoch is not None else None
    flops = total * fpt if total is not None else None
    hours = flops / (gpus * peak * mfu) / 3600 if flops is not None else None
    time = {
        "tokens": total,
        "tokens_how": tokens.how,
        "flops_per_token": fpt,
        "flops_per_token_how": fpt_how,
        "flops": flops,
        "assumed_mfu": mfu,
        "peak_flops_per_gpu": peak,
        "gpus": gpus,
        "hours": hours,
        "how": "tokens × epochs × FLOPs per token / (GPUs × peak bf16 FLOP/s × MFU)",
    }
    usd = hours * gpus * price if hours is not None else None
    cost = {"usd": usd, "price_per_gpu_hour": price, "how": "hours × GPUs × price per GPU-hour"}
    return time, cost
