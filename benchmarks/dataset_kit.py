"""Dataset kit speed on 100k chat records: load + per-record table, and token-length stats.

``Dataset.load(path).df`` validates every line and builds the per-record table; the reference
point in the same run is ``pandas.read_json(lines=True)``, which only parses. Token lengths
use batch tokenisation with the fast tokenizer over rendered chat templates.

    python benchmarks/dataset_kit.py [--records 100000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
from pathlib import Path

_TEXT = (
    "the model learns from examples and replies with short clear answers about science history "
    "code travel cooking math music weather sport health money language"
)
WORDS = _TEXT.split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def write_records(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as handle:
        for _ in range(n):
            messages = []
            if rng.random() < 0.4:
                messages.append({"role": "system", "content": _sentence(rng, 8)})
            for _ in range(rng.randint(1, 3)):
                messages.append({"role": "user", "content": _sentence(rng, rng.randint(5, 30))})
                words = int(rng.lognormvariate(3.2, 0.7)) + 1
                messages.append({"role": "assistant", "content": _sentence(rng, words)})
            handle.write(json.dumps({"messages": messages}) + "\n")


def _timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--token-records", type=int, default=20_000)
    args = parser.parse_args()

    import pandas as pd

    from synth_lab.data.chat import token_lengths
    from synth_lab.data.dataset import Dataset
    from synth_lab.models import load_tokenizer

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chat.jsonl"
        write_records(path, args.records)
        n = args.records
        size_mb = path.stat().st_size / 1e6

        _, t_pandas = _timed(lambda: pd.read_json(path, lines=True))
        rows.append(("pandas.read_json(lines=True) (parse only)", n, t_pandas))
        ds, t_load = _timed(lambda: Dataset.load(path))
        _, t_df = _timed(lambda: ds.df)
        rows.append(("Dataset.load(path) (parse + validate)", n, t_load))
        rows.append(("  .df (per-record table)", n, t_df))
        rows.append(("Dataset.load(path).df total", n, t_load + t_df))

        records = ds.records[: args.token_records]
        for name in ("synth-lab/tiny-chat", "qwen"):
            tokenizer = load_tokenizer(name)
            _, t_tok = _timed(lambda tok=tokenizer: token_lengths(tok, records))
            rows.append((f"token_lengths, {name} tokenizer", len(records), t_tok))

    print(f"Machine: {platform.machine()}, Python {platform.python_version()}")
    print(f"File: {args.records} records, {size_mb:.0f} MB\n")
    print("| step | records | seconds | records/s |\n|---|---|---|---|")
    for label, count, seconds in rows:
        print(f"| {label} | {count} | {seconds:.2f} | {count / seconds:,.0f} |")


if __name__ == "__main__":
    main()
