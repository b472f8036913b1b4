"""How long ``synth_lab.plan.estimate`` takes: in-process (config already loaded) and
``synth-lab plan --json`` as a whole fresh process. No peer computes a plan at the config
stage, so there is nothing to put side by side.

    python benchmarks/plan_speed.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_32B = ROOT / "tests" / "fixtures" / "golden" / "seed_qwen3_32b_fsdp_4xh100.toml"
SMALL = '[job]\nmodel = "Qwen/Qwen3-0.6B"\n[compute]\ngpu_type = "H100"\ngpu_count = 1\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    from synth_lab.config import load_config
    from synth_lab.plan import estimate

    rows = []
    for name, source in (
        ("32 B seed (does not fit: tries suggestions)", SEED_32B),
        ("0.6 B, fits", SMALL),
    ):
        config = load_config(source)
        estimate(config)  # first call: lazy imports
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            estimate(config)
            times.append(time.perf_counter() - t0)
        rows.append((f"`estimate()`, {name}", statistics.median(times)))
    times = []
    for _ in range(max(3, runs // 3)):
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "synth_lab.cli", "plan", str(SEED_32B), "--json"]
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    rows.append(("`synth-lab plan --json`, 32 B seed, whole process", statistics.median(times)))
    print("| what | median |\n|---|---|")
    for what, seconds in rows:
        print(f"| {what} | {seconds * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
