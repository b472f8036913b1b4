"""A stand-in trainer for the server's security tests (a test double: it lives under tests/).

``final_run`` runs :func:`synth_lab.server.testing.fake_run`, then writes a final model folder
(``output/final/config.json``) and the worker's environment (``output/env.json``), so that tests
can use a job's output as a model and see what a worker inherits.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth_lab.server.testing import fake_run


@dataclass
class FinalResult:
    """The fields of the trainer's result the worker reads, with a final folder."""

    status: str
    steps: int
    metrics: dict[str, float]
    final_dir: Path | None


def final_run(config: Any, dataset: Any, *, output_dir: Any, **kwargs: Any) -> FinalResult:
    """:func:`fake_run`, plus ``final/config.json`` and ``env.json`` in ``output_dir``."""
    result = fake_run(config, dataset, output_dir=output_dir, **kwargs)
    out = Path(output_dir)
    (out / "env.json").write_text(json.dumps(dict(os.environ)))
    final = None
    if result.status == "succeeded":
        final = out / "final"
        final.mkdir(exist_ok=True)
        (final / "config.json").write_text(json.dumps({"base": str(config.job.model)}))
    return FinalResult(result.status, result.steps, result.metrics, final)
