"""One local sweep point in its own process: ``python -m synth_lab.sweep.worker RUN_FOLDER``.

Reads ``RUN_FOLDER/worker.json`` (written by the sweep), trains with
:func:`synth_lab.train.run` (metrics go to ``RUN_FOLDER/metrics.jsonl`` as it trains; SIGINT
stops it with a checkpoint), then writes the result summary to ``result.json``, or the error
to ``error.json`` and exits with 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from synth_lab._files import atomic_write_text


def main(argv: list[str] | None = None) -> int:
    folder = Path((argv if argv is not None else sys.argv[1:])[0])
    spec = json.loads((folder / "worker.json").read_text())
    try:
        from synth_lab.config import SFTConfig
        from synth_lab.train import run

        result = run(
            SFTConfig.from_toml(spec["config_toml"]),
            spec["dataset"],
            output_dir=spec["output_dir"],
            max_steps=spec["max_steps"],
            resume=spec["resume"],
            live=False,
            validation_dataset=spec["validation_dataset"],
            seed=spec["seed"],
            evaluation=spec.get("evaluation"),
        )
    except Exception as exc:  # reported to the sweep, which records the run as failed
        message = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
        atomic_write_text(folder / "error.json", json.dumps({"error": message}))
        print(message, file=sys.stderr)
        return 1
    atomic_write_text(folder / "result.json", json.dumps(result.summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
