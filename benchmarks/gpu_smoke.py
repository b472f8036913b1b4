"""One script that checks the trainer on a GPU box and writes what it found as JSON.

Environment (CUDA, bf16, bitsandbytes, flash kernels); the varlen attention kernel against the
per-conversation loop (outputs and gradients equal, no silent fallback); a small model of a real
architecture with the real Qwen vocabulary, built from a config, trained a few steps in FFT,
FFT with activation checkpointing, LoRA and QLoRA (loss falls, tokens/s, peak memory per rank);
resume; generation; and ``gpu_train.py`` (MFU). Under 8 minutes on one H200.

    python benchmarks/gpu_smoke.py [--out benchmarks/results/gpu_smoke.json]
    python benchmarks/gpu_smoke.py --smoke      # tiny sizes, runs on a CPU (the tests use it)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gpu_train import build, chats  # noqa: E402

SMALL = {  # Qwen2.5-0.5B's layer shape, fewer layers: real kernels, minutes not hours
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 6,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "tie_word_embeddings": True,
}
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
}


def environment() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401

        varlen = True
    except ImportError:
        varlen = False
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
        "bitsandbytes": importlib.util.find_spec("bitsandbytes") is not None,
        "flash_attn": importlib.util.find_spec("flash_attn") is not None,
        "torch_varlen_kernel": varlen,
    }


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def varlen_vs_loop(device: str) -> dict[str, Any]:
    """The kernel path (GPU, bf16) against the per-conversation loop (fp32 reference)."""
    import torch

    from synth_lab.train import attention

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    gen = torch.Generator().manual_seed(0)
    bounds = (0, 37, 100, 163, 256)
    shape = (1, 8, bounds[-1], 64)
    base = [torch.randn(shape, generator=gen) for _ in range(3)]
    module = torch.nn.Module().eval()
    warnings = _Warnings()
    logging.getLogger(attention.__name__).addHandler(warnings)
    calls = {"kernel": 0}
    real = attention._cuda_varlen

    def counted(*args: Any) -> Any:
        out = real(*args)
        calls["kernel"] += out is not None
        return out

    attention._cuda_varlen = counted
    try:
        results = []
        for kind in ("fast", "reference"):
            q, k, v = (
                t.to(device, dtype if kind == "fast" else torch.float32).requires_grad_()
                for t in base
            )
            if kind == "reference":
                attention._cuda_varlen = lambda *a: None  # the loop, in fp32
            out, _ = attention.varlen_attention(module, q, k, v, None, synth_lab_bounds=bounds)
            out.float().square().sum().backward()
            results.append((out.float(), q.grad.float(), k.grad.float(), v.grad.float()))
    finally:
        attention._cuda_varlen = real
        logging.getLogger(attention.__name__).removeHandler(warnings)
    diffs = [float((a - b).abs().max()) for a, b in zip(*results, strict=True)]
    tolerance = 5e-2 if dtype == torch.bfloat16 else 1e-5
    return {
        "kernel_used": calls["kernel"] > 0,
        "fallback_warnings": warnings.messages,  # empty where the kernel ran: never silent
        "max_abs_diff": dict(zip(("out", "dq", "dk", "dv"), diffs, strict=True)),
        "equal_within_tolerance": all(d <= tolerance for d in diffs),
    }


def train_case(folder: Path, out: Path, kind: str, args: argparse.Namespace, **extra: Any) -> dict:
    from synth_lab.train import run

    mode = "fft" if kind.startswith("fft") else "peft"
    parallel = "bf16 = true\n" + ("activation_checkpointing = true\n" if kind == "fft+ac" else "")
    config = (
        f'[job]\nmodel = "{folder}"\n[hyperparameters]\ntrain_kind = "{mode}"\n'
        f"global_batch = {args.batch}\nper_device_batch = {args.batch}\n"
        f"sequence_length = {args.seq}\nlearning_rate = {1e-4 if mode == 'fft' else 1e-3}\n"
        f"[hyperparameters.parallelism]\n{parallel}"
        + ("[training]\nuse_qlora = true\n" if kind == "qlora" else "")
    )
    records = chats(args.batch * (args.steps + 1), seed=1, median_words=args.words)
    started = time.perf_counter()
    result = run(config, records, output_dir=out, max_steps=args.steps, live=False, **extra)
    losses = [
        p.value for p in sorted(result.points, key=lambda p: p.step) if p.name == "train.loss"
    ]
    return {
        "status": result.status,
        "precision": result.summary["precision"],
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "loss_fell": losses[-1] < losses[0],
        "tokens_per_second": result.summary["tokens_seen"] / (time.perf_counter() - started),
        "memory_per_rank": result.summary.get("memory_per_rank"),
        "final_dir": str(result.final_dir) if result.final_dir else None,
        "losses": losses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CPU is fine)")
    parser.add_argument("--out", default=str(HERE / "results" / "gpu_smoke.json"))
    args = parser.parse_args()
    args.steps, args.batch, args.seq, args.words = (
        (3, 2, 256, 40) if args.smoke else (12, 8, 2048, 400)
    )

    import torch

    from synth_lab.train.inference import generate, load_trained

    device = "cuda" if torch.cuda.is_available() else "cpu"
    report: dict[str, Any] = {"smoke": args.smoke, "environment": environment()}
    report["varlen_vs_loop"] = varlen_vs_loop(device)
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp:
        folder = Path(tmp) / "model"
        # The real Qwen vocabulary: its output layer is what large-vocabulary paths are about.
        shape = {**(TINY if args.smoke else SMALL), "vocab_size": 151936}
        report["params"] = build(folder, shape, "Qwen2Config")
        cases: dict[str, Any] = {}
        kinds = ["fft", "fft+ac", "lora"]
        if report["environment"]["bitsandbytes"]:
            kinds.append("qlora")
        for kind in kinds:
            cases[kind] = train_case(folder, Path(tmp) / kind, kind, args)
        report["training"] = cases

        # Resume: half the steps, then the rest from the checkpoint, against the straight run.
        half = Path(tmp) / "resume"
        every = max(1, args.steps // 2)
        first = train_case(folder, half, "fft", args, save_steps=every, keep_checkpoints=0)
        ckpt = half / f"step-{every:06d}"
        again = train_case(folder, Path(tmp) / "resumed", "fft", args, resume=str(ckpt))
        report["resume"] = {
            "straight_last_loss": first["last_loss"],
            "resumed_last_loss": again["last_loss"],
            "equal": abs(first["last_loss"] - again["last_loss"]) <= 1e-6 * abs(first["last_loss"]),
        }

        model, tokenizer = load_trained(cases["lora"]["final_dir"], device=device)
        reply = generate(model, tokenizer, "Say something short.", max_new_tokens=8)
        report["generate"] = {"ok": isinstance(reply, str), "reply": reply}
        del model

    bench = [sys.executable, str(HERE / "gpu_train.py"), *(["--smoke"] if args.smoke else [])]
    done = subprocess.run(bench, capture_output=True, text=True, timeout=600)
    report["gpu_train"] = (
        json.loads(done.stdout[done.stdout.index("{") :])
        if done.returncode == 0
        else {"failed": done.stderr[-2000:]}
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
