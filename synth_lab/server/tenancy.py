"""Who is calling: API keys to owner ids, and the data folder kept private to the server's user.

A key given without an owner name (``--api-key``, or a keys-file line with one word) belongs to
the owner ``key-`` + HMAC-SHA256(secret, key), keyed with a random secret kept in the data
folder (``owner_secret``, mode 0600): the id cannot be checked against guessed keys without
the secret. Data folders from before the secret existed used a truncated SHA-256 of the key;
their rows are moved to the new id on start-up.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from synth_lab.server.errors import RequestError
from synth_lab.server.store import Store

SECRET_NAME = "owner_secret"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it accessible to this user only (0700)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file readable by this user only (0600), atomically."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def owner_secret(data_dir: Path) -> bytes:
    """The data folder's owner-id secret, created on first use."""
    path = data_dir / SECRET_NAME
    if not path.is_file():
        write_private(path, secrets.token_hex(32) + "\n")
    os.chmod(path, 0o600)
    return bytes.fromhex(path.read_text(encoding="utf-8").strip())


def owner_id(key: str, secret: bytes) -> str:
    """The owner of a key given without an owner name."""
    return "key-" + hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:24]


def legacy_owner_id(key: str) -> str:
    """The owner id data folders used before the secret (a truncated SHA-256 of the key)."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


class Tenants:
    """Accepted keys -> owners; :meth:`owner` authenticates a request's bearer key.

    Args:
        keys: Key -> owner name, or ``None`` for an owner id derived from the key.
        data_dir: The server's data folder (holds the secret).
        store: The database (rows of legacy owner ids are moved to the new ones).
    """

    def __init__(self, keys: Mapping[str, str | None], data_dir: Path, store: Store) -> None:
        secret = owner_secret(data_dir)
        self._owners: dict[bytes, str] = {}
        for key, name in keys.items():
            owner = name or owner_id(key, secret)
            if not name:
                store.rename_owner(legacy_owner_id(key), owner)
            self._owners[_digest(key)] = owner
        self.keys = frozenset(keys)

    def owner(self, authorization: str) -> str:
        """The owner of an ``Authorization: Bearer KEY`` header value.

        Raises:
            RequestError: 401 when the key is missing or not accepted.
        """
        scheme, _, key = authorization.partition(" ")
        owner = self._owners.get(_digest(key.strip())) if scheme.lower() == "bearer" else None
        if owner is None:
            message = "invalid API key" if key else "missing API key (Authorization: Bearer KEY)"
            raise RequestError(401, "unauthorized", message)
        return owner


def _digest(key: str) -> bytes:
    # Looked up by digest so that the dict lookup does not compare secrets byte by byte.
    return hashlib.sha256(key.encode()).digest()
