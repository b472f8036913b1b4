"""Key paths in config problems: where they are in the TOML, how to name their table, and a
did-you-mean for a mistyped word."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

from synth_lab.config.source import KeyPath, Position
from synth_lab.errors import Problem

Place = Callable[[KeyPath], "Position | tuple[None, None]"]
"""The ``(line, col)`` of a key path in the TOML (``(None, None)`` where it is not written)."""


def problem_at(
    place: Place,
    path: KeyPath,
    message: str,
    hint: str,
    severity: str = "error",
    code: str = "invalid",
) -> Problem:
    """A :class:`~synth_lab.errors.Problem` about the key at ``path``, with its position."""
    line, col = place(path)
    return Problem(".".join(path), line, col, message, hint, severity, code)  # type: ignore[arg-type]


def suggest(word: str, options: Iterable[str]) -> str | None:
    """The closest option to ``word`` (a typo fix), or ``None``."""
    matches = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return matches[0] if matches else None


def table_name(path: KeyPath) -> str:
    """``[a.b]``, or ``the top level`` for the document itself."""
    return f"[{'.'.join(path)}]" if path else "the top level"
