"""Training throughput on this CPU: synth-lab's trainer against TRL's SFTTrainer, side by side.

Every trainer gets the same model (a Qwen3 of a few million parameters, built from a config
with a fixed seed and saved once), the same chat data (conversation lengths drawn from a
lognormal, like real chats), the same global batch of conversations and the same number of
optimizer steps. Each runs in its own subprocess, so peak RSS is its own. Throughput counts
real tokens only (padding excluded), from the end of the warm-up steps to the last step.

The FLOP-bound rate is what the hardware could do if training were nothing but matmuls:
the measured fp32 matmul rate divided by ``6 × parameters`` FLOPs per token.

    python benchmarks/train_cpu.py                 # the table
    python benchmarks/train_cpu.py --write         # ... also into benchmarks/results/train.md
    python benchmarks/train_cpu.py --smoke         # a few steps each, to check it runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "train.md"
_START, _END = "<!-- measured: start -->", "<!-- measured: end -->"
_VOCABULARY = (
    "the a model data train loss token answer question step value because result which "
    "function return list python number first second check error file line record chat "
    "explain example simple output input prompt reply short long fast slow memory batch "
    "epoch learning rate gradient weight layer attention head water cat dog sun moon"
)
_WORDS = tuple(_VOCABULARY.split(" "))
MODEL = {  # about 4M parameters: the scale a CPU finetune of a toy model has
    "hidden_size": 256,
    "intermediate_size": 1024,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
}
VARIANTS = (
    "synth-lab",
    "synth-lab-bf16",
    "trl-defaults",
    "trl-cpu-padding-free",
    "trl-cpu-packing",
)


# --------------------------------------------------------------------------- shared inputs


def chat_records(n: int, seed: int) -> list[dict[str, Any]]:
    """Chats whose turn lengths are lognormal (median ~25 and ~60 words, long tail)."""
    rng = random.Random(seed)

    def text(median: float) -> str:
        words = min(700, max(2, int(rng.lognormvariate(math.log(median), 0.9))))
        return " ".join(rng.choices(_WORDS, k=words))

    out = []
    for _ in range(n):
        messages = [{"role": "system", "content": text(10)}] if rng.random() < 0.3 else []
        for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 3)):
            messages.append({"role": "user", "content": text(25)})
            messages.append({"role": "assistant", "content": text(60)})
        out.append({"messages": messages})
    return out


def build_model(folder: Path, hidden: int = MODEL["hidden_size"]) -> int:
    """Save the seeded benchmark model with the tiny-chat tokenizer; return its parameters."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    from synth_lab.models import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{**MODEL, "hidden_size": hidden, "intermediate_size": 4 * hidden},
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def matmul_gflops(threads: int, dtype: str = "fp32", seconds: float = 2.0) -> float:
    """Sustained GEMM rate at training-like shapes (tokens × hidden × 4·hidden)."""
    import torch

    torch.set_num_threads(threads)
    kind = torch.float32 if dtype == "fp32" else torch.bfloat16
    a, b = torch.randn(2048, 256, dtype=kind), torch.randn(256, 1024, dtype=kind)
    c = torch.randn(2048, 1024, dtype=kind)
    for _ in range(5):
        a @ b
        c @ b.T
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b  # forward
        c @ b.T  # backward, input gradient
        a.T @ c  # backward, weight gradient
        n += 3
    return n * 2 * 2048 * 256 * 1024 / (time.perf_counter() - start) / 1e9


# --------------------------------------------------------------------------- children


