"""HTML for display objects and widgets: one escape for user text, one guard against LaTeX.

JupyterLab typesets ``$...$`` in HTML output as LaTeX (MathJax), which turned "$0.00 at $3"
into math and would do the same to a user's text (a record mentioning prices, a shell snippet).
MathJax reads the rendered page, where an entity such as ``&#36;`` is a ``$`` again, so what
stops it is the class it skips: every display object wraps its HTML in :func:`no_math`. User
strings go through :func:`escape` (dollar signs as ``&#36;`` too, so the markup itself carries
no delimiters), and markup a library escaped by its own rule (a pandas table) through
:func:`escape_rendered`.
"""

from __future__ import annotations

import html
import re
from typing import Any

_TEXT = re.compile(r">([^<]+)<")  # the text between two tags
_MORE = str.maketrans({"$": "&#36;", '"': "&quot;", "'": "&#x27;"})


def escape(text: Any) -> str:
    """``text`` (made a string) HTML-escaped, quotes and dollar signs too, so it is safe in
    element content and quoted attribute values alike."""
    return html.escape(str(text), quote=True).replace("$", "&#36;")


def escape_rendered(markup: str) -> str:
    """Markup already escaped for ``<``, ``>`` and ``&`` (a DataFrame's
    ``to_html(escape=True)``) brought to :func:`escape`'s rule: the quotes and dollar signs of
    its text written as entities too. Tags and their attributes are left as they are."""
    return _TEXT.sub(lambda m: f">{m.group(1).translate(_MORE)}<", markup)


def no_math(markup: str) -> str:
    """``markup`` in a block that MathJax skips (``mathjax_ignore`` for JupyterLab's MathJax 3,
    ``tex2jax_ignore`` for MathJax 2 in the classic notebook and nbconvert's HTML)."""
    return f'<div class="mathjax_ignore tex2jax_ignore">{markup}</div>'
