"""Start-up costs users feel: importing, ``%load_ext``, and ``--dry-run`` on a seed config.

Each figure is the median of several fresh processes (cold interpreter, warm disk cache).

    python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "fixtures" / "golden" / "seed_minimal_fft_qwen3_4b.toml"

_TIMED = """
import sys, time
t0 = time.perf_counter()
{body}
print(time.perf_counter() - t0)
"""

_LOAD_EXT = """
import time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
t0 = time.perf_counter()
ip.run_line_magic("load_ext", "synth_lab")
print(time.perf_counter() - t0)
"""

_MAGIC_DRY_RUN = """
import time
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "synth_lab")
t0 = time.perf_counter()
with capture_output():
    r = ip.run_cell("%sft_train --dry-run --config {config} --dataset {data}")
assert r.success, r.error_in_exec
print(time.perf_counter() - t0)
"""


def _seconds(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def _wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    return time.perf_counter() - t0


def _median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.jsonl"
        with data.open("w") as handle:
            for i in range(args.records):
                messages = [
                    {"role": "user", "content": f"Question {i}: what is {i} + {i}?"},
                    {"role": "assistant", "content": f"{i} + {i} = {2 * i}."},
                ]
                handle.write(json.dumps({"messages": messages}) + "\n")

        rows: list[tuple[str, str]] = []
        for label, body in (
            ("import synth_lab", "import synth_lab"),
            ("import synth_lab.config", "import synth_lab.config"),
        ):
            code = _TIMED.format(body=body)
            rows.append((label, _median_ms([_seconds(code) for _ in range(args.runs)])))
        rows.append(
            ("%load_ext synth_lab", _median_ms([_seconds(_LOAD_EXT) for _ in range(args.runs)]))
        )
        magic = _MAGIC_DRY_RUN.format(config=SEED, data=data)
        rows.append(
            (
                f"%sft_train --dry-run (seed config, {args.records} records)",
                _median_ms([_seconds(magic) for _ in range(args.runs)]),
            )
        )
        cli = [
            sys.executable,
            "-m",
            "synth_lab.cli",
            "train",
            "--config",
            str(SEED),
            "--dataset",
            str(data),
            "--dry-run",
            "--json",
        ]
        rows.append(
            (
                f"synth-lab train --dry-run, whole process ({args.records} records)",
                _median_ms([_wall(cli) for _ in range(args.runs)]),
            )
        )

    print(
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(f"Median of {args.runs} fresh processes\n")
    print("| what | median |\n|---|---|")
    for label, value in rows:
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