def child_synth_lab(work: Path, args: argparse.Namespace, bf16: bool) -> dict[str, Any]:
    from synth_lab.train import run

    records = [json.loads(line) for line in (work / "train.jsonl").read_text().splitlines()]
    config = (
        f'[job]\nmodel = "{work / "model"}"\n[hyperparameters]\nglobal_batch = {args.batch}\n'
        f"per_device_batch = {args.batch}\nsequence_length = {args.seq}\nlearning_rate = 1e-4\n"
        f"[hyperparameters.parallelism]\nbf16 = {str(bf16).lower()}\n"
    )
    marks: list[tuple[float, float]] = []

    def mark(point: Any) -> None:
        if point.name == "train.tokens":
            marks.append((time.perf_counter(), point.value))

    run(config, records, output_dir=work / "out-synth", max_steps=args.steps, logger=mark,
        live=False, save_steps=10**9)  # fmt: skip
    (t0, n0), (t1, n1) = marks[args.warmup - 1], marks[-1]
    return {"tokens_per_second": (n1 - n0) / (t1 - t0), "steps": len(marks)}


def child_trl(work: Path, args: argparse.Namespace, variant: str) -> dict[str, Any]:
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(0)
    records = [json.loads(line) for line in (work / "train.jsonl").read_text().splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(work / "model")
    if variant == "trl-cpu-padding-free":
        # TRL's padding-free collator does not truncate: hand it chats already cut to length.
        ids = [
            tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)[
                "input_ids"
            ][: args.seq]
            for r in records
        ]
        data = datasets.Dataset.from_dict({"input_ids": ids})
    else:
        data = datasets.Dataset.from_list(records)
    model = AutoModelForCausalLM.from_pretrained(work / "model")
    options: dict[str, Any] = {}
    batch = args.batch
    if variant != "trl-defaults":  # what one would tune for a CPU
        options.update(bf16=False, gradient_checkpointing=False)
        if variant == "trl-cpu-padding-free":
            options.update(padding_free=True)  # the data is truncated already (see above)
        else:  # pack conversations into rows of max_length: rows carry ~the same tokens
            options.update(packing=True)
            batch = max(1, round(args.batch * args.mean_tokens / args.seq))
    config = SFTConfig(
        output_dir=str(work / f"out-{variant}"),
        use_cpu=True,  # required on a machine without GPU, whatever else is chosen
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=1,
        # Padding-free without packing refuses a max_length it would not enforce.
        max_length=None if variant == "trl-cpu-padding-free" else args.seq,
        max_steps=args.steps,
        learning_rate=1e-4,
        save_strategy="no",
        report_to=[],
        logging_steps=10**6,
        disable_tqdm=True,
        **options,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
    return timed_trl_train(trainer, args.warmup)


def timed_trl_train(trainer: Any, warmup: int) -> dict[str, Any]:
    """Train ``trainer`` (a TRL ``SFTTrainer``), counting the real (unpadded) tokens of every
    batch and the time of every step; tokens/s from the end of the warm-up steps to the last."""
    from transformers import TrainerCallback

    tokens: list[int] = []
    collate = trainer.data_collator

    def counting(features: Any) -> Any:
        out = collate(features)
        mask = out.get("attention_mask")
        tokens.append(int(mask.sum()) if mask is not None else int(out["input_ids"].numel()))
        return out

    trainer.data_collator = counting
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            times.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    return {
        "tokens_per_second": sum(tokens[warmup : len(times)]) / (times[-1] - times[warmup - 1]),
        "steps": len(times),
    }


def child(variant: str, work: Path, args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if variant.startswith("synth-lab"):
        out = child_synth_lab(work, args, bf16=variant.endswith("bf16"))
    else:
        out = child_trl(work, args, variant)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out), flush=True)


# --------------------------------------------------------------------------- driver


