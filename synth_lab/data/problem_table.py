"""How dataset problems look in a notebook: whole messages and hints, severity in colour.

:class:`ProblemFrame` is a ``pandas.DataFrame`` (every DataFrame operation works, and returns a
plain DataFrame); only its display differs, since pandas cuts long text at 50 characters and
a cut message hides the hint that says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from synth_lab._html import escape, no_math
from synth_lab.errors import Problem

SEVERITY_COLOURS = {"error": "#b00020", "warning": "#8a6d00"}
_SHOWN = 200


def where(problem: Problem) -> str:
    """``line 12 messages[1].content``, ``line 12``, the path alone, or ``""``."""
    line = "" if problem.line is None else f"line {problem.line}"
    return " ".join(part for part in (line, problem.path) if part)


def format_problem(problem: Problem) -> str:
    """One problem on one line: where, severity, message, hint."""
    place = where(problem)
    text = f"{place + ': ' if place else ''}{problem.severity}: {problem.message}"
    return text + (f" — {problem.hint}" if problem.hint else "")


class ProblemFrame(pd.DataFrame):
    """The problems table (``Dataset.problems``): a DataFrame shown in full, coloured."""

    @property
    def _constructor(self) -> Any:
        return pd.DataFrame  # derived tables (filters, copies) are plain DataFrames

    def __repr__(self) -> str:
        with pd.option_context("display.max_colwidth", None, "display.width", 10_000):
            return pd.DataFrame(self).to_string(index=False) if len(self) else "No problems."

    def _repr_html_(self) -> str:
        if not len(self):
            return "<p>No problems.</p>"
        columns = list(self.columns)
        head = "".join(f"<th style='text-align:left'>{escape(str(c))}</th>" for c in columns)
        rows = []
        for record in self.head(_SHOWN).to_dict("records"):
            colour = SEVERITY_COLOURS.get(str(record.get("severity")), "inherit")
            cells = "".join(
                f"<td style='text-align:left;white-space:pre-wrap'>{escape(_text(v))}</td>"
                for v in record.values()
            )
            rows.append(f"<tr style='color:{colour}'>{cells}</tr>")
        more = len(self) - _SHOWN
        tail = f"<p>… {more:,} more (ds.problems.to_string() lists all)</p>" if more > 0 else ""
        return no_math(f"<table><tr>{head}</tr>{''.join(rows)}</table>{tail}")


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    return str(value)


def first_problems(problems: Sequence[Problem], n: int = 5) -> list[tuple[str, str]]:
    """``(severity, line)`` for the first ``n`` problems, errors first, then how many are
    left (severity ``""``)."""
    ordered = sorted(problems, key=lambda p: p.severity != "error")
    lines = [(p.severity, format_problem(p)) for p in ordered[:n]]
    if len(ordered) > n:
        lines.append(("", f"… and {len(ordered) - n:,} more (ds.problems lists them all)"))
    return lines
