"""The streaming JSONL dataset linter: every rule, line numbering, file-level checks, the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synth_lab.data import _lines, _linter
from synth_lab.data import validate as validate_module
from synth_lab.data.validate import (
    Linter,
    LintReport,
    LintStream,
    check_record,
    iter_problems,
    lint_file,
    lint_records,
)
from synth_lab.errors import DatasetError, Problem, format_problems

USER = {"role": "user", "content": "What is 2 + 2?"}
ASSISTANT = {"role": "assistant", "content": "4"}


def chat(i: int = 0) -> dict[str, Any]:
    """A valid record, unique per ``i`` so that no duplicate warning appears."""
    return {
        "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]
    }


def line_of(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def write(tmp_path: Path, rows: list[Any], newline: bytes = b"\n") -> Path:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"".join(line_of(row) + newline for row in rows))
    return path


def lint_one(tmp_path: Path, bad: Any, at: int = 3) -> LintReport:
    """Lints a file whose line ``at`` holds ``bad`` and every other line a valid record."""
    rows: list[Any] = [chat(i) for i in range(1, 6)]
    rows[at - 1] = bad
    return lint_file(write(tmp_path, rows))


def the(report: LintReport | list[Problem], code: str) -> Problem:
    problems = report.problems if isinstance(report, LintReport) else report
    found = [p for p in problems if p.code == code]
    assert len(found) == 1, [p.format() for p in problems]
    return found[0]


def msgs(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"messages": list(messages), **extra}


ERROR_CASES = [
    ([1, 2], "not_object", ""),
    ("just text", "not_object", ""),
    ({"prompt": "x"}, "missing_messages", "messages"),
    ({"messages": None}, "missing_messages", "messages"),
    ({"messages": "hi"}, "messages_not_list", "messages"),
    ({"messages": ""}, "messages_not_list", "messages"),
    ({"messages": {"role": "user"}}, "messages_not_list", "messages"),
    ({"messages": []}, "empty_messages", "messages"),
    (msgs("hi", ASSISTANT), "message_not_object", "messages[0]"),
    (msgs({"content": "x"}, ASSISTANT), "invalid_role", "messages[0].role"),
    (msgs({"role": "", "content": "x"}, ASSISTANT), "invalid_role", "messages[0].role"),
    (msgs({"role": "  ", "content": "x"}, ASSISTANT), "invalid_role", "messages[0].role"),
    (msgs({"role": 3, "content": "x"}, ASSISTANT), "invalid_role", "messages[0].role"),
    (msgs(USER, {"role": "assistant", "content": 5}), "invalid_content", "messages[1].content"),
    (msgs(USER, {"role": "assistant", "content": True}), "invalid_content", "messages[1].content"),
    (
        msgs(USER, {"role": "assistant", "content": "x", "tool_calls": "f()"}),
        "tool_calls_not_list",
        "messages[1].tool_calls",
    ),
    (
        msgs(USER, {"role": "assistant", "content": "x", "tool_calls": [3]}),
        "tool_call_not_object",
        "messages[1].tool_calls[0]",
    ),
    (
        msgs(USER, {"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}),
        "tool_call_missing_name",
        "messages[1].tool_calls[0].function.name",
    ),
    (
        # A string function.name wins over the top-level name, even when blank.
        msgs(USER, {"role": "assistant", "tool_calls": [{"function": {"name": " "}, "name": "f"}]}),
        "tool_call_missing_name",
        "messages[1].tool_calls[0].function.name",
    ),
    (
        msgs(USER, {"role": "assistant", "tool_calls": [{"name": ""}]}),
        "tool_call_missing_name",
        "messages[1].tool_calls[0].name",
    ),
    (msgs(USER, {**ASSISTANT, "name": 5}), "invalid_message_name", "messages[1].name"),
    (msgs(USER, {**ASSISTANT, "reasoning": 5}), "invalid_reasoning", "messages[1].reasoning"),
    (
        msgs(USER, {**ASSISTANT, "raw_content": []}),
        "invalid_raw_content",
        "messages[1].raw_content",
    ),
    (msgs(USER, ASSISTANT, tools="search"), "tools_not_list", "tools"),
    (msgs(USER, ASSISTANT, tools={"name": "f"}), "tools_not_list", "tools"),
    (msgs(USER, ASSISTANT, tools=[3]), "tool_not_object", "tools[0]"),
    (msgs(USER, ASSISTANT, tools=[{"description": "d"}]), "tool_missing_name", "tools[0].name"),
    (msgs(USER, ASSISTANT, tools=[{"name": " "}]), "tool_missing_name", "tools[0].name"),
    (
        msgs(USER, ASSISTANT, tools=[{"name": "f", "description": 3}]),
        "invalid_tool_description",
        "tools[0].description",
    ),
    (
        msgs(USER, ASSISTANT, tools=[{"name": "f", "parameters": "x"}]),
        "invalid_tool_parameters",
        "tools[0].parameters",
    ),
    (msgs(USER, ASSISTANT, metadata=[1]), "metadata_not_object", "metadata"),
    (
        msgs(
            {"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image_url"}]},
            ASSISTANT,
        ),
        "empty_image_url",
        "messages[0].content[1].image_url.url",
    ),
    (
        msgs(
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": " "}}]},
            ASSISTANT,
        ),
        "empty_image_url",
        "messages[0].content[0].image_url.url",
    ),
    (
        msgs({"role": "user", "content": [{"type": "image", "image": 7}]}, ASSISTANT),
        "empty_image_url",
        "messages[0].content[0].image",
    ),
    (
        msgs({"role": "user", "content": {"type": "image_url", "image_url": {}}}, ASSISTANT),
        "empty_image_url",
        "messages[0].content.image_url.url",
    ),
]


@pytest.mark.parametrize(("record", "code", "path"), ERROR_CASES)
def test_each_error_rule_is_reported_at_its_line(
    tmp_path: Path, record: Any, code: str, path: str
) -> None:
    report = lint_one(tmp_path, record, at=3)
    problem = the(report, code)
    assert (problem.line, problem.severity, problem.path) == (3, "error", path)
    assert problem.message and problem.hint
    assert not report.ok
    assert report.valid_records == 4
    assert [p.line for p in report.errors] == [3]


WARNING_CASES = [
    (
        msgs({"role": "developer", "content": "x"}, USER, ASSISTANT),
        "unknown_role",
        "messages[0].role",
    ),
    (
        msgs({"role": "user", "content": [{"type": "image", "image": "/tmp/cat.png"}]}, ASSISTANT),
        "image_url_scheme",
        "messages[0].content[0].image",
    ),
    (
        msgs(
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///a"}}]},
            ASSISTANT,
        ),
        "image_url_scheme",
        "messages[0].content[0].image_url.url",
    ),
    (msgs(USER), "no_assistant_turn", "messages"),
    (
        msgs(USER, {"role": "assistant", "content": ""}),
        "empty_assistant_turn",
        "messages[1].content",
    ),
    (
        msgs(USER, {"role": "assistant", "content": None}),
        "empty_assistant_turn",
        "messages[1].content",
    ),
    (msgs(USER, {"role": "assistant"}), "empty_assistant_turn", "messages[1].content"),
    (
        msgs(USER, {"role": "assistant", "content": [], "tool_calls": []}),
        "empty_assistant_turn",
        "messages[1].content",
    ),
    (msgs(USER, USER, ASSISTANT), "consecutive_roles", "messages[1].role"),
    (msgs(USER, ASSISTANT, ASSISTANT), "consecutive_roles", "messages[2].role"),
    (
        msgs(USER, ASSISTANT, {"role": "system", "content": "s"}, USER, ASSISTANT),
        "system_not_first",
        "messages[2].role",
    ),
    (
        msgs({"role": "user", "content": ["hi"]}, ASSISTANT),
        "content_part_not_object",
        "messages[0].content[0]",
    ),
    (
        msgs({"role": "user", "content": [{"type": "audio", "audio": "x"}]}, ASSISTANT),
        "unknown_part_type",
        "messages[0].content[0].type",
    ),
    (
        msgs({"role": "user", "content": {"text": "no type"}}, ASSISTANT),
        "unknown_part_type",
        "messages[0].content.type",
    ),
    (
        msgs({"role": "user", "content": [{"type": "text", "text": 5}]}, ASSISTANT),
        "text_part_not_string",
        "messages[0].content[0].text",
    ),
    (msgs(USER, ASSISTANT, tools=""), "tools_not_list", "tools"),
]


@pytest.mark.parametrize(("record", "code", "path"), WARNING_CASES)
def test_each_warning_rule_is_reported_at_its_line(
    tmp_path: Path, record: Any, code: str, path: str
) -> None:
    report = lint_one(tmp_path, record, at=2)
    problem = the(report, code)
    assert (problem.line, problem.severity, problem.path) == (2, "warning", path)
    assert problem.message and problem.hint
    assert report.ok, [p.format() for p in report.errors]
    assert report.valid_records == 5


ACCEPTED = [
    msgs(USER, ASSISTANT, tool_choice="auto", metadata={}, extra_key=[1, {"a": None}]),
    msgs(USER, ASSISTANT, tools=None, metadata=None, tool_choice={"type": "function"}),
    msgs(USER, {"role": "assistant", "content": {"type": "text", "text": "4"}}),
    msgs(
        USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": 7, "type": "function", "function": {"name": "f", "arguments": {"x": 1}}},
                {"name": "g", "arguments": "not json"},
                {"function": "not an object", "name": "h"},
            ],
        },
        {"role": "tool", "tool_call_id": 7, "content": "1"},
        {"role": "tool", "tool_call_id": "8", "content": "2"},
        ASSISTANT,
    ),
    msgs(USER, {**ASSISTANT, "name": "bot", "reasoning": "think", "raw_content": "x", "weight": 0}),
    msgs(
        {"role": "system", "content": "s"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                {"type": "image", "image": "data:image/png;base64,AAAA"},
            ],
        },
        ASSISTANT,
    ),
    msgs(USER, ASSISTANT, tools=[{"name": "f", "description": "d", "parameters": {}}]),
    msgs(USER, {"role": "assistant", "content": None, "reasoning": "only thinking"}),
]


@pytest.mark.parametrize("record", ACCEPTED)
def test_records_the_trainer_accepts_have_no_problems(tmp_path: Path, record: Any) -> None:
    report = lint_one(tmp_path, record)
    assert report.problems == [], [p.format() for p in report.problems]
    assert check_record(record, 1) == []


CHAT = b'"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "a"}]}'


@pytest.mark.parametrize(
    "raw",
    [
        b'{"w": NaN, ' + CHAT,
        b'{"w": "\\ud800", ' + CHAT,
        b'{"n": 1e400, ' + CHAT,
        "\u00a0{".encode() + CHAT + "\u2028".encode(),
    ],
)
def test_lenient_json_the_trainer_reads_is_only_a_warning(tmp_path: Path, raw: bytes) -> None:
    report = lint_one(tmp_path, raw, at=2)
    assert report.ok, [p.format() for p in report.problems]
    assert report.records == 5
    assert all(p.line == 2 for p in report.problems)
    if raw.startswith(b"{"):
        assert the(report, "nonstandard_json").severity == "warning"


def test_invalid_json_message_and_column(tmp_path: Path) -> None:
    report = lint_one(tmp_path, b'{"messages": [}', at=4)
    problem = the(report, "invalid_json")
    assert problem.line == 4
    assert problem.col == 15
    assert problem.message == "invalid JSON (Expecting value)"
    with pytest.raises(DatasetError) as caught:
        report.raise_for_errors()
    assert "\n  4:15: invalid JSON (Expecting value)" in str(caught.value)


def test_a_byte_order_mark_is_rejected_with_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, [b"\xef\xbb\xbf" + line_of(chat(1)), chat(2)])
    problem = the(lint_file(path), "invalid_json")
    assert problem.line == 1
    assert "BOM" in problem.message
    assert "byte-order mark" in problem.hint


def test_nesting_too_deep_and_huge_integers_are_errors_not_crashes(tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    digits = b'{"n": ' + b"1" * 10_000 + b', "messages": []}'
    report = lint_file(write(tmp_path, [chat(1), deep, digits]))
    assert [(p.line, p.code) for p in report.errors] == [(2, "invalid_json"), (3, "invalid_json")]


def test_blank_lines_keep_physical_line_numbers(tmp_path: Path) -> None:
    rows = [chat(1), b"", b"   \t", chat(2), b"", b"{oops", b" ", chat(3)]
    report = lint_file(write(tmp_path, rows))
    assert report.records == 4
    assert [(p.line, p.code) for p in report.problems] == [(6, "invalid_json")]


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, [chat(1), chat(2), b"{oops", b"", chat(3)], newline=b"\r\n")
    report = lint_file(path)
    assert report.records == 4
    assert [(p.line, p.code) for p in report.problems] == [(3, "invalid_json")]


def test_bare_carriage_returns_split_records_like_universal_newlines(tmp_path: Path) -> None:
    path = write(tmp_path, [line_of(chat(1)) + b"\r" + line_of(chat(2)), chat(3)])
    report = lint_file(path)
    assert report.ok
    assert report.records == 3
    assert the(report, "bare_carriage_return").line == 1


def test_a_bare_carriage_return_inside_a_record_breaks_it(tmp_path: Path) -> None:
    # JSON allows CR as whitespace, but the trainer reads it as a line break.
    broken = line_of(chat(2)).replace(b'"messages": ', b'"messages":\r')
    report = lint_file(write(tmp_path, [chat(1), broken, chat(3)]))
    assert [(p.line, p.code) for p in report.errors] == [(2, "invalid_json"), (2, "invalid_json")]
    assert the(report, "bare_carriage_return").line == 2


def test_a_non_utf8_line_among_valid_ones(tmp_path: Path) -> None:
    latin1 = json.dumps(chat(2), ensure_ascii=False).replace("q2", "caf\xe9").encode("latin-1")
    report = lint_file(write(tmp_path, [chat(1), latin1, chat(3)]))
    problem = the(report, "not_utf8")
    assert (problem.line, problem.severity) == (2, "error")
    assert "0xe9" in problem.message
    assert report.records == 3
    assert report.valid_records == 2


def test_unicode_whitespace_only_lines_are_blank(tmp_path: Path) -> None:
    report = lint_file(write(tmp_path, [chat(1), "\u00a0\u2003".encode(), chat(2)]))
    assert report.problems == []
    assert report.records == 2


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    report = lint_file(path)
    problem = the(report, "empty_file")
    assert problem.message == "File contains no SFT examples"
    assert (problem.line, problem.severity) == (None, "error")
    assert report.records == 0


def test_file_of_only_blank_lines_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_bytes(b"\n  \n\t\r\n\n")
    report = lint_file(path)
    assert [p.code for p in report.problems] == ["empty_file"]


def test_no_assistant_turn_anywhere_is_a_file_error(tmp_path: Path) -> None:
    report = lint_file(write(tmp_path, [msgs(USER), msgs({"role": "user", "content": "b"})]))
    problem = the(report, "no_assistant_in_file")
    assert (problem.line, problem.severity) == (None, "error")
    assert [p.line for p in report.problems if p.code == "no_assistant_turn"] == [1, 2]
    # File-level problems come first in the report.
    assert report.problems[0] is problem


def test_no_assistant_file_error_needs_a_valid_record(tmp_path: Path) -> None:
    report = lint_file(write(tmp_path, [b"{bad", {"messages": []}]))
    assert [p.code for p in report.problems] == ["invalid_json", "empty_messages"]


def test_more_than_twenty_problems_are_all_reported(tmp_path: Path) -> None:
    rows = [chat(0)] + [{"messages": i} for i in range(30)]
    report = lint_file(write(tmp_path, rows))
    assert [p.line for p in report.errors] == list(range(2, 32))
    assert report.error_count == 30
    with pytest.raises(DatasetError) as caught:
        report.raise_for_errors()
    text = str(caught.value)
    # the problems shown the one way the CLI and the magics show them
    assert format_problems(report.errors, limit=20, total=30) in text
    assert "\n  21 messages: " in text
    assert "\n  22 " not in text
    assert caught.value.message.endswith("\n  ... and 10 more")
    assert caught.value.problems == report.problems
    assert caught.value.hint


def test_iter_problems_streams_in_line_order(tmp_path: Path) -> None:
    rows = [chat(1), {"messages": 1}, chat(1), b"[]", msgs(USER, USER, ASSISTANT)]
    problems = list(iter_problems(write(tmp_path, rows)))
    assert [(p.line, p.code) for p in problems] == [
        (2, "messages_not_list"),
        (4, "not_object"),
        (5, "consecutive_roles"),
        (3, "duplicate_record"),
    ]
    assert "line 1" in problems[-1].message


def test_duplicates_name_the_earlier_line_across_blank_lines(tmp_path: Path) -> None:
    rows = [chat(1), chat(2), b"", chat(3), b"", b"", chat(2), chat(1), chat(2)]
    report = lint_file(write(tmp_path, rows))
    dups = [(p.line, p.message) for p in report.problems if p.code == "duplicate_record"]
    assert dups == [
        (7, "duplicate record: identical to line 2"),
        (8, "duplicate record: identical to line 1"),
        (9, "duplicate record: identical to line 2"),
    ]
    assert all(p.severity == "warning" for p in report.problems)


@pytest.mark.parametrize("numpy", [True, False])
def test_duplicates_with_and_without_numpy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, numpy: bool
) -> None:
    monkeypatch.setattr(_linter, "_SMALL_DUPLICATE_SET", 0)  # take the large-file path
    if not numpy:
        monkeypatch.setattr(_linter, "_numpy", lambda: None)
    rows = [chat(1), chat(2), b"", chat(1), chat(3), chat(2), chat(2), chat(4)]
    report = lint_file(write(tmp_path, rows))
    assert [(p.line, p.message) for p in report.problems] == [
        (4, "duplicate record: identical to line 1"),
        (6, "duplicate record: identical to line 2"),
        (7, "duplicate record: identical to line 2"),
    ]


def test_duplicate_tracking_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_linter, "DUPLICATE_TRACK_LIMIT", 3)
    rows = [chat(1), chat(2), chat(1), chat(2), chat(1)]
    report = lint_file(write(tmp_path, rows))
    assert [(p.line, p.code) for p in report.problems] == [
        (None, "duplicates_not_checked"),
        (3, "duplicate_record"),
    ]
    assert "first 3 records" in report.problems[0].message


def test_overlong_lines_are_reported_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_lines, "MAX_LINE_BYTES", 200)
    monkeypatch.setattr(_lines, "READ_BLOCK", 16)
    long_record = msgs(USER, {"role": "assistant", "content": "x" * 500})
    report = lint_file(write(tmp_path, [chat(1), long_record, chat(2), {"messages": 0}]))
    assert [(p.line, p.code) for p in report.problems] == [
        (2, "line_too_long"),
        (4, "messages_not_list"),
    ]
    assert report.records == 4


def test_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(line_of(chat(1)) + b"\n" + b'{"messages": 3}')
    assert [(p.line, p.code) for p in lint_file(path).problems] == [(2, "messages_not_list")]


def test_lint_records_in_memory(tmp_path: Path) -> None:
    records: list[Any] = [chat(1), {"messages": (USER, ASSISTANT)}, {"messages": "x"}, chat(1)]
    report = lint_records(records)
    assert report.path is None
    assert report.records == 4
    assert [(p.line, p.code) for p in report.problems] == [
        (3, "messages_not_list"),
        (4, "duplicate_record"),
    ]
    shifted = lint_records(iter(records), start_line=10)
    assert [p.line for p in shifted.problems] == [12, 13]


def test_lint_records_with_non_json_objects_never_raises() -> None:
    class Weird(dict):  # type: ignore[type-arg]
        def get(self, key: object, default: object = None) -> object:
            raise RuntimeError("boom")

    report = lint_records(
        [{1: 2, "messages": [{"role": object(), "content": b"x"}]}, Weird(), set()]
    )
    assert [p.code for p in report.errors] == [
        "invalid_role",
        "invalid_content",
        "unchecked_record",
        "not_object",
    ]


def test_linter_counts_and_blank_lines() -> None:
    linter = Linter()
    assert linter.feed_line(b"", 1) == []
    assert linter.feed_line(b"  \r", 2) == []
    assert linter.feed_line(line_of(chat(1)), 3) == []
    assert the(linter.feed_line(b"nope", 4), "invalid_json").line == 4
    assert (linter.records, linter.valid_records) == (2, 1)
    assert linter.finish() == []
    assert linter.finish() == []
    empty = Linter()
    assert [p.code for p in empty.finish()] == ["empty_file"]


def test_missing_path_and_directory_raise_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found") as caught:
        lint_file(tmp_path / "missing.jsonl")
    assert caught.value.hint
    with pytest.raises(DatasetError, match="directory"):
        lint_file(tmp_path)
    with pytest.raises(DatasetError):
        next(iter_problems(tmp_path / "missing.jsonl"))


def test_report_dict_and_ok(tmp_path: Path) -> None:
    report = lint_file(write(tmp_path, [chat(1), msgs(USER, USER, ASSISTANT)]))
    assert report.ok
    report.raise_for_errors()
    assert report.to_dict() == {
        "records": 2,
        "problems": [
            {
                "line": 2,
                "path": "messages[1].role",
                "code": "consecutive_roles",
                "severity": "warning",
                "message": report.problems[0].message,
                "hint": report.problems[0].hint,
            }
        ],
    }
    json.dumps(report.to_dict())


def test_report_keeps_a_bounded_number_of_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate_module, "MAX_REPORT_PROBLEMS", 5)
    rows = [chat(0)] + [{"messages": i} for i in range(8)] + [msgs(USER)] * 1
    report = lint_file(write(tmp_path, rows))
    assert len(report.problems) == 5
    assert (report.omitted_errors, report.omitted_warnings) == (3, 1)
    assert report.error_count == 8
    assert not report.ok
    with pytest.raises(DatasetError, match="8 error"):
        report.raise_for_errors()


def test_check_record_is_stateless_and_uses_the_given_line() -> None:
    record = msgs(USER, USER)
    first = check_record(record, 7)
    assert first == check_record(record, 7)
    assert {p.line for p in first} == {7}
    assert {p.code for p in first} == {"consecutive_roles", "no_assistant_turn"}


def test_unreadable_file_is_a_dataset_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, [chat(1)])

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_lines, "open", refuse, raising=False)
    with pytest.raises(DatasetError, match="not readable") as caught:
        lint_file(path)
    assert "permission" in caught.value.hint


def test_a_read_failure_midway_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, [chat(1), chat(2), chat(3)])
    real_open = open

    class Failing:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.inner = real_open(*args, **kwargs)
            self.reads = 0

        def read(self, size: int) -> bytes:
            self.reads += 1
            if self.reads > 1:
                raise OSError(5, "Input/output error")
            return self.inner.read(size)

        def __enter__(self) -> Failing:
            return self

        def __exit__(self, *exc: object) -> None:
            self.inner.close()

    monkeypatch.setattr(_lines, "open", Failing, raising=False)
    monkeypatch.setattr(_lines, "READ_BLOCK", 100)
    report = lint_file(path)
    problem = the(report, "read_error")
    assert (problem.line, problem.severity) == (2, "error")
    assert "Input/output error" in problem.message


def test_lint_stream_counts_after_iterating(tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        LintStream(tmp_path / "missing.jsonl")
    stream = LintStream(write(tmp_path, [chat(1), b"", {"messages": 2}, chat(1)]))
    assert [(p.line, p.code) for p in stream] == [(3, "messages_not_list"), (4, "duplicate_record")]
    assert (stream.records, stream.valid_records) == (3, 2)
    assert list(stream) == []
    stream.close()
