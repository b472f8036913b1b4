"""The planner's activation terms against measured peaks of the trainer's forward + backward.

A Qwen3-shaped model (built from a config, fp32 on the CPU as the trainer runs it there) takes
one forward and backward of a packed row, with the trainer's attention implementation and loss
(logits of every supervised position, ``.float()``, summed cross-entropy). Every CPU
allocation and free is recorded by ``torch.profiler`` (``profile_memory=True``); the measured
figure is the peak of the running sum over the step, above what was allocated before it.
Gradients are allocated before the profiled step (a previous step, ``zero_grad(set_to_none=
False)``), so the peak holds activations, the logits/loss buffer and transient work buffers,
which is what the estimate's ``activations`` and ``logits and loss`` terms cover.

    python benchmarks/plan_activations.py            # the table
    python benchmarks/plan_activations.py --smoke    # one small case, to check it runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
from pathlib import Path

SHAPES = {  # a vocabulary-heavy shape (like real chat models) and one the layers dominate
    "vocab 8192": {
        "hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 4,
        "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 64, "vocab_size": 8192,
    },
    "vocab 512": {
        "hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 4,
        "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 64, "vocab_size": 512,
    },
}  # fmt: skip


def measure(shape: dict, seq: int, checkpointing: bool) -> int:
    """Peak bytes allocated above the start during one forward + backward."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModelForCausalLM, Qwen3Config

    from synth_lab.train.model import attention_implementation

    torch.manual_seed(0)
    cfg = Qwen3Config(**shape, tie_word_embeddings=False, max_position_embeddings=4096)
    cfg._attn_implementation = attention_implementation(torch.device("cpu"), cfg)
    model = AutoModelForCausalLM.from_config(cfg)
    if checkpointing:
        kwargs = {"use_reentrant": False}
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.train()
    ids = torch.randint(0, shape["vocab_size"], (1, seq))
    targets = torch.randint(0, shape["vocab_size"], (seq,))
    position_ids = torch.arange(seq).unsqueeze(0)

    def step() -> None:
        out = model(input_ids=ids, position_ids=position_ids, use_cache=False)
        logits = out.logits[0].float()
        torch.nn.functional.cross_entropy(logits, targets, reduction="sum").backward()

    step()  # allocates the gradients; the profiled step reuses them
    model.zero_grad(set_to_none=False)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    running = peak = 0
    for e in events:
        running += e.nbytes()
        peak = max(peak, running)
    return peak


def estimated(shape: dict, seq: int, checkpointing: bool) -> tuple[int, int]:
    """The estimate's ``activations`` and ``logits and loss`` terms."""
    from synth_lab.plan import estimate

    with tempfile.TemporaryDirectory() as tmp:
        config = {"model_type": "qwen3", "tie_word_embeddings": False, **shape}
        (Path(tmp) / "config.json").write_text(json.dumps(config))
        toml = (
            f'[job]\nmodel = "{tmp}"\n[hyperparameters]\nper_device_batch = 1\n'
            f"sequence_length = {seq}\n[hyperparameters.parallelism]\n"
            f"activation_checkpointing = {str(checkpointing).lower()}\n"
        )
        plan = estimate(toml, device="cpu", logits_chunk=None)
    terms = {t.name: t.bytes for t in plan.terms}
    return terms["activations"], terms["logits and loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one small case")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cases = [(256, False)] if args.smoke else [(s, c) for s in (512, 2048) for c in (False, True)]
    now = dt.datetime.now(dt.timezone.utc)
    print(f"Qwen3 shapes {SHAPES}, fp32, CPU ({platform.machine()}), torch {torch.__version__}, "
          f"{now:%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print("| shape | tokens | checkpointing | estimate: layers + logits (MiB) | estimate (MiB) "
          "| measured peak (MiB) | estimate / measured |")  # fmt: skip
    print("|:---|---:|:---|---:|---:|---:|---:|")
    mib = 1 << 20
    for (name, shape), (seq, ckpt) in ((x, c) for x in SHAPES.items() for c in cases):
        (layers, logits), got = estimated(shape, seq, ckpt), measure(shape, seq, ckpt)
        est = layers + logits
        cells = [name, seq, "on" if ckpt else "off", f"{layers / mib:,.1f} + {logits / mib:,.1f}"]
        cells += [f"{est / mib:,.1f}", f"{got / mib:,.1f}", f"{est / got:.2f}"]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
