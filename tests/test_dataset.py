"""The notebook Dataset kit: loading, tables, problems, edits, plots and previews."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest
from conftest_data import multi_turn, tiny_tokenizer, tool_chat

from synth_lab.data.chat import token_lengths
from synth_lab.data.dataset import PROBLEM_COLUMNS, ChatPreview, Dataset
from synth_lab.data.validate import lint_file
from synth_lab.errors import DatasetError
from synth_lab.samples import sample_path

matplotlib.use("Agg")


def chat(i: int, reply: str | None = None) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": reply or f"answer {i}"},
        ]
    }


def write(path: Path, lines: list[Any]) -> Path:
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """Line 3 is blank, line 4 broken JSON, line 6 repeats line 1, line 7 has no assistant."""
    return write(
        tmp_path / "messy.jsonl",
        [
            chat(1),
            chat(2),
            "",
            '{"messages": [',
            tool_chat(),
            chat(1),
            {"messages": [{"role": "user", "content": "alone"}]},
        ],
    )


def test_sample_files_are_clean() -> None:
    for name, size in (("chat_sample", 200), ("chat_sample_val", 40)):
        ds = Dataset.load(sample_path(name))
        assert len(ds) == size
        assert ds.problems.empty, ds.problems.to_string()
        df = ds.df
        assert df["has_system"].any() and df["has_tools"].any()
        assert (df["n_messages"] > 3).any()
    with pytest.raises(FileNotFoundError, match="chat_sample"):
        sample_path("nope")


def test_load_keeps_lines_and_matches_the_validator(messy: Path) -> None:
    ds = Dataset.load(messy)
    assert len(ds) == 5
    assert ds.lines == [1, 2, 5, 6, 7]
    df = ds.df
    assert list(df.columns) == [
        "line",
        "n_messages",
        "roles",
        "has_system",
        "has_tools",
        "n_chars",
    ]
    assert df.loc[2, "roles"] == "user,assistant,tool,assistant" and df.loc[2, "has_tools"]
    assert df.loc[0, "n_chars"] == len("question 1") + len("answer 1")
    problems = ds.problems
    assert tuple(problems.columns) == PROBLEM_COLUMNS
    assert set(zip(problems["line"], problems["code"], strict=True)) >= {
        (4, "invalid_json"),
        (6, "duplicate_record"),
        (7, "no_assistant_turn"),
    }
    expected = [(p.line, p.code) for p in lint_file(messy).problems]
    assert list(zip(problems["line"], problems["code"], strict=True)) == expected
    assert [r["messages"][0]["content"] for r in ds.drop_invalid()][:2] == [
        "question 1",
        "question 2",
    ]


def test_missing_file() -> None:
    with pytest.raises(DatasetError, match="not found"):
        Dataset.load("/nonexistent/train.jsonl")


def test_from_records_and_dataframe_round_trip() -> None:
    ds = Dataset.from_records([chat(i) for i in range(4)] + [tool_chat()])
    assert ds.lines == [1, 2, 3, 4, 5]
    frame = pd.DataFrame(
        {"messages": [r["messages"] for r in ds], "tools": [r.get("tools") for r in ds]}
    )
    again = Dataset.from_dataframe(frame)
    assert again.records == ds.records
    with pytest.raises(DatasetError, match="messages"):
        Dataset.from_dataframe(pd.DataFrame({"text": ["x"]}))


def test_tokenizer_columns_and_truncation_warnings() -> None:
    ds = Dataset.from_records([chat(1), multi_turn(), tool_chat()])
    assert "n_tokens" not in ds.df
    tok = tiny_tokenizer()
    short = ds.tokenize(tok, sequence_length=40)
    df = short.df
    assert {"n_tokens", "n_trained_tokens", "truncated"} <= set(df.columns)
    assert df["n_tokens"].tolist() == token_lengths(tok, ds.records)
    assert df["truncated"].tolist() == [n > 40 for n in df["n_tokens"]]
    long = short.problems.query("code == 'too_long'")
    assert long["line"].tolist() == [i + 1 for i, n in enumerate(df["n_tokens"]) if n > 40]
    assert all("supervised tokens" in m for m in long["message"])
    roomy = ds.with_tokenizer(tok, sequence_length=4096)
    assert not roomy.df["truncated"].any() and roomy.problems.empty


def test_head_sample_filter_getitem() -> None:
    ds = Dataset.from_records([chat(i) for i in range(10)])
    assert [r["messages"][0]["content"] for r in ds.head(3)] == [f"question {i}" for i in range(3)]
    picked = ds.sample(4, seed=1)
    assert len(picked) == 4 and len(set(picked.lines)) == 4
    assert picked.lines == ds.sample(4, seed=1).lines
    assert len(ds.sample(50)) == 10
    even = ds.filter(ds.df["line"] % 2 == 0)
    assert even.lines == [2, 4, 6, 8, 10]
    assert ds.filter(lambda r: r["messages"][1]["content"].endswith("3")).lines == [4]
    with pytest.raises(ValueError, match="mask"):
        ds.filter([True])
    assert ds[2] == chat(2) and ds[-1] == chat(9)
    assert ds[2:4].lines == [3, 4]
    # Problems of a subset point at the original lines.
    broken = Dataset.from_records([chat(0), {"messages": []}, chat(2)])
    assert broken[1:].problems["line"].tolist() == [2]


def test_split_sizes_and_disjointness() -> None:
    ds = Dataset.from_records([chat(i) for i in range(50)])
    train, val = ds.split(0.2, seed=3)
    assert (len(train), len(val)) == (40, 10)
    assert not set(train.lines) & set(val.lines)
    assert sorted(train.lines + val.lines) == list(range(1, 51))
    assert train.lines == sorted(train.lines)
    assert ds.split(0.2, seed=3)[1].lines == val.lines
    assert ds.split(0.2, seed=4)[1].lines != val.lines
    tiny_train, tiny_val = Dataset.from_records([chat(0), chat(1)]).split(0.01)
    assert (len(tiny_train), len(tiny_val)) == (1, 1)
    with pytest.raises(ValueError):
        ds.split(1.5)


def test_dedupe() -> None:
    reordered = {"messages": [{"content": "question 1", "role": "user"}, chat(1)["messages"][1]]}
    ds = Dataset.from_records([chat(1), chat(2), chat(1), reordered, chat(3)])
    assert "duplicate_record" in set(ds.problems["code"])
    clean = ds.dedupe()
    assert clean.lines == [1, 2, 5]
    assert clean.problems.empty


def test_to_jsonl_round_trip(tmp_path: Path) -> None:
    ds = Dataset.load(sample_path()).sample(30, seed=0)
    out = ds.to_jsonl(tmp_path / "sub" / "out.jsonl")
    report = lint_file(out)
    assert report.ok and report.records == 30 and not report.warnings
    assert Dataset.load(out).records == ds.records
    assert not list(out.parent.glob(".*.tmp"))


def test_describe() -> None:
    ds = Dataset.from_records([chat(1), multi_turn(), tool_chat()])
    table = ds.describe()
    assert table.loc["records", "value"] == 3
    assert table.loc["with tools", "value"] == 1
    assert "chars p99" in table.index and "tokens p50" not in table.index
    with_tokens = ds.with_tokenizer(tiny_tokenizer(), sequence_length=30).describe()
    assert with_tokens.loc["tokens max", "value"] == max(
        ds.tokenize(tiny_tokenizer()).df["n_tokens"]
    )
    assert with_tokens.loc["truncated records", "value"] >= 1
    assert 0 < with_tokens.loc["share of supervised tokens lost", "value"] <= 1


def test_plot_lengths_draws_the_cut_off() -> None:
    import matplotlib.pyplot as plt

    ds = Dataset.from_records([chat(i) for i in range(5)] + [multi_turn(), tool_chat()])
    _, ax = plt.subplots()
    returned = ds.plot_lengths(ax=ax, tokenizer=tiny_tokenizer(), sequence_length=40)
    assert returned is ax
    assert any(list(line.get_xdata()) == [40, 40] for line in ax.get_lines())
    assert "longer than 40" in ax.get_title() and "%" in ax.get_title()
    assert sum(p.get_height() for p in ax.patches) == 7
    plain = ds.plot_lengths()
    assert plain.get_xlabel() == "characters per record"
    plt.close("all")


def test_preview_highlights_and_escapes() -> None:
    record = chat(1, reply="<script>alert(1)</script> done")
    record["messages"][0]["content"] = "<b>bold</b> & more"
    ds = Dataset.from_records([record, multi_turn()])
    with pytest.raises(DatasetError, match="tokenizer"):
        ds.preview(0)
    preview = ds.preview(0, tiny_tokenizer())
    assert isinstance(preview, ChatPreview)
    page = preview._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>bold" not in page and "&amp; more" in page
    trained = [text for text, is_trained, _ in preview.segments() if is_trained]
    assert trained == ["<script>alert(1)</script> done<|im_end|>"]
    assert "".join(text for text, _, _ in preview.segments()) == preview.encoded.text
    assert "⟦<script>alert(1)</script> done<|im_end|>⟧" in repr(preview)
    assert "assistant" in page and preview._repr_mimebundle_()["text/html"] == page
    cut = ds.with_tokenizer(tiny_tokenizer(), sequence_length=10).preview(1)
    assert any(is_cut for _, _, is_cut in cut.segments()) and "cuts" in repr(cut)


def test_dataset_html_is_paged_and_escaped(tmp_path: Path) -> None:
    records = [chat(i) for i in range(25)]
    records[0]["messages"][0]["role"] = "<img src=x>"
    ds = Dataset.from_records(records)
    page = ds._repr_html_()
    assert "<img" not in page and "&lt;img" in page
    assert "… 5 more rows" in page
    assert page.count("<tr") == 21  # header + 20 rows
    assert "1 warnings" in page  # the unusual role
    text = repr(ds)
    assert text.startswith("Dataset: 25 records") and "5 more rows" in text


def test_repr_shows_the_first_problems() -> None:
    ds = Dataset.from_records(["not a record", {"messages": [{"role": "user", "content": "hi"}]}])
    text = repr(ds)
    assert "line 1: error: record is a string, not an object — write one JSON object" in text
    assert "line 2 messages: warning: record has no assistant turn" in text
    page = ds._repr_html_()
    assert "record is a string, not an object" in page and "color:#b00020" in page
    many = Dataset.from_records(["x"] * 8)
    assert "… and 3 more (ds.problems lists them all)" in repr(many)


def test_problems_render_whole_and_coloured_but_stay_a_dataframe() -> None:
    long_hint = "add a {" + '"role": "assistant", ...} message or drop the record'
    ds = Dataset.from_records(["nope", {"messages": [{"role": "user", "content": "hi"}]}])
    table = ds.problems
    assert set(table["severity"]) == {"error", "warning"}
    assert type(table[table["severity"] == "error"]) is pd.DataFrame  # plain frames derive
    assert long_hint in repr(table)  # not cut at pandas' 50 characters
    page = table._repr_html_()
    assert html.escape(long_hint, quote=False) in page or html.escape(long_hint) in page
    assert "<tr style='color:#b00020'>" in page and "<tr style='color:#8a6d00'>" in page


def test_load_reads_lines_as_the_validator_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synth_lab.data import _lines

    monkeypatch.setattr(_lines, "MAX_LINE_BYTES", 200)
    monkeypatch.setattr(_lines, "READ_BLOCK", 16)  # lines cross many blocks
    long_record = chat(1, "x" * 500)
    path = tmp_path / "d.jsonl"
    rows = [chat(0), long_record, chat(2)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n" + json.dumps(chat(3)))
    ds = Dataset.load(path)
    assert ds.lines == [1, 3, 5] and ds.records == [chat(0), chat(2), chat(3)]
    assert [(p.line, p.code) for p in ds.problem_list()] == [(2, "line_too_long")]
    assert [(p.line, p.code) for p in lint_file(path).problems] == [(2, "line_too_long")]
