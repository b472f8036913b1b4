"""Load a trained folder (final or checkpoint) back, and generate a reply with it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from synth_lab.errors import TrainingError


def load_trained(folder: str | os.PathLike[str], *, device: str | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in eval mode from a folder written by the trainer.

    A LoRA folder is loaded on top of its base model, quantised again for QLoRA, as trained.
    """
    from synth_lab.config import load_config
    from synth_lab.train.model import choose_precision, is_adapter_folder, load_model

    path = Path(folder)
    if not (path / "config.toml").is_file():
        raise TrainingError(f"{path} was not written by the trainer (no config.toml)")
    config = load_config(path / "config.toml")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    precision = choose_precision(config.precision, dev)
    adapter = is_adapter_folder(path)
    model, tokenizer = load_model(
        config,
        device=dev,
        precision=precision,
        adapter_from=path if adapter else None,
        weights_from=None if adapter else path,
        trainable=False,
    )
    model.eval()
    return model, tokenizer


def generate(
    model: Any,
    tokenizer: Any,
    prompt: str | list[dict[str, Any]],
    *,
    max_new_tokens: int = 64,
) -> str:
    """Greedy reply to ``prompt`` (a user message, or chat messages), without special tokens."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    device = next(model.parameters()).device
    input_ids = encoded["input_ids"].to(device)
    with torch.no_grad():
        output = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            use_cache=True,
        )
    return tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=True)
