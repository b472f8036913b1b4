"""One ``Problem`` type for every error that carries located problems, printed one way."""

from __future__ import annotations

import json

import pytest

from synth_lab.cli import report_error
from synth_lab.client.errors import BadRequestError, FileRejectedError
from synth_lab.errors import ConfigError, DatasetError, Problem

SERVER_PROBLEM = {
    "path": "",
    "line": 3,
    "col": 1,
    "code": "invalid_json",
    "severity": "error",
    "message": "line is not valid JSON",
    "hint": "fix the line",
}


def test_report_error_prints_a_rejected_file_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    exc = FileRejectedError("file_1", [SERVER_PROBLEM, {"message": "too short", "line": "7"}])
    code = report_error(exc, as_json=True)
    out = capsys.readouterr()
    rows = json.loads(out.out)["errors"]
    assert code == 1
    assert rows[0] == SERVER_PROBLEM
    assert rows[1]["line"] == 7 and rows[1]["message"] == "too short" and rows[1]["col"] is None
    assert "3:1" in out.err and "line is not valid JSON" in out.err


def test_problems_is_always_a_list_of_problem() -> None:
    body = {"detail": {"code": "invalid_payload", "problems": [{"field": "model", "msg": "?"}]}}
    errors = [
        ConfigError("bad config", [Problem("a.b", 1, 2, "wrong")]),
        DatasetError("bad data", problems=[{"line": 2, "message": "empty"}]),
        FileRejectedError("file_1", [SERVER_PROBLEM, "not a dict"]),
        BadRequestError("bad request", status_code=400, body=body),
    ]
    for exc in errors:
        assert exc.problems and all(isinstance(p, Problem) for p in exc.problems)
    assert errors[3].problems[0].path == "model" and errors[3].problems[0].message == "?"
    assert errors[2].problems[1].message == "not a dict"


def test_every_error_prints_its_problems_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    problem = Problem("training.lr", 4, 5, "must be positive", hint="use 1e-4", code="range")
    for exc in (
        ConfigError("config", [problem]),
        DatasetError("data", problems=[problem]),
        FileRejectedError("file_9", [problem.to_dict()]),
    ):
        report_error(exc, as_json=True)
        out = capsys.readouterr()
        assert json.loads(out.out)["errors"] == [problem.to_dict()]
        if not isinstance(exc, DatasetError):  # a DatasetError's message is its caller's
            assert problem.format() in out.err
