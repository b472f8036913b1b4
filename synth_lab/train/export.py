"""The final folder: model or adapter, tokenizer, config, metrics and a short model card."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from synth_lab._files import atomic_write_text
from synth_lab.train.checkpoint import copy_model_files
from synth_lab.train.result import FINAL_DIR, SUMMARY_FILE


def write_final(
    output_dir: str | os.PathLike[str],
    source: Path,
    *,
    summary: dict[str, Any],
    config_toml: str,
) -> Path:
    """Build ``output_dir/final/`` from a checkpoint folder, atomically (temp, then rename)."""
    root = Path(output_dir)
    final = root / FINAL_DIR
    tmp = root / f".{FINAL_DIR}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        copy_model_files(source, tmp)
        atomic_write_text(tmp / "config.toml", config_toml)
        metrics = root / "metrics.jsonl"
        if metrics.is_file():
            shutil.copy2(metrics, tmp / "metrics.jsonl")
        atomic_write_text(tmp / SUMMARY_FILE, json.dumps(summary, indent=2))
        atomic_write_text(tmp / "README.md", model_card(summary))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def model_card(summary: dict[str, Any]) -> str:
    """A short README: what was trained, on what, how well, and how to load it."""
    adapter = summary.get("mode") in ("lora", "qlora")
    rows = [
        ("base model", summary.get("model")),
        ("mode", summary.get("mode")),
        ("steps", f"{summary.get('steps')} of {summary.get('total_steps')}"),
        ("epochs", summary.get("epoch")),
        ("training records", summary.get("records")),
        ("supervised tokens seen", summary.get("trained_tokens")),
        ("global batch", summary.get("global_batch")),
        ("learning rate", summary.get("learning_rate")),
        ("sequence length", summary.get("sequence_length")),
        ("precision", summary.get("precision")),
        ("processes", f"{summary.get('world_size')} ({summary.get('strategy')})"),
        ("last train loss", summary.get("train_loss")),
        ("best val loss", summary.get("best_metric")),
        ("weights from", summary.get("final_from")),
    ]
    from synth_lab.models.gguf import weights_note

    note = weights_note(str(summary.get("model") or ""))
    if note:  # the base weights are dequantized GGUF, not the original release
        rows.insert(1, ("base weights", note))
    table = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in rows)
    if adapter:
        load = (
            "from peft import AutoPeftModelForCausalLM\n"
            "from transformers import AutoTokenizer\n\n"
            'model = AutoPeftModelForCausalLM.from_pretrained("PATH")\n'
            'tokenizer = AutoTokenizer.from_pretrained("PATH")'
        )
    else:
        load = (
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            'model = AutoModelForCausalLM.from_pretrained("PATH")\n'
            'tokenizer = AutoTokenizer.from_pretrained("PATH")'
        )
    kind = "LoRA adapter" if adapter else "model"
    date = time.strftime("%Y-%m-%d", time.gmtime())
    return (
        f"---\nbase_model: {summary.get('model')}\nlibrary_name: "
        f"{'peft' if adapter else 'transformers'}\ntags: [sft, synth-lab]\n---\n\n"
        f"# Supervised finetune of {summary.get('model')}\n\n"
        f"A {kind} trained with synth-lab on {date}, on chat data with the loss on assistant "
        "turns only.\n\n| | |\n|---|---|\n"
        f"{table}\n\nThe config is in `config.toml`, every metric point in `metrics.jsonl`.\n\n"
        f"```python\n{load}\n```\n"
    )
