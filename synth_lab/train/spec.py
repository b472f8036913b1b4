"""What one training run is asked to do, in a form that crosses process boundaries.

:class:`TrainSpec` is plain data (JSON-serialisable), so the launcher can hand the same spec to
every worker process. :class:`StopSignal` turns Ctrl-C (or the notebook's interrupt button)
into a request to stop at the next step boundary, with a checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TrainSpec:
    """Everything the training loop needs besides the process's place in the job.

    Attributes:
        config_toml: The SFT config as TOML text.
        dataset: Training data: a JSONL path or a list of records.
        output_dir: Where checkpoints, metrics and the final model go.
        validation: Validation data (path or records), or ``None``.
        validation_split: Hold out this share of the training data for validation (0: none).
        max_steps: Stop after this many optimizer steps (overrides ``n_epochs``).
        resume: ``True`` continues from the latest checkpoint in ``output_dir``; a path
            continues from that checkpoint.
        seed: Seed for initialisation, shuffling and dropout.
        save_steps: Checkpoint every this many steps (``None``: at evaluations, else ten times
            per run).
        keep_checkpoints: Keep this many recent checkpoints (the best is always kept; 0: all).
    """

    config_toml: str
    dataset: Any
    output_dir: str
    validation: Any = None
    validation_split: float = 0.0
    max_steps: int | None = None
    resume: bool | str = False
    seed: int = 0
    save_steps: int | None = None
    keep_checkpoints: int = 2

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainSpec:
        return cls(**json.loads(text))


class StopSignal:
    """A stop request: set by the first SIGINT, checked by the loop at each step boundary.

    A second SIGINT raises ``KeyboardInterrupt`` at once, for a step that takes too long.
    """

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignal]:
        """Handle SIGINT while training (main thread only; elsewhere signals can't be caught)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