def run_child(variant: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", variant, "--work", str(work)]
    argv += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch)]
    argv += ["--seq", str(args.seq), "--threads", str(args.threads)]
    argv += ["--mean-tokens", str(args.mean_tokens)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="conversations per step")
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=MODEL["hidden_size"], help="model width")
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2, help="runs per trainer; best is kept")
    parser.add_argument("--only", nargs="*", choices=VARIANTS)
    parser.add_argument("--write", action="store_true", help=f"write the table to {RESULTS}")
    parser.add_argument("--smoke", action="store_true", help="tiny run: does it work?")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--mean-tokens", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.work), args)
        return
    if args.smoke:
        args.steps, args.warmup, args.records, args.seq, args.repeat = 3, 1, 24, 256, 1
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        records = chat_records(args.records, seed=0)
        (work / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        params = build_model(work / "model", args.hidden)
        args.mean_tokens = mean_tokens(work / "model", records, args.seq)
        # Other work on a shared machine only ever slows a run down: interleave the trainers,
        # repeat, and keep each one's best run (and the best matmul rate seen).
        rows: dict[str, Any] = {}
        gflops = {"fp32": 0.0, "bf16": 0.0}
        for _ in range(args.repeat):
            for dtype in gflops:
                gflops[dtype] = max(gflops[dtype], matmul_gflops(args.threads, dtype))
            for variant in args.only or VARIANTS:
                result = run_child(variant, work, args)
                best = rows.get(variant, {}).get("tokens_per_second", -1.0)
                if variant not in rows or result.get("tokens_per_second", -2.0) > best:
                    rows[variant] = result
    report(rows, params=params, gflops=gflops, args=args)


def mean_tokens(model: Path, records: list[dict[str, Any]], seq: int) -> float:
    from transformers import AutoTokenizer

    from synth_lab.data.chat import token_lengths

    lengths = token_lengths(AutoTokenizer.from_pretrained(model), records)
    return sum(min(n, seq) for n in lengths) / len(lengths)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torch_version() -> str:
    import torch

    return torch.__version__


def report(rows: dict[str, Any], *, params: int, gflops: dict[str, float], args: Any) -> None:
    ok = {k: r for k, r in rows.items() if "error" not in r}
    trl = [r["tokens_per_second"] for k, r in ok.items() if k.startswith("trl")]
    best_trl = max(trl) if trl else float("nan")
    bound = {k: v * 1e9 / (6 * params) for k, v in gflops.items()}
    lines = [
        f"Machine: {cpu_name()}, {os.cpu_count()} cores ({args.threads} threads, shared with "
        f"other work), Python {platform.python_version()}, torch {torch_version()}; "
        f"{dt.date.today().isoformat()}.",
        f"Model: Qwen3 {MODEL['num_hidden_layers']} layers × {args.hidden} "
        f"({params / 1e6:.2f} M parameters, tied embeddings); {args.records} chats, "
        f"{args.mean_tokens:.0f} tokens each on average (lognormal), sequence_length "
        f"{args.seq}; global batch {args.batch} conversations; {args.steps} steps, the first "
        f"{args.warmup} not timed; best of {args.repeat} interleaved runs each.",
        f"Matmul: {gflops['fp32']:.0f} GFLOP/s fp32, {gflops['bf16']:.0f} GFLOP/s bf16 → "
        f"FLOP-bound {bound['fp32']:,.0f} / {bound['bf16']:,.0f} tokens/s "
        "(6 × parameters FLOPs per token, at the precision the trainer computes in).",
        "",
        "| trainer | precision | real tokens/s | × best TRL | % of FLOP-bound | peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        dtype = "bf16" if name.endswith("bf16") or name == "trl-defaults" else "fp32"
        if "error" in r:
            lines.append(f"| {name} | {dtype} | failed: {' '.join(r['error'])} | | | |")
            continue
        tps = r["tokens_per_second"]
        lines.append(
            f"| {name} | {dtype} | {tps:,.0f} | {tps / best_trl:.2f} "
            f"| {100 * tps / bound[dtype]:.0f}% | {r['peak_rss_mb']:,.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.write and not args.smoke:
        # Only the measured block is replaced; the hand-written text around it stays.
        block = f"{_START}\n{table}\n{_END}"
        old = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else ""
        if _START in old and _END in old:
            text = old[: old.index(_START)] + block + old[old.index(_END) + len(_END) :]
        else:
            text = f"# Training throughput on CPU\n\n{block}\n"
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
