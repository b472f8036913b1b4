"""Where the learning API lives and who we are to it: base URL, API key, identity headers.

The resolution order is the one the synth-ai CLI uses (``docs/contract/learning-api.md``):
an explicit argument, then ``BACKEND_BASE_URL``, ``BACKEND_OVERRIDE``, then
``SYNTH_BACKEND_URL_OVERRIDE`` = ``local|dev|prod`` (with ``LOCAL_BACKEND_URL``,
``DEV_BACKEND_URL``, ``PROD_BACKEND_URL``), then the production default. A bare host gets
``/api`` appended. The key comes from an explicit argument, ``SYNTH_API_KEY``, or a ``.env``
file, and is only ever shown masked (:func:`mask_key`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

PROD_BACKEND_URL = "https://api.usesynth.ai/api"
"""The hosted service, used when nothing else is configured."""

LOCAL_BACKEND_URL = "http://localhost:8000"
"""The default of ``SYNTH_BACKEND_URL_OVERRIDE=local`` (a ``synth-lab serve`` on this machine)."""

API_KEY_ENV = "SYNTH_API_KEY"


def normalize_base_url(url: str) -> str:
    """``url`` without a trailing slash and ending in ``/api``.

    >>> normalize_base_url("http://localhost:8000/")
    'http://localhost:8000/api'
    >>> normalize_base_url("https://host/api/")
    'https://host/api'
    """
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url if url.endswith("/api") else url + "/api"


def resolve_base_url(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The learning API base URL (always ending in ``/api``); first set wins.

    Args:
        explicit: A URL given by the caller (``--backend``).
        env: The environment to read (default ``os.environ``).
    """
    env = os.environ if env is None else env
    for candidate in (explicit, env.get("BACKEND_BASE_URL"), env.get("BACKEND_OVERRIDE")):
        if candidate and candidate.strip():
            return normalize_base_url(candidate)
    override = (env.get("SYNTH_BACKEND_URL_OVERRIDE") or "").strip().lower()
    if override == "local":
        return normalize_base_url(env.get("LOCAL_BACKEND_URL") or LOCAL_BACKEND_URL)
    named = {"dev": "DEV_BACKEND_URL", "prod": "PROD_BACKEND_URL"}.get(override)
    if named and (env.get(named) or "").strip():
        return normalize_base_url(env[named])
    return PROD_BACKEND_URL


def read_dotenv(path: str | os.PathLike[str]) -> dict[str, str]:
    """``KEY=value`` pairs of a ``.env`` file (``export`` prefixes, quotes and comments allowed).

    A missing or unreadable file gives ``{}``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def resolve_api_key(
    explicit: str | None = None,
    env: Mapping[str, str] | None = None,
    dotenv: str | os.PathLike[str] | None = ".env",
) -> str | None:
    """The API key: ``explicit``, else ``SYNTH_API_KEY``, else the ``.env`` file; or ``None``."""
    if explicit:
        return explicit.strip()
    env = os.environ if env is None else env
    if env.get(API_KEY_ENV, "").strip():
        return env[API_KEY_ENV].strip()
    if dotenv is not None:
        value = read_dotenv(dotenv).get(API_KEY_ENV, "").strip()
        if value:
            return value
    return None


def identity_headers(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``X-User-ID`` / ``X-Org-ID`` from ``SYNTH_USER_ID`` / ``SYNTH_ORG_ID`` when set."""
    env = os.environ if env is None else env
    headers: dict[str, str] = {}
    if env.get("SYNTH_USER_ID"):
        headers["X-User-ID"] = env["SYNTH_USER_ID"]
    if env.get("SYNTH_ORG_ID"):
        headers["X-Org-ID"] = env["SYNTH_ORG_ID"]
    return headers


def mask_key(key: str | None) -> str:
    """A key safe to print: its first 4 and last 2 characters (``abcd…yz``).

    Keys too short to hide anything that way are shown as ``…`` alone.

    >>> mask_key("sk_live_0123456789")
    'sk_l…89'
    """
    if not key:
        return "<none>"
    if len(key) < 10:
        return "…"
    return f"{key[:4]}…{key[-2:]}"


def redact(text: str, key: str | None, secrets: Iterable[str] = ()) -> str:
    """``text`` with every occurrence of ``key`` (and of each of ``secrets``) masked."""
    for secret in (key, *secrets):
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, mask_key(secret))
    return text


def mask_url(url: str) -> str:
    """``url`` with the credentials of ``user:password@host`` masked like a key.

    >>> mask_url("https://alice:s3cret-passw0rd@example.com/api")
    'https://alic…rd@example.com/api'
    """
    userinfo, host = _userinfo(url)
    if not userinfo:
        return url
    return url.replace(f"{userinfo}@{host}", f"{mask_key(userinfo)}@{host}", 1)


def url_secrets(url: str) -> list[str]:
    """What must never be shown of ``url``: its ``user:password`` part, as written and decoded."""
    userinfo, _ = _userinfo(url)
    if not userinfo:
        return []
    _, _, password = userinfo.partition(":")
    found = [userinfo, unquote(userinfo), password, unquote(password)]
    # Longest first, so that the whole userinfo is masked before its password alone.
    return sorted({s for s in found if s}, key=len, reverse=True)


def without_userinfo(url: str) -> str:
    """``url`` without its ``user:password@`` part.

    >>> without_userinfo("https://alice:pw@example.com/api")
    'https://example.com/api'
    """
    userinfo, host = _userinfo(url)
    return url.replace(f"{userinfo}@{host}", host, 1) if userinfo else url


def _userinfo(url: str) -> tuple[str | None, str]:
    netloc = urlsplit(url if "//" in url else "//" + url).netloc
    if "@" not in netloc:
        return None, netloc
    userinfo, _, host = netloc.rpartition("@")
    return userinfo, host
