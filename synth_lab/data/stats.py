"""Summaries of a :class:`~synth_lab.data.dataset.Dataset`: counts and length statistics, and
the length histogram with the truncation cut-off."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from synth_lab.data.chat import resolve_tokenizer
from synth_lab.plots import plot_histogram

if TYPE_CHECKING:
    from synth_lab.data.dataset import Dataset


def describe(ds: Dataset) -> pd.DataFrame:
    """Counts, role mix and length percentiles (p50/p90/p99/max) as a one-column table."""
    df = ds.df
    problems = ds.problem_list()
    rows: dict[str, Any] = {
        "records": len(df),
        "errors": sum(p.severity == "error" for p in problems),
        "warnings": sum(p.severity == "warning" for p in problems),
        "with system prompt": int(df["has_system"].sum()),
        "with tools": int(df["has_tools"].sum()),
        "messages per record (mean)": round(float(df["n_messages"].mean()), 2) if len(df) else 0,
    }
    roles = pd.Series([r for text in df["roles"] for r in text.split(",") if r])
    for role, share in roles.value_counts(normalize=True).items():
        rows[f"share of {role} messages"] = round(float(share), 3)
    columns = [
        ("chars", "n_chars"),
        ("tokens", "n_tokens"),
        ("trained tokens", "n_trained_tokens"),
    ]
    for label, column in columns:
        values = df[column].dropna().astype(float) if column in df else None
        if values is None or values.empty:
            continue
        for q in (50, 90, 99):
            rows[f"{label} p{q}"] = float(values.quantile(q / 100))
        rows[f"{label} max"] = int(values.max())
    if "truncated" in df and ds.sequence_length:
        stats = [s for s in ds._token_stats() or () if s is not None]
        rows["truncated records"] = int(df["truncated"].sum())
        trained = sum(s[1] for s in stats)
        rows["supervised tokens lost"] = sum(s[3] for s in stats)
        rows["share of supervised tokens lost"] = round(
            rows["supervised tokens lost"] / trained if trained else 0.0, 4
        )
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)})


def plot_lengths(
    dataset: Dataset,
    ax: Any = None,
    tokenizer: Any = None,
    sequence_length: int | None = None,
    *,
    bins: int = 50,
) -> Any:
    """Histogram of record lengths (tokens with a tokenizer, else characters).

    With a ``sequence_length`` the cut-off is drawn and the title gives the share of
    records, and of supervised tokens, that truncation would lose.

    Returns:
        The matplotlib axes drawn on.
    """
    seq = sequence_length if sequence_length is not None else dataset.sequence_length
    tok = resolve_tokenizer(tokenizer) if tokenizer is not None else dataset.tokenizer
    same = tok is dataset.tokenizer and seq == dataset.sequence_length
    ds = dataset if same or tok is None else dataset.with_tokenizer(tok, seq)
    stats = [s for s in ds._token_stats() or () if s is not None]
    values = [s[0] for s in stats] if ds.tokenizer is not None else ds.df["n_chars"].tolist()
    unit = "tokens" if ds.tokenizer is not None else "characters"
    title = f"{len(values):,} records"
    cutoff = seq if seq and ds.tokenizer is not None else None
    if cutoff:
        over = sum(s[2] for s in stats)
        trained = sum(s[1] for s in stats)
        lost = sum(s[3] for s in stats) / trained if trained else 0.0
        share = over / len(stats) if stats else 0.0
        title += f": {share:.1%} longer than {seq:,}, {lost:.1%} of supervised tokens lost"
    return plot_histogram(
        values,
        ax,
        xlabel=f"{unit} per record",
        bins=bins,
        cutoff=cutoff,
        cutoff_label=f"sequence_length = {seq:,}" if cutoff else "",
        title=title,
    )
