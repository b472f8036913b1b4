"""Property tests: whatever the bytes or JSON values, linting reports problems and never raises."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth_lab.data.examples import count_records, first_examples
from synth_lab.data.validate import Linter, check_record, iter_problems, lint_file, lint_records
from synth_lab.errors import Problem

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

VALID_LINES = [
    b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}',
    b'{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": '
    b'"image_url", "image_url": {"url": "https://x.test/a.png"}}]}, {"role": "assistant", '
    b'"content": null, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}], '
    b'"tools": [{"name": "f", "parameters": {}}], "metadata": {"k": 1}}',
    b"",
    b'{"messages": [{"role": "user", "content": "\\u00e9"}, {"role": "assistant", "content": "1"}],'
    b' "tool_choice": "auto"}',
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["system", "user", "assistant", "tool", "text", "image_url", "image", ""])
)
KEYS = [
    "role", "content", "type", "text", "image_url", "image", "url", "tool_calls", "function",
    "name", "arguments", "messages", "tools", "metadata", "parameters", "description",
    "reasoning", "raw_content", "tool_call_id",
]  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=30,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": json_values, "content": json_values},
        optional={"tool_calls": json_values, "name": json_values, "reasoning": json_values},
    )
    | json_values,
    max_size=6,
)
records = (
    st.fixed_dictionaries(
        {"messages": messages | json_values},
        optional={"tools": json_values, "metadata": json_values, "tool_choice": json_values},
    )
    | json_values
)


def assert_problems(problems: list[Problem], lines: int) -> None:
    for problem in problems:
        assert isinstance(problem, Problem)
        assert problem.severity in ("error", "warning")
        assert problem.code and problem.message
        assert problem.line is None or 1 <= problem.line <= max(lines, 1)


def lint_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    report = lint_file(path)
    lines = data.count(b"\n") + 1
    assert_problems(report.problems, lines)
    streamed = list(iter_problems(path))
    assert Counter(streamed) == Counter(report.problems)
    assert 0 <= report.valid_records <= report.records
    # Bare carriage returns split a line into several records, as universal newlines do.
    assert count_records(path) <= report.records <= count_records(path) + data.count(b"\r")
    with first_examples(path, 2) as subset:
        assert count_records(subset) <= 2


@FUZZ
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    lint_bytes(tmp_path, data)


@FUZZ
@given(
    base=st.lists(st.sampled_from(VALID_LINES), min_size=1, max_size=6),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "replace"]),
            st.integers(min_value=0, max_value=10_000),
            st.binary(min_size=1, max_size=4)
            | st.sampled_from([b"\n", b"\r", b"{", b"}", b'"', b"\xff", b"\xc3", b"\x00", b","]),
        ),
        max_size=8,
    ),
    crlf=st.booleans(),
)
def test_mutated_valid_lines_never_raise(
    tmp_path: Path, base: list[bytes], edits: list[tuple[str, int, bytes]], crlf: bool
) -> None:
    data = bytearray((b"\r\n" if crlf else b"\n").join(base))
    for action, position, chunk in edits:
        at = position % (len(data) + 1)
        if action == "insert":
            data[at:at] = chunk
        elif action == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    lint_bytes(tmp_path, bytes(data))


@FUZZ
@given(value=records)
def test_check_record_on_any_json_value(value: Any) -> None:
    problems = check_record(value, 5)
    assert_problems(problems, 5)
    assert {p.line for p in problems} <= {5}
    codes = {p.code for p in problems}
    assert "unchecked_record" not in codes  # plain JSON never needs the safety net


@FUZZ
@given(rows=st.lists(records, max_size=5))
def test_json_records_as_lines_and_in_memory(tmp_path: Path, rows: list[Any]) -> None:
    text = "\n".join(json.dumps(row) for row in rows)
    lint_bytes(tmp_path, text.encode())
    report = lint_records(rows)
    assert_problems(report.problems, len(rows))
    assert report.records == len(rows)
    # The file and the in-memory view agree on which records are valid.
    assert lint_file(tmp_path / "fuzz.jsonl").valid_records == report.valid_records


@FUZZ
@given(raw=st.binary(max_size=200) | st.sampled_from(VALID_LINES))
def test_feed_line_never_raises(raw: bytes) -> None:
    linter = Linter()
    assert_problems(linter.feed_line(raw, 1), 1)
    assert_problems(linter.finish(), 1)
    assert linter.records <= 1 + raw.count(b"\r")
