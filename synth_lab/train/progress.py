"""What a run keeps track of as it goes, besides its step: the best evaluation, the token rate."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Best:
    """The best evaluation so far, by the configured metric."""

    metric: str
    greater_is_better: bool
    value: float | None = None
    step: int | None = None

    def update(self, value: float, step: int) -> bool:
        better = self.value is None or (
            value > self.value if self.greater_is_better else value < self.value
        )
        if better:
            self.value, self.step = value, step
        return better


@dataclass
class Throughput:
    """Real tokens per second since the last report: reported at most every ``every`` seconds
    (a rate over a few short steps is noise) and at the last step."""

    every: float = 0.2
    tokens: int = 0
    since: float = field(default_factory=time.perf_counter)

    def add(self, n_tokens: int, *, last: bool) -> float | None:
        """Count a step's tokens; the rate when one is due, else ``None``."""
        self.tokens += n_tokens
        elapsed = time.perf_counter() - self.since
        if elapsed < self.every and not last:
            return None
        speed = self.tokens / elapsed
        self.tokens, self.since = 0, time.perf_counter()
        return speed
