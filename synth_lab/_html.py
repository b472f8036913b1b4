"""HTML escaping for display objects and widgets: one rule, dollar signs included.

JupyterLab typesets ``$...$`` in HTML output as LaTeX, which turned "$0.00 at $3" into math and
would do the same to a user's text (a record mentioning prices, a shell snippet). So every user
string goes through :func:`escape`, and markup a library escaped by its own rule (a pandas
table) through :func:`escape_rendered`.
"""

from __future__ import annotations

import html
import re
from typing import Any

_TEXT = re.compile(r">([^<]+)<")  # the text between two tags
_MORE = str.maketrans({"$": "&#36;", '"': "&quot;", "'": "&#x27;"})


def escape(text: Any) -> str:
    """``text`` (made a string) HTML-escaped, quotes and dollar signs too, so it is safe in
    element content and quoted attribute values alike, and never typeset as LaTeX."""
    return html.escape(str(text), quote=True).replace("$", "&#36;")


def escape_rendered(markup: str) -> str:
    """Markup already escaped for ``<``, ``>`` and ``&`` (a DataFrame's
    ``to_html(escape=True)``) brought to :func:`escape`'s rule: the quotes and dollar signs of
    its text written as entities too. Tags and their attributes are left as they are."""
    return _TEXT.sub(lambda m: f">{m.group(1).translate(_MORE)}<", markup)
