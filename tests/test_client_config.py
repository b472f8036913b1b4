"""Client configuration and errors: URL and key resolution, masking, retry timing, error bodies."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from synth_lab.client import (
    APIKeyMissingError,
    AuthenticationError,
    BadRequestError,
    PollTimeoutError,
    RateLimitError,
    ServerError,
    SynthClient,
)
from synth_lab.client._retry import backoff_delay, retry_after_seconds
from synth_lab.client.config import (
    PROD_BACKEND_URL,
    identity_headers,
    mask_key,
    normalize_base_url,
    read_dotenv,
    resolve_api_key,
    resolve_base_url,
)
from synth_lab.client.errors import error_for_status, parse_error_body

KEY = "sk_live_abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.mark.parametrize(
    ("env", "explicit", "expected"),
    [
        ({}, None, PROD_BACKEND_URL),
        ({}, "http://h:1", "http://h:1/api"),
        ({}, "http://h:1/api/", "http://h:1/api"),
        ({"BACKEND_BASE_URL": "https://a", "BACKEND_OVERRIDE": "https://b"}, None, "https://a/api"),
        ({"BACKEND_BASE_URL": "https://a"}, "http://x", "http://x/api"),
        ({"BACKEND_OVERRIDE": "https://b", "SYNTH_BACKEND_URL_OVERRIDE": "local"}, None, "https://b/api"),
        ({"SYNTH_BACKEND_URL_OVERRIDE": "local"}, None, "http://localhost:8000/api"),
        ({"SYNTH_BACKEND_URL_OVERRIDE": "LOCAL", "LOCAL_BACKEND_URL": "http://127.0.0.1:9"}, None, "http://127.0.0.1:9/api"),
        ({"SYNTH_BACKEND_URL_OVERRIDE": "dev", "DEV_BACKEND_URL": "https://dev.example"}, None, "https://dev.example/api"),
        ({"SYNTH_BACKEND_URL_OVERRIDE": "prod", "PROD_BACKEND_URL": "https://p.example/api"}, None, "https://p.example/api"),
        ({"SYNTH_BACKEND_URL_OVERRIDE": "dev"}, None, PROD_BACKEND_URL),
        ({"BACKEND_BASE_URL": "   "}, None, PROD_BACKEND_URL),
    ],
)  # fmt: skip
def test_base_url_resolution_order(
    env: dict[str, str], explicit: str | None, expected: str
) -> None:
    assert resolve_base_url(explicit, env) == expected


def test_bare_host_gets_scheme_and_api() -> None:
    assert normalize_base_url("localhost:8000") == "http://localhost:8000/api"


def test_key_from_explicit_then_env_then_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nexport SYNTH_API_KEY='from-dotenv-123456'\nOTHER=1\n")
    assert resolve_api_key("explicit", {"SYNTH_API_KEY": "env"}, dotenv) == "explicit"
    assert resolve_api_key(None, {"SYNTH_API_KEY": "env"}, dotenv) == "env"
    assert resolve_api_key(None, {}, dotenv) == "from-dotenv-123456"
    assert resolve_api_key(None, {}, tmp_path / "missing.env") is None
    assert resolve_api_key(None, {}, None) is None


def test_dotenv_parsing(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text('A=1\nB = "two words"\nC=3 # trailing\nbroken line\n=\n')
    assert read_dotenv(path) == {"A": "1", "B": "two words", "C": "3", "": ""}


def test_identity_headers() -> None:
    assert identity_headers({}) == {}
    assert identity_headers({"SYNTH_USER_ID": "u1", "SYNTH_ORG_ID": "o1"}) == {
        "X-User-ID": "u1",
        "X-Org-ID": "o1",
    }


def test_mask_key_shows_four_and_two() -> None:
    assert mask_key(KEY) == "sk_l…89"
    assert mask_key("short") == "…"
    assert mask_key(None) == "<none>"


def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(APIKeyMissingError, match="No API key") as info:
        SynthClient(env={}, dotenv=tmp_path / ".env")
    assert "SYNTH_API_KEY" in info.value.hint


def test_client_repr_and_headers_hide_the_key() -> None:
    client = SynthClient(api_key=KEY, base_url="http://127.0.0.1:1", env={"SYNTH_USER_ID": "u"})
    try:
        assert KEY not in repr(client) and KEY not in str(client)
        assert "sk_l…89" in repr(client)
        assert client._headers["X-User-ID"] == "u"
        assert client._headers["Authorization"] == f"Bearer {KEY}"
    finally:
        client.close()


def test_injected_http_client_is_used_and_not_closed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"jobs": [{"id": "job_1", "status": "queued"}]})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = SynthClient(api_key=KEY, base_url="http://svc", http_client=http)
    assert client.jobs.list(status="queued", limit=5)[0]["id"] == "job_1"
    client.close()
    assert not http.is_closed
    assert str(seen[0].url) == "http://svc/api/learning/jobs?status=queued&limit=5"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        ({"detail": "bad thing"}, "bad thing", ""),
        ({"detail": {"code": "missing_gpu_type", "message": "gpu?"}}, "gpu?", "missing_gpu_type"),
        ({"message": "m", "code": "c"}, "m", "c"),
        ({"error": "e"}, "e", ""),
        ({"detail": [{"msg": "field required"}]}, "field required", ""),
        ("plain text", "plain text", ""),
    ],
)
def test_error_body_parsing(body: object, message: str, code: str) -> None:
    assert parse_error_body(body) == (message, code)


def test_error_classes_by_status_and_code_hints() -> None:
    err = error_for_status(
        400,
        {"detail": {"code": "missing_gpu_type", "message": "no gpu"}},
        method="POST",
        url="u",
    )
    assert isinstance(err, BadRequestError) and err.code == "missing_gpu_type"
    assert "[compute].gpu_type" in err.hint
    auth = error_for_status(403, {"detail": "no"}, method="GET", url="u", key_mask="sk_l…89")
    assert isinstance(auth, AuthenticationError) and "sk_l…89" in str(auth)
    assert isinstance(error_for_status(429, {}, method="GET", url="u"), RateLimitError)
    assert isinstance(error_for_status(502, "", method="GET", url="u"), ServerError)


def test_poll_timeout_says_the_job_keeps_running_and_how_to_reattach() -> None:
    text = str(PollTimeoutError("job_9", 30, "running"))
    assert "keeps running" in text and "attach('job_9')" in text and "--attach job_9" in text


def test_retry_after_parsing() -> None:
    assert retry_after_seconds(httpx.Headers({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(httpx.Headers({})) is None
    dated = retry_after_seconds(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert dated is not None and dated < 0


def test_backoff_grows_with_jitter_and_honours_sane_retry_after() -> None:
    assert backoff_delay(0, retry_after=2.0) == 2.0
    for attempt in range(6):
        delay = backoff_delay(attempt)
        cap = min(0.5 * 2**attempt, 8.0)
        assert 0.75 * cap <= delay <= cap
    assert backoff_delay(1, retry_after=3600) <= 1.0  # absurd Retry-After ignored


@pytest.mark.parametrize(
    "module", ["synth_lab.client", "synth_lab.client.remote", "synth_lab.server.app"]
)
def test_client_and_server_imports_stay_light(module: str) -> None:
    import subprocess
    import sys

    heavy = ("torch", "transformers", "pandas", "matplotlib", "peft")
    probe = f"import {module}, sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
