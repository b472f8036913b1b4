"""The words for a run's life, defined once for local runs, remote jobs, sweeps and views.

:class:`Status` is a ``str`` enum, so it compares equal to its word, serialises as it (JSON,
manifests) and prints as it. The remote API's words and the older local words are mapped to it
at one place, :meth:`Status.parse`: the client calls it on every job document it reads, and
readers of persisted files (sweep manifests, checkpoint meta) call it on what they load.
:func:`render` is how every view (the cell view, the text logger, ``JobMonitor``, the sweep
table) shows a status: the same label and colour wherever the status came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    """A run's state: where it is in its life, or how it ended."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    STOPPED_EARLY = "stopped early"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __repr__(self) -> str:
        # a notebook showing ``result.status`` shows the word, as it did when it was a str
        return repr(self.value)

    @property
    def terminal(self) -> bool:
        """Whether the run is over for good (an interrupted run can still be resumed)."""
        return self in _TERMINAL

    @property
    def finished(self) -> bool:
        """Whether the run has stopped, for good or until resumed."""
        return self in _TERMINAL or self is Status.INTERRUPTED

    @property
    def active(self) -> bool:
        """Whether the run is queued or running (shows progress and an ETA)."""
        return self in (Status.QUEUED, Status.RUNNING)

    @classmethod
    def parse(cls, word: object, default: Status | None = None) -> Status:
        """The status a word names: ours, the remote API's, or an older local one.

        Args:
            word: A :class:`Status`, or a word such as ``succeeded``, ``completed``,
                ``canceled``, ``pending`` or ``error`` (any case).
            default: What an unknown or empty word means (default :attr:`RUNNING`: a job whose
                state is not yet known is treated as still going, never as finished).

        Returns:
            The status.
        """
        if isinstance(word, Status):
            return word
        text = str(word or "").strip().lower().replace("_", " ")
        if text in _BY_WORD:
            return _BY_WORD[text]
        return default if default is not None else cls.RUNNING


_TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.STOPPED_EARLY})

_BY_WORD: dict[str, Status] = {
    **{s.value: s for s in Status},
    # the remote API and other servers of the same contract
    "canceled": Status.CANCELLED,
    "error": Status.FAILED,
    "errored": Status.FAILED,
    "validating": Status.QUEUED,
    "validating files": Status.QUEUED,
    "created": Status.QUEUED,
    "starting": Status.QUEUED,
    "in progress": Status.RUNNING,
    "training": Status.RUNNING,
    # older local words, still found in sweep manifests and checkpoint meta written before
    "completed": Status.SUCCEEDED,
    "complete": Status.SUCCEEDED,
    "pending": Status.QUEUED,
    "stopped early": Status.STOPPED_EARLY,
    "stopped": Status.STOPPED_EARLY,
}

TERMINAL = frozenset(s.value for s in _TERMINAL)
"""The words of the terminal statuses (for code that holds plain strings, such as SQL rows)."""


@dataclass(frozen=True)
class Look:
    """How a status is shown: its label and colour."""

    label: str
    color: str


_LOOKS = {
    Status.QUEUED: Look("queued", "#1565c0"),
    Status.RUNNING: Look("running", "#1565c0"),
    Status.SUCCEEDED: Look("succeeded", "#2e7d32"),
    Status.FAILED: Look("failed", "#c62828"),
    Status.CANCELLED: Look("cancelled", "#757575"),
    Status.INTERRUPTED: Look("interrupted", "#ef6c00"),
    Status.STOPPED_EARLY: Look("stopped early", "#6d4c41"),
}


def render(status: object) -> Look:
    """The label and colour of ``status`` (any word :meth:`Status.parse` reads)."""
    return _LOOKS[Status.parse(status)]
