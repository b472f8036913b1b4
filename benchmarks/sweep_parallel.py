"""A remote sweep of 8 points, all in flight vs one at a time, and the live view's cost.

Starts ``synth-lab serve`` with the stand-in trainer and 2 worker slots (8 GPUs, 4 a job),
then runs the same 8-point sweep: ``max_parallel=1`` (sequential), ``max_parallel=8`` (the
server runs 2 at a time, the other jobs wait in its queue), and ``max_parallel=8`` with the
live view drawn (its output discarded). With 2 slots
the parallel sweep should take about the time of 4 sequential points, i.e. half the sequential
sweep. Then it times one live-view redraw (table + PNG of every curve, as the sweep does at each
poll when shown in a notebook) of the finished sweep's 8 runs, and one poll round (a refresh of
2 running jobs). Run from the repository root::

    python benchmarks/sweep_parallel.py --records 40 --step-seconds 0.05
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

# The stand-in trainer is a test double: it lives under tests/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server_doubles import FAKE, FakeServer

from synth_lab.sweep import SweepView, run_sweep

SEED = """
[algorithm]
type = "offline"
method = "sft"
variety = "fft"

[job]
model = "Qwen/Qwen3-4B"

[compute]
gpu_type = "H100"
gpu_count = 4
nodes = 1

[hyperparameters]
n_epochs = 1
learning_rate = 1e-5
"""
LR = "hyperparameters.learning_rate"
POINTS = {LR: [1e-5 * (i + 1) for i in range(8)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=40, help="steps per job (1 per record)")
    parser.add_argument("--step-seconds", type=float, default=0.05)
    parser.add_argument("--poll", type=float, default=0.2, help="sweep poll interval (s)")
    parser.add_argument("--draws", type=int, default=20, help="live-view redraws timed")
    args = parser.parse_args()

    os.environ.setdefault("MPLBACKEND", "Agg")
    root = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    try:
        data = root / "train.jsonl"
        with data.open("wb") as out:
            for i in range(args.records):
                chat = [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]
                out.write(orjson.dumps({"messages": chat}) + b"\n")
        config = root / "seed.toml"
        config.write_text(SEED)
        server_args = ["--runner", FAKE, "--gpus", "8"]
        server_args += ["--model-map", "Qwen/Qwen3-4B=synth-lab/tiny-chat"]
        env = {"SYNTH_LAB_FAKE_STEP_SECONDS": str(args.step_seconds)}
        with FakeServer(root / "srv", extra_args=server_args, env=env) as server:
            os.environ["SYNTH_API_KEY"] = server.api_key
            times = {}
            sweeps = {}
            for parallel in (1, 8):
                began = time.perf_counter()
                sweeps[parallel] = run_sweep(
                    config, POINTS, data, remote=True, backend=server.url, live=False,
                    max_parallel=parallel, output_dir=root / f"p{parallel}",
                    poll_interval=args.poll,
                )  # fmt: skip
                times[parallel] = time.perf_counter() - began
                assert all(r.status == "succeeded" for r in sweeps[parallel].runs)
            poll = poll_cost(sweeps[8])
            began = time.perf_counter()
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                run_sweep(
                    config, POINTS, data, remote=True, backend=server.url, live=True,
                    max_parallel=8, output_dir=root / "live", poll_interval=args.poll,
                )  # fmt: skip
            times["live"] = time.perf_counter() - began
        view = SweepView(sweeps[8], display=lambda *a, **k: None)
        draws = []
        for _ in range(args.draws):
            began = time.perf_counter()
            view.draw(force=True)
            draws.append(time.perf_counter() - began)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    job = args.records * args.step_seconds
    print(f"8 points, {args.records} steps × {args.step_seconds}s = {job:.1f}s of training each")
    print(f"sequential (max_parallel=1): {times[1]:.2f}s")
    print(f"in flight (max_parallel=8, 2 slots): {times[8]:.2f}s")
    print(f"ratio parallel / sequential: {times[8] / times[1]:.3f} (ideal with 2 slots: 0.5)")
    print(f"parallel vs 4 sequential points: {times[8] / (times[1] / 2):.3f} (ideal 1.0)")
    points = sum(len(r.points) for r in sweeps[8].runs)
    print(
        f"live view redraw, 8 runs, {points} points: median "
        f"{1000 * statistics.median(draws):.1f} ms, max {1000 * max(draws):.1f} ms"
    )
    print(f"poll round (refresh of 2 finished jobs, no new points): {1000 * poll:.1f} ms")
    print(f"in flight with the live view drawn (text display): {times['live']:.2f}s")


def poll_cost(sweep, rounds: int = 10) -> float:
    """Median seconds of refreshing two jobs (what one poll of 2 running jobs costs)."""
    jobs = [sweep.runs[0].result, sweep.runs[1].result]
    costs = []
    for _ in range(rounds):
        began = time.perf_counter()
        for job in jobs:
            job.refresh()
        costs.append(time.perf_counter() - began)
    return statistics.median(costs)


if __name__ == "__main__":
    main()
