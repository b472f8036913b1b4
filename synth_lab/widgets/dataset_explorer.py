"""``DatasetExplorer``: page through a chat dataset, its problems and one record at a time."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from synth_lab._html import escape, escape_rendered
from synth_lab.errors import SynthLabError
from synth_lab.widgets._base import WidgetView

if TYPE_CHECKING:
    from synth_lab.data.dataset import Dataset

SEVERITIES = ("all", "error", "warning")
PROBLEM_ROWS = 50


def raw_record_html(record: Any) -> str:
    """A record as escaped HTML: one block per message, or its JSON when it is not a chat.

    Args:
        record: One parsed JSONL record (possibly invalid).

    Returns:
        The HTML fragment.
    """
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list):
        text = json.dumps(record, ensure_ascii=False, indent=2, default=str)
        return f'<pre style="white-space:pre-wrap">{escape(text)}</pre>'
    blocks = []
    for message in messages:
        if isinstance(message, dict):
            role = str(message.get("role", "?"))
            content = message.get("content")
            if not isinstance(content, str):
                content = json.dumps(content, ensure_ascii=False, indent=2, default=str)
        else:
            role, content = "?", json.dumps(message, ensure_ascii=False, default=str)
        blocks.append(
            f"<div><b>{escape(role)}</b>"
            f'<pre style="white-space:pre-wrap;margin:0 0 6px 0">{escape(content)}</pre></div>'
        )
    return "".join(blocks)


class DatasetExplorer(WidgetView):
    """A dataset's summary, a paged table of its records, its problems and a record preview.

    The preview renders the record through the chat template with the trained tokens
    highlighted when a tokenizer is known (``tokenizer`` or the dataset's own), else it shows
    the raw messages.

    Args:
        dataset: The dataset.
        tokenizer: A tokenizer or a tokenizer name for the preview (optional).
        page_size: Table rows per page.

    Attributes:
        page: The page of the table (an ``IntSlider``).
        record: The index of the previewed record (a ``BoundedIntText``); moving it moves the
            page too.
        severity: The problems filter (``Dropdown``: all, error, warning).
        summary, table, problems_view, preview: The ``HTML`` outputs.
        widget: The root widget.
    """

    def __init__(self, dataset: Dataset, tokenizer: Any = None, *, page_size: int = 10) -> None:
        if tokenizer is not None:
            from synth_lab.data.chat import resolve_tokenizer

            tokenizer = resolve_tokenizer(tokenizer)  # once, not per previewed record
        self.dataset = dataset
        self.tokenizer = tokenizer
        self.page_size = max(1, page_size)
        self._df = dataset.df
        self._problems = dataset.problems
        n = len(dataset)
        last_page = max(0, (n - 1) // self.page_size)
        self.summary = w.HTML(self._summary_html())
        self.page = w.IntSlider(
            value=0, min=0, max=last_page, description="page", disabled=last_page == 0
        )
        self.record = w.BoundedIntText(
            value=0, min=0, max=max(0, n - 1), description="record", disabled=n == 0
        )
        self.severity = w.Dropdown(options=SEVERITIES, value="all", description="severity")
        self.table = w.HTML()
        self.problems_view = w.HTML()
        self.preview = w.HTML()
        self._syncing = False
        self.page.observe(self._on_page, names="value")
        self.record.observe(self._on_record, names="value")
        self.severity.observe(lambda _: self._draw_problems(), names="value")
        self._draw_table()
        self._draw_problems()
        self._draw_preview()
        tabs = w.Tab(
            children=[
                w.VBox([self.page, self.table]),
                w.VBox([self.severity, self.problems_view]),
                w.VBox([self.record, self.preview]),
            ],
            titles=("Records", f"Problems ({len(self._problems):,})", "Preview"),
        )
        self.widget = w.VBox([self.summary, tabs])

    def _summary_html(self) -> str:
        severities = list(self._problems["severity"])
        errors = severities.count("error")
        text = (
            f"{len(self.dataset):,} records, {errors:,} errors, "
            f"{len(severities) - errors:,} warnings"
        )
        if self.dataset.path:
            text += f" from {self.dataset.path}"
        return f"<b>Dataset</b>: {escape(text)}"

    # -- events -------------------------------------------------------------------------------

    def _on_page(self, change: dict[str, Any]) -> None:
        self._draw_table()
        if not self._syncing and self.record.value // self.page_size != change["new"]:
            self._syncing = True
            try:
                self.record.value = min(change["new"] * self.page_size, self.record.max)
            finally:
                self._syncing = False

    def _on_record(self, change: dict[str, Any]) -> None:
        self._draw_preview()
        page = change["new"] // self.page_size
        if not self._syncing and self.page.value != page:
            self._syncing = True
            try:
                self.page.value = page
            finally:
                self._syncing = False
        self._draw_table()

    # -- drawing ------------------------------------------------------------------------------

    def _draw_table(self) -> None:
        start = self.page.value * self.page_size
        rows = self._df.iloc[start : start + self.page_size]
        shown = f"records {start}–{start + len(rows) - 1} of {len(self._df):,}" if len(rows) else ""
        table = escape_rendered(rows.to_html(escape=True, border=0))
        marker = f"<tr>\n      <th>{self.record.value}</th>"
        selected = f'<tr style="background:#fff3c4">\n      <th>{self.record.value}</th>'
        self.table.value = f"<p>{escape(shown)}</p>{table.replace(marker, selected, 1)}"

    def visible_problems(self) -> Any:
        """The problems table under the current severity filter (a ``DataFrame``)."""
        if self.severity.value == "all":
            return self._problems
        return self._problems[self._problems["severity"] == self.severity.value]

    def _draw_problems(self) -> None:
        problems = self.visible_problems()
        if problems.empty:
            self.problems_view.value = "<p>No problems.</p>"
            return
        more = len(problems) - PROBLEM_ROWS
        tail = f"<p>… {more:,} more</p>" if more > 0 else ""
        table = escape_rendered(
            problems.head(PROBLEM_ROWS).to_html(escape=True, border=0, index=False)
        )
        self.problems_view.value = table + tail

    def _draw_preview(self) -> None:
        if len(self.dataset) == 0:
            self.preview.value = "<p>The dataset is empty.</p>"
            return
        index = self.record.value
        line = self._df["line"].iloc[index]
        head = f"<p>record {index} (line {line})</p>"
        if self.tokenizer is not None or self.dataset.tokenizer is not None:
            try:
                rendered = self.dataset.preview(index, self.tokenizer)._repr_html_()
            except SynthLabError as exc:
                note = escape(f"cannot render it with the chat template: {exc.message}")
                rendered = f'<p style="color:#a00">{note}</p>'
                rendered += raw_record_html(self.dataset[index])
        else:
            rendered = raw_record_html(self.dataset[index])
        self.preview.value = head + rendered
