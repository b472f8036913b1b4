"""The client against answers the learning API never promises, from a garbage-speaking server.

Every bad answer is a typed error that carries the status and a short excerpt; a slow answer
ends at the deadline and a big one at the size cap; credentials in the backend URL never show.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from garbage_server import GarbageServer

from synth_lab.client import (
    APIConnectionError,
    APIResponseValidationError,
    DeadlineExceededError,
    NotFoundError,
    ResponseTooLargeError,
    SynthClient,
)
from synth_lab.client.remote import RemoteJob
from synth_lab.server.process import free_port

KEY = "sk-garbage-0123456789abcdef"
PASSWORD = "Sup3rSecretPassw0rd"


@pytest.fixture(scope="module")
def garbage() -> Iterator[GarbageServer]:
    with GarbageServer() as server:
        yield server


def client(url: str, **kwargs: Any) -> SynthClient:
    api = SynthClient(api_key=KEY, base_url=url, dotenv=None, **kwargs)
    api._sleep = lambda s: None  # retries without waiting
    return api


def test_a_redirect_is_not_followed_and_not_success(garbage: GarbageServer) -> None:
    with client(garbage.url) as api, pytest.raises(APIResponseValidationError) as caught:
        api.get_json("/redirect")
    assert caught.value.status_code == 302
    assert "redirect to http://elsewhere.invalid/api/redirect" in str(caught.value)
    assert garbage.seen[-1] == "/api/redirect"  # asked once, never followed


def test_a_redirected_create_is_an_error_sent_once(garbage: GarbageServer) -> None:
    before = garbage.seen.count("/api/learning/jobs")
    with client(garbage.url) as api, pytest.raises(APIResponseValidationError) as caught:
        api.jobs.create({"model": "m", "training_file_id": "f"})
    assert caught.value.status_code == 307 and caught.value.body == "moved"
    assert garbage.seen.count("/api/learning/jobs") == before + 1


def test_a_success_that_is_not_json_is_an_error(garbage: GarbageServer) -> None:
    with client(garbage.url) as api, pytest.raises(APIResponseValidationError) as caught:
        api.get_json("/html")
    assert caught.value.status_code == 200
    assert caught.value.body == "<html><body>Please log in</body></html>"
    assert "not JSON" in str(caught.value) and "Please log in" in str(caught.value)


def test_an_upload_answered_with_html_is_an_error(garbage: GarbageServer, tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"messages": []}\n')
    with client(garbage.url) as api, pytest.raises(APIResponseValidationError) as caught:
        api.files.upload(data)
    assert caught.value.status_code == 200 and "Please log in" in caught.value.body


def test_an_empty_success_is_an_error_where_json_is_promised(garbage: GarbageServer) -> None:
    with client(garbage.url) as api:
        with pytest.raises(APIResponseValidationError, match="empty body") as caught:
            api.get_json("/empty")
        assert caught.value.status_code == 200
        with pytest.raises(APIResponseValidationError, match="empty body"):
            api.post_json("/empty", {})
        # Where the API allows an empty answer (start, cancel), it stays allowed.
        assert api.post_json("/empty", {}, allow_empty=True) == {}


def test_a_malformed_event_line_is_a_typed_error(garbage: GarbageServer) -> None:
    with client(garbage.url) as api:
        stream = api.jobs.stream_events("job_1")
        assert next(stream) == {"seq": 1, "type": "sft.progress"}
        with pytest.raises(APIResponseValidationError, match="malformed event line") as caught:
            next(stream)
    assert caught.value.body == 'data: {"seq": 2, "type": '


def test_a_dripping_answer_ends_at_the_deadline(garbage: GarbageServer) -> None:
    with client(garbage.url, deadline=0.5) as api, pytest.raises(DeadlineExceededError) as caught:
        api.get_json("/drip")
    assert "0.5s deadline" in str(caught.value)
    assert garbage.seen.count("/api/drip") == 1  # not retried


def test_the_timeout_is_the_default_deadline(garbage: GarbageServer) -> None:
    # Each byte comes well within the timeout; only the deadline can stop this.
    with client(garbage.url, timeout=0.5) as api, pytest.raises(DeadlineExceededError):
        api.get_json("/drip")


def test_a_silent_answer_ends_at_the_deadline(garbage: GarbageServer) -> None:
    api = client(garbage.url, timeout=30, deadline=0.3, max_retries=2)
    with api, pytest.raises(DeadlineExceededError):
        api.get_json("/silent")
    assert garbage.seen.count("/api/silent") == 1


@pytest.mark.parametrize("path", ["/huge-declared", "/huge-chunked"])
def test_an_answer_over_the_cap_is_an_error(garbage: GarbageServer, path: str) -> None:
    api = client(garbage.url, max_response_bytes=64 << 10)
    with api, pytest.raises(ResponseTooLargeError, match="more than 65,536 bytes") as caught:
        api.get_json(path)
    assert caught.value.status_code == 200


def test_the_cap_is_configurable(garbage: GarbageServer) -> None:
    with client(garbage.url, max_response_bytes=1 << 20) as api:
        assert len(api.get_json("/huge-declared")) == 200_001


def test_an_event_line_over_the_cap_is_an_error(garbage: GarbageServer) -> None:
    api = client(garbage.url, max_response_bytes=64 << 10)
    with api, pytest.raises(ResponseTooLargeError):
        list(api.jobs.stream_events("job_2"))


def test_credentials_in_the_backend_url_never_show(
    garbage: GarbageServer, caplog: pytest.LogCaptureFixture
) -> None:
    def with_password(url: str) -> str:
        return url.replace("http://", f"http://alice:{PASSWORD}@")

    caplog.set_level(logging.DEBUG, logger="synth_lab.client")
    errors: list[Exception] = []
    with client(with_password(garbage.url), deadline=0.3, max_retries=1) as api:
        shown = [repr(api), api.base_url, repr(RemoteJob(api, "job_9")), RemoteJob(api, "job_9")]
        for path, kind in [
            ("/redirect", APIResponseValidationError),
            ("/html", APIResponseValidationError),
            ("/nothing-here", NotFoundError),
            ("/drip", DeadlineExceededError),
        ]:
            with pytest.raises(kind) as caught:
                api.get_json(path)
            errors.append(caught.value)
    refused = with_password(f"http://127.0.0.1:{free_port()}/api")
    with client(refused, max_retries=1) as api, pytest.raises(APIConnectionError) as caught:
        api.get_json("/learning/jobs")
    errors.append(caught.value)

    assert "alic…rd@127.0.0.1" in shown[1]
    texts = [str(e) for e in errors] + [str(getattr(e, "url", "")) for e in errors]
    texts += [str(s) for s in shown[:3]] + [shown[3]._repr_mimebundle_()["text/html"]]
    texts.append(caplog.text)
    assert "retrying" in caplog.text  # the refused connection was logged, masked
    for text in texts:
        assert PASSWORD not in text and "alice:" not in text, text
