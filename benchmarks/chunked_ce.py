"""Peak host memory of the plain vs the chunked cross-entropy (forward + backward).

Each variant runs in a fresh process (peak RSS, ``ru_maxrss``) on the same random hidden states
of one row's supervised positions; ``--smoke`` is a small size for the tests.

    python benchmarks/chunked_ce.py [--smoke] [--out results/chunked_ce.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

FULL = {"positions": 4096, "hidden": 896, "vocab": 151_936}  # Qwen2.5-0.5B's head, a 4k row
SMOKE = {"positions": 2048, "hidden": 64, "vocab": 32_768}


def one(variant: str, positions: int, hidden: int, vocab: int) -> dict:
    import torch

    from synth_lab.train.loss import linear_cross_entropy

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(positions, hidden, generator=gen, requires_grad=True)
    w = (torch.randn(vocab, hidden, generator=gen) * 0.02).requires_grad_()
    t = torch.randint(0, vocab, (positions,), generator=gen)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if variant == "plain":
        loss = torch.nn.functional.cross_entropy(h @ w.T, t, reduction="sum")
    else:
        loss = linear_cross_entropy(h, w, t)
    loss.backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"loss": loss.item(), "peak_mb": (peak - base) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a small size (tests)")
    parser.add_argument("--out", default="benchmarks/results/chunked_ce.json")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = SMOKE if args.smoke else FULL
    if args.variant:
        print(json.dumps(one(args.variant, **size)))
        return
    from synth_lab.train.loss import CE_CHUNK_POSITIONS

    flags = ["--smoke"] if args.smoke else []
    runs = {}
    for variant in ("plain", "chunked"):
        done = subprocess.run(
            [sys.executable, __file__, "--variant", variant, *flags],
            check=True,
            capture_output=True,
            text=True,
        )
        runs[variant] = json.loads(done.stdout)
    result = {
        **size,
        "chunk_positions": CE_CHUNK_POSITIONS,
        "logits_mb": size["positions"] * size["vocab"] * 4 / 2**20,
        "loss_rel_diff": abs(runs["plain"]["loss"] - runs["chunked"]["loss"])
        / abs(runs["plain"]["loss"]),
        **runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
