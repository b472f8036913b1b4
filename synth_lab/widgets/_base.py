"""What every synth-lab widget shares: a root ``widget`` and notebook display through it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as w

from synth_lab._html import escape


class WidgetView:
    """Base of the synth-lab widgets: a plain object holding its root ipywidget.

    The logic lives in Python and is testable without a browser; a notebook displays the object
    through :attr:`widget`.

    Attributes:
        widget: The root ipywidget (a ``VBox``).
    """

    widget: w.Widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Display the root widget (the widget view bundle, with a text fallback)."""
        return self.widget._repr_mimebundle_(**kwargs)


def problems_html(rows: Iterable[tuple[str, str, str]], *, title: str = "Problems") -> str:
    """An escaped HTML table of ``(where, message, hint)`` rows; empty text when there are none.

    Args:
        rows: The problems, located.
        title: The caption.

    Returns:
        The HTML fragment.
    """
    body = "".join(
        f"<tr><td><code>{escape(where)}</code></td><td>{escape(message)}</td>"
        f"<td>{escape(hint)}</td></tr>"
        for where, message, hint in rows
    )
    if not body:
        return ""
    return (
        f'<div style="color:#a00"><b>{escape(title)}</b>'
        f"<table><tr><th>where</th><th>problem</th><th>what to do</th></tr>{body}</table></div>"
    )
