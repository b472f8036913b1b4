"""One error hierarchy for everything synth-lab raises on purpose.

Every error carries a short message that says what is wrong, where, and what to do. In a
notebook, :meth:`SynthLabError._render_traceback_` makes IPython print just that message (no
Python traceback); set ``synth_lab.errors.SHOW_TRACEBACKS = True`` (or ``%config
SynthLab.full_tracebacks = True``) to get full tracebacks back.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

SHOW_TRACEBACKS = False
"""When true, notebook errors show the full Python traceback instead of the short message."""

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a config or a request, located as precisely as we can.

    Attributes:
        path: Dotted key path (``hyperparameters.learning_rate``) or ``""`` for the whole file.
        line: 1-based line, or ``None`` when the key has no place in the source (a missing key).
        col: 1-based column, or ``None``.
        message: What is wrong.
        hint: What to do about it (may be empty).
        severity: ``"error"`` or ``"warning"``.
        code: A short machine-readable code (``unknown_key``, ``invalid_toml`` ...).
    """

    path: str
    line: int | None
    col: int | None
    message: str
    hint: str = ""
    severity: Severity = "error"
    code: str = "invalid"

    def location(self) -> str:
        if self.line is None:
            return self.path or "(whole file)"
        where = f"{self.line}:{self.col}" if self.col else f"{self.line}"
        return f"{where} {self.path}".rstrip()

    def format(self) -> str:
        text = f"{self.location()}: {self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Problem:
        """A problem from what a server sent: our own ``to_dict()`` shape, or a validation
        error's (``field``/``loc``, ``msg``, ``type``); a bare string becomes the message.

        Anything malformed degrades to ``None`` or ``""`` instead of raising, so an odd
        server answer still shows what it can.
        """
        if not isinstance(data, Mapping):
            return cls("", None, None, str(data))
        loc = data.get("loc")
        path = data.get("path") or data.get("field")
        if not path and isinstance(loc, (list, tuple)):
            path = ".".join(str(part) for part in loc if part != "body")
        severity = "warning" if data.get("severity") == "warning" else "error"
        return cls(
            path=str(path or ""),
            line=_int_or_none(data.get("line")),
            col=_int_or_none(data.get("col", data.get("column"))),
            message=str(data.get("message") or data.get("msg") or ""),
            hint=str(data.get("hint") or ""),
            severity=severity,
            code=str(data.get("code") or data.get("type") or "invalid"),
        )


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_problems(items: Iterable[Any]) -> list[Problem]:
    """``items`` as :class:`Problem` (dicts and strings converted, problems kept)."""
    return [p if isinstance(p, Problem) else Problem.from_dict(p) for p in items]


def format_problems(
    problems: Sequence[Problem], *, limit: int | None = None, total: int | None = None
) -> str:
    """The problems one per indented line, the way every error shows them.

    Args:
        problems: The problems.
        limit: Show at most this many, then a line counting the rest.
        total: How many there are, when ``problems`` holds only the first of them.
    """
    shown = problems if limit is None else problems[:limit]
    lines = [f"  {p.format()}" for p in shown]
    rest = (len(problems) if total is None else total) - len(shown)
    if rest > 0:
        lines.append(f"  ... and {rest:,} more")
    return "\n".join(lines)


class SynthLabError(Exception):
    """Base class of every error synth-lab raises deliberately."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        if hint:
            self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nHint: {self.hint}"
        return self.message

    def _render_traceback_(self) -> list[str]:
        """Short notebook rendering: IPython calls this instead of printing a traceback."""
        if SHOW_TRACEBACKS:
            return traceback.format_exception(type(self), self, self.__traceback__)
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class ProblemsError(SynthLabError):
    """An error made of several located problems, all found before raising once.

    When ``source`` (the text the line numbers refer to) is given, each problem is shown with
    its line and a caret under the column.
    """

    def __init__(
        self, title: str, problems: Sequence[Problem], *, hint: str = "", source: str | None = None
    ) -> None:
        self.title = title
        self.problems: list[Problem] = list(problems)
        self.source = source
        errors = [p for p in self.problems if p.severity == "error"]
        lines = [title]
        source_lines = source.splitlines() if source is not None else []
        for p in errors:
            lines.append(f"  {p.format()}")
            if p.line is not None and 0 < p.line <= len(source_lines):
                lines.append(f"    | {source_lines[p.line - 1]}")
                if p.col:
                    lines.append(f"    | {' ' * (p.col - 1)}^")
        super().__init__("\n".join(lines), hint=hint)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


class ConfigError(ProblemsError):
    """The SFT config (TOML) is invalid: bad TOML, unknown keys, bad values, inconsistencies."""


class DatasetError(SynthLabError):
    """A dataset cannot be used: missing, unreadable, empty, or with invalid records."""

    def __init__(self, message: str, *, hint: str = "", problems: Iterable[Any] = ()) -> None:
        super().__init__(message, hint=hint)
        self.problems: list[Problem] = as_problems(problems)


class APIError(SynthLabError):
    """The learning API answered with an error, or could not be reached."""


class TrainingError(SynthLabError):
    """Training could not start or failed while running."""


class MissingDependencyError(SynthLabError, ImportError):
    """An optional dependency is needed for this feature and is not installed."""

    def __init__(self, package: str, feature: str, *, extra: str | None = None) -> None:
        install = f"pip install 'synth-lab[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the '{package}' package.", hint=f"run: {install}")
        self.package = package
