"""Many clients polling one running job: requests per second and latency percentiles.

Starts ``synth-lab serve`` with the stand-in trainer (20 steps/s: three metric points and one
progress event per step, so the job writes while it is read), starts a long job, then runs
``--clients`` concurrent pollers (asyncio, one keep-alive connection each, opened before
the clock starts; with think time, each starts at a random offset). Each poller reads
``events?since_seq=N&limit=200`` then ``metrics?after_step=M&limit=200`` with its own cursors,
waits ``--think`` seconds, and repeats, for ``--seconds``. Latency is measured per request on
the client side. Run from the repository root::

    python benchmarks/remote_poll.py --clients 50 --think 0 1
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

# The stand-in trainer is a test double: it lives under tests/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server_doubles import FAKE, FakeServer

from synth_lab.client import SynthClient

CONFIG = """
[job]
model = "synth-lab/tiny-chat"
[compute]
gpu_type = "H100"
gpu_count = 1
"""


async def poller(
    base: str, key: str, job_id: str, think: float, start: asyncio.Event, run: Run
) -> int:
    """One client's poll loop; returns the number of failed requests."""
    errors, since, after = 0, 0, -1
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30.0) as client:
        # Connect first (not measured): pollers hold keep-alive connections in steady state.
        await client.get(f"/learning/jobs/{job_id}/events", params={"limit": 1})
        run.ready += 1
        await start.wait()
        if think:  # clients do not poll in lockstep
            await asyncio.sleep(random.uniform(0, think))
        latencies = run.latencies
        while time.monotonic() < run.until:
            for path, params in (
                ("events", {"since_seq": since, "limit": 200}),
                ("metrics", {"after_step": after, "limit": 200}),
            ):
                began = time.perf_counter()
                response = await client.get(f"/learning/jobs/{job_id}/{path}", params=params)
                latencies.append(time.perf_counter() - began)
                if response.status_code != 200:
                    errors += 1
                    continue
                body = orjson.loads(response.content)
                if path == "events" and body["events"]:
                    since = body["events"][-1]["seq"]
                if path == "metrics" and body["points"]:
                    after = body["points"][-1]["step"] - 1
            if think:
                await asyncio.sleep(think)
    return errors


@dataclass
class Run:
    """Shared state of one measurement."""

    until: float = 0.0
    ready: int = 0
    latencies: list[float] = field(default_factory=list)


async def load(
    base: str, key: str, job_id: str, clients: int, think: float, seconds: float
) -> tuple[list[float], int, float]:
    run, start = Run(), asyncio.Event()
    tasks = [
        asyncio.create_task(poller(base, key, job_id, think, start, run)) for _ in range(clients)
    ]
    while run.ready < clients:
        await asyncio.sleep(0.01)
    began = time.monotonic()
    run.until = began + seconds
    start.set()
    errors = await asyncio.gather(*tasks)
    return run.latencies, sum(errors), time.monotonic() - began


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--think", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--step-seconds", type=float, default=0.05, help="stand-in step time")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="synth-lab-poll-"))
    data = root / "train.jsonl"
    record = b'{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}\n'
    data.write_bytes(record * 100_000)
    env = {"SYNTH_LAB_FAKE_STEP_SECONDS": str(args.step_seconds)}
    extra = ["--runner", FAKE, "--gpus", "1"]
    rows = []
    with FakeServer(root / "server", extra_args=extra, env=env) as server:
        api = SynthClient(api_key=server.api_key, base_url=server.url, dotenv=None)
        from synth_lab.client import submit

        job = submit(CONFIG, data, client=api, wait=False)
        time.sleep(3.0)  # let the job run and write for a while before measuring
        for think in args.think:
            latencies, errors, wall = asyncio.run(
                load(server.url, server.api_key, job.id, args.clients, think, args.seconds)
            )
            rows.append((think, len(latencies), errors, wall, latencies))
        doc = api.jobs.retrieve(job.id)
        points = len(api.jobs.metrics(job.id, limit=5000))
        api.jobs.cancel(job.id)
    shutil.rmtree(root, ignore_errors=True)
    print(f"job status while measured: {doc['status']}; {points}+ points written", file=sys.stderr)
    print(
        "| clients | think (s) | requests | errors | req/s | p50 (ms) | p90 (ms) | p99 (ms) "
        "| max (ms) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for think, count, errors, wall, latencies in rows:
        ms = [1000 * v for v in latencies]
        print(
            f"| {args.clients} | {think:g} | {count:,} | {errors} | {count / wall:,.0f} "
            f"| {percentile(ms, 0.5):.1f} | {percentile(ms, 0.9):.1f} "
            f"| {percentile(ms, 0.99):.1f} | {max(ms):.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
