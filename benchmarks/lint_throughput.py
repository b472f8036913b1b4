"""Throughput and peak memory of the streaming dataset linter.

Generates a seeded chat JSONL file of typical SFT records (about 500 bytes, 2-6 messages; a
few with a system prompt, tool calls or image parts), lints it in a fresh subprocess and
prints a markdown table: wall time, records per second, MB per second and the child's peak
RSS. Run from the repository root::

    python benchmarks/lint_throughput.py --sizes 250 1000

The files go to a temporary directory (or ``--dir``) and are deleted afterwards unless
``--keep`` is given. The first lint after generation reads from a warm page cache.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

_VOCABULARY = (
    "the a model data train loss token answer question step value because result which "
    "function return list python number first second check error file line record chat "
    "system user assistant explain example simple result output input prompt reply short "
    "long fast slow memory batch epoch learning rate gradient weight layer attention head"
)
_WORDS = tuple(_VOCABULARY.split())

_CHILD = """
import json, resource, sys, time
from synth_lab.data.validate import lint_file
start = time.perf_counter()
report = lint_file(sys.argv[1])
seconds = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "records": report.records, "peak_kib": peak_kib,
                  "errors": report.error_count, "problems": len(report.problems)}))
"""


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(_WORDS, k=words)).capitalize() + "."


def _record(rng: random.Random, index: int) -> dict[str, object]:
    messages: list[dict[str, object]] = []
    if rng.random() < 0.3:
        messages.append({"role": "system", "content": _sentence(rng, rng.randint(5, 12))})
    turns = rng.randint(1, 2 if messages else 3)
    for turn in range(turns):
        question = f"[{index}.{turn}] " + _sentence(rng, rng.randint(5, 14))
        roll = rng.random()
        if roll < 0.03:
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": question},
                        {"type": "image_url", "image_url": {"url": f"https://img.test/{index}"}},
                    ],
                }
            )
        else:
            messages.append({"role": "user", "content": question})
        if roll > 0.95:
            call = {"id": f"c{index}", "type": "function"}
            call["function"] = {"name": "lookup", "arguments": json.dumps({"q": index})}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            messages.append({"role": "tool", "tool_call_id": f"c{index}", "content": "42"})
        messages.append({"role": "assistant", "content": _sentence(rng, rng.randint(8, 30))})
    return {"messages": messages}


def generate(path: Path, megabytes: float, seed: int) -> int:
    """Writes about ``megabytes`` MB of records to ``path``; returns the record count."""
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    written = count = 0
    with path.open("wb", buffering=8 << 20) as out:
        while written < target:
            line = orjson.dumps(_record(rng, count)) + b"\n"
            out.write(line)
            written += len(line)
            count += 1
    return count


def measure(path: Path) -> dict[str, float]:
    """Lints ``path`` in a fresh interpreter; returns its timings and peak RSS."""
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout)


def _machine() -> str:
    model = "unknown CPU"
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                model = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        ram = f", {kib / 1024**2:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} CPUs ({model}){ram}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> None:
    """Generates each size, lints it, prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[250, 1000], help="MB")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the files")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"chat-{size:g}MB.jsonl"
            started = time.perf_counter()
            records = generate(path, size, args.seed)
            made = time.perf_counter() - started
            print(f"generated {path.stat().st_size / 1e6:.0f} MB, {records:,} records "
                  f"in {made:.0f} s", file=sys.stderr)  # fmt: skip
            result = measure(path)
            rows.append((path.stat().st_size, result))
            if args.keep:
                kept = (args.dir or Path.cwd()) / path.name
                path.replace(kept)
            else:
                path.unlink()

    print(f"Machine: {_machine()}. Date: {dt.date.today().isoformat()}.\n")
    print("| file | records | wall (s) | records/s | MB/s | peak RSS (MB) | problems |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size, r in rows:
        print(
            f"| {size / 1e6:.0f} MB | {r['records']:,} | {r['seconds']:.2f} "
            f"| {r['records'] / r['seconds']:,.0f} | {size / 1e6 / r['seconds']:.0f} "
            f"| {r['peak_kib'] / 1024:.0f} | {r['problems']} |"
        )


if __name__ == "__main__":
    main()
