"""Streaming multipart upload: the ``file`` part goes straight to disk, chunk by chunk.

Nothing of the file is held in memory beyond one network chunk, and the size limit is enforced
while reading (and up front from ``Content-Length``), so an oversized upload is refused with 413
without filling the disk. Form fields count against the same limit and their number is capped;
a body that ends before its closing boundary is refused (400) and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from synth_lab.server.errors import RequestError, bad

MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 16
"""Parts a form may have: the file and a few small fields (``purpose``)."""
IDLE_TIMEOUT_SECONDS = 120.0
"""An upload that sends nothing for this long is abandoned (its partial file removed)."""


@dataclass
class Upload:
    """What a multipart upload held: the stored file and the form fields."""

    path: Path
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)
    sha256: str = ""
    """Digest of the file's bytes and the form fields: tells two uploads apart."""


class _Sink:
    """Parser callbacks: route the ``file`` part to disk and other parts to fields."""

    def __init__(self, target: Path, limit: int) -> None:
        self.target = target
        self.limit = limit
        self.handle: Any = None
        self.size = 0
        self.filename = ""
        self.fields: dict[str, str] = {}
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._part: str | None = None
        self._is_file = False
        self._buffer = bytearray()
        self.parts = 0
        self.field_bytes = 0
        self.ended = False
        self.digest = hashlib.sha256()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def end(self) -> None:
        self.ended = True

    def part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise bad("invalid_payload", f"the form has more than {MAX_PARTS} parts")
        self._headers = {}
        self._buffer = bytearray()
        self._part = None
        self._is_file = False

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._part = name
        if name == "file":
            if self.handle is not None:
                raise bad("invalid_payload", "the form has more than one 'file' part")
            self._is_file = True
            raw = options.get(b"filename", b"upload.jsonl").decode("utf-8", "replace")
            self.filename = os.path.basename(raw.replace("\\", "/")) or "upload.jsonl"
            # Readable by the server's user only, like everything under the data folder.
            fd = os.open(self.target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self.handle = os.fdopen(fd, "wb")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.size += end - start
            if self.size + self.field_bytes > self.limit:
                raise RequestError(
                    413,
                    "payload_too_large",
                    f"the file is larger than this server accepts ({self.limit:,} bytes)",
                )
            self.handle.write(data[start:end])
            self.digest.update(data[start:end])
        elif len(self._buffer) + end - start <= MAX_FIELD_BYTES:
            self.field_bytes += end - start
            if self.size + self.field_bytes > self.limit:
                raise RequestError(
                    413,
                    "payload_too_large",
                    f"the form is larger than this server accepts ({self.limit:,} bytes)",
                )
            self._buffer += data[start:end]
        else:
            raise bad("invalid_payload", f"form field '{self._part}' is too long")

    def part_end(self) -> None:
        if not self._is_file and self._part:
            self.fields[self._part] = self._buffer.decode("utf-8", "replace")
        self._is_file = False

    def close(self) -> None:
        if self.handle is not None and not self.handle.closed:
            self.handle.close()


async def receive_upload(request: Request, target: Path, limit: int) -> Upload:
    """Read a ``multipart/form-data`` request, writing its ``file`` part to ``target``.

    Raises:
        RequestError: 400 ``invalid_payload`` (not multipart, no ``file`` part, malformed),
            413 ``payload_too_large``.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise bad(
            "invalid_payload",
            "send the file as multipart/form-data with a part named 'file'",
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise RequestError(
            413, "payload_too_large", f"the upload is larger than this server accepts ({limit:,})"
        )
    sink = _Sink(target, limit)
    parser = MultipartParser(boundary, sink.callbacks())
    done = False
    chunks = request.stream()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(anext(chunks), IDLE_TIMEOUT_SECONDS)
            except StopAsyncIteration:
                break
            if chunk:
                parser.write(chunk)
        parser.finalize()
        if not sink.ended:
            raise bad(
                "invalid_payload",
                "the upload ended before the form's closing boundary (truncated); send it again",
            )
        done = True
    except asyncio.TimeoutError:
        raise RequestError(408, "upload_stalled", "the upload stalled; send it again") from None
    except ClientDisconnect:
        raise bad("invalid_payload", "the client disconnected during the upload") from None
    except RequestError:
        raise
    except Exception as exc:
        raise bad("invalid_payload", f"malformed multipart body: {exc}") from None
    finally:
        sink.close()
        if not done:
            target.unlink(missing_ok=True)
    if sink.handle is None:
        raise bad("invalid_payload", "the form has no part named 'file'")
    for name in sorted(sink.fields):
        sink.digest.update(f"\0{name}={sink.fields[name]}".encode())
    return Upload(target, sink.filename, sink.size, sink.fields, sink.digest.hexdigest())
