"""``--examples N`` subsetting: the first N records, copied verbatim, always cleaned up."""

from __future__ import annotations

from pathlib import Path

import pytest

from synth_lab.data import _lines
from synth_lab.data import examples as examples_module
from synth_lab.data.examples import count_records, first_examples
from synth_lab.data.validate import lint_file
from synth_lab.errors import DatasetError

ROWS = [
    b'{"messages": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "1"}]}',
    b'{"messages": [{"role": "user", "content": "two"}, {"role": "assistant", "content": "2"}]}',
    b'{"messages": [{"role": "user", "content": "three"}, {"role": "assistant", "content": "3"}]}',
]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """Three records with blank lines around and between them and CRLF on the second."""
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\n  \n" + ROWS[0] + b"\n\n" + ROWS[1] + b"\r\n \t\n" + ROWS[2] + b"\n\n")
    return path


def test_first_n_non_blank_lines_copied_verbatim(source: Path) -> None:
    with first_examples(source, 2) as subset:
        assert subset.suffix == ".jsonl"
        assert subset.read_bytes() == ROWS[0] + b"\n" + ROWS[1] + b"\r\n"
        report = lint_file(subset)
        assert (report.records, report.problems) == (2, [])
    assert not subset.exists()


def test_n_beyond_the_file_gives_all_records(source: Path) -> None:
    with first_examples(source, 1000) as subset:
        assert subset.read_bytes() == ROWS[0] + b"\n" + ROWS[1] + b"\r\n" + ROWS[2] + b"\n"
    assert not subset.exists()


def test_last_line_without_newline_gets_one(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(ROWS[0] + b"\n" + ROWS[1])
    with first_examples(path, 5) as subset:
        assert subset.read_bytes() == ROWS[0] + b"\n" + ROWS[1] + b"\n"


def test_removed_when_the_block_raises(source: Path) -> None:
    with pytest.raises(RuntimeError, match="training failed"), first_examples(source, 1) as subset:
        assert subset.exists()
        raise RuntimeError("training failed")
    assert not subset.exists()


def test_removed_on_keyboard_interrupt(source: Path) -> None:
    with pytest.raises(KeyboardInterrupt), first_examples(source, 3) as subset:
        raise KeyboardInterrupt
    assert not subset.exists()


def test_removed_when_the_caller_already_deleted_it(source: Path) -> None:
    with first_examples(source, 1) as subset:
        subset.unlink()
    assert not subset.exists()


@pytest.mark.parametrize("n", [0, -1, True, 1.5, "3", None])
def test_n_must_be_a_positive_integer(source: Path, n: object) -> None:
    with pytest.raises(DatasetError, match="positive") as caught, first_examples(source, n):  # type: ignore[arg-type]
        pass
    assert caught.value.hint


def test_missing_source_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"), first_examples(tmp_path / "nope.jsonl", 1):
        pass


def test_count_records(source: Path, tmp_path: Path) -> None:
    assert count_records(source) == 3
    odd = tmp_path / "odd.jsonl"
    odd.write_bytes(ROWS[0] + "\n\u00a0\n".encode() + b"\xff\xfe\n[1]\n" + ROWS[1])
    assert count_records(odd) == 4  # NBSP-only line is blank; bad bytes and arrays are records
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert count_records(empty) == 0
    with pytest.raises(DatasetError):
        count_records(tmp_path / "nope.jsonl")


def test_count_records_with_lines_longer_than_a_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(examples_module, "READ_BLOCK", 7)
    monkeypatch.setattr(_lines, "READ_BLOCK", 7)  # first_examples reads through _lines
    monkeypatch.setattr(examples_module, "_PARTIAL_LIMIT", 10)
    path = tmp_path / "d.jsonl"
    path.write_bytes(ROWS[0] + b"\n" + b" " * 50 + b"\n" + ROWS[1] + b"\n" + ROWS[2])
    assert count_records(path) == 3
    with first_examples(path, 2) as subset:
        assert subset.read_bytes() == ROWS[0] + b"\n" + ROWS[1] + b"\n"
