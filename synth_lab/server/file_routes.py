"""The file routes: uploads (streamed to disk, within the quota, idempotent), reading them
back, and the dataset check that makes an uploaded file ``ready`` or ``failed``.

Small files are checked before the upload is answered; larger ones, and those a restart
found unchecked, in one background thread.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from synth_lab.server.errors import RequestError
from synth_lab.server.limits import over_quota
from synth_lab.server.uploads import receive_upload
from synth_lab.server.web import int_param, json_response

if TYPE_CHECKING:
    from synth_lab.server.app import Api

log = logging.getLogger("synth_lab.server")

INLINE_CHECK_BYTES = 8 << 20
MAX_PROBLEMS_KEPT = 100


class FileRoutes:
    """``/api/files`` and ``/api/learning/files``: upload, get, list."""

    def __init__(self, api: Api) -> None:
        self.api, self.store, self.settings = api, api.store, api.settings
        self.files_dir = api.files_dir
        self._checks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="file-check")

    def startup(self) -> None:
        """Drop the uploads a crash cut short; check the files it left unchecked."""
        for part in self.files_dir.glob(".*.part"):
            log.info("removing the partial upload %s", part.name)
            part.unlink(missing_ok=True)
        for file_id in self.store.files_with_status("processing"):
            self._checks.submit(self.check_file, file_id)

    def shutdown(self) -> None:
        self._checks.shutdown(wait=False, cancel_futures=True)

    def check_file(self, file_id: str) -> None:
        """Lint the stored file and record the outcome (the problems, at most a hundred)."""
        from synth_lab.data.validate import lint_file

        path = self.files_dir / f"{file_id}.jsonl"
        try:
            report = lint_file(path)
            problems = [p.to_dict() for p in report.problems[:MAX_PROBLEMS_KEPT]]
            self.store.set_file_checked(file_id, report.ok, report.records, problems)
        except Exception as exc:
            log.exception("checking %s failed", file_id)
            message = f"{type(exc).__name__}: the file could not be read"  # no server paths
            problem = {"line": None, "message": message, "code": "unreadable"}
            self.store.set_file_checked(file_id, False, 0, [problem])

    def _check_storage(self, owner: str, adding: int) -> None:
        """429 when ``adding`` bytes would take ``owner`` past the stored-bytes quota."""
        quota = self.settings.limits.max_stored_bytes
        stored = self.store.usage(owner)["stored_bytes"]
        if quota and stored + adding > quota:
            raise over_quota(
                "max_stored_bytes",
                f"your files would take {stored + adding:,} bytes; the quota is {quota:,}",
                quota,
            )

    async def upload_file(self, request: Request) -> Response:
        owner = self.api.owner(request)
        key = request.headers.get("idempotency-key")
        seen = bool(key) and self.store.idempotent_ref(owner, "file", key or "") is not None
        if not seen:  # a replay is read to compare it, and stores nothing
            declared = request.headers.get("content-length", "")
            await run_in_threadpool(
                self._check_storage, owner, int(declared) if declared.isdigit() else 0
            )
        file_id = f"file_{uuid.uuid4().hex[:24]}"
        part = self.files_dir / f".{file_id}.part"
        upload = await receive_upload(request, part, self.settings.max_upload_bytes)
        try:
            _, replay = self.api.replay(request, owner, "file", self.store.file, upload.sha256)
            if replay is None:
                await run_in_threadpool(self._check_storage, owner, upload.size)
        except RequestError:
            part.unlink(missing_ok=True)
            raise
        if replay is not None:
            part.unlink(missing_ok=True)
            return replay
        final = self.files_dir / f"{file_id}.jsonl"
        part.replace(final)
        purpose = upload.fields.get("purpose") or "fine-tune"
        stored = await run_in_threadpool(
            self.store.add_file,
            file_id,
            owner,
            upload.filename,
            purpose,
            upload.size,
            key,
            upload.sha256,
        )
        if stored != file_id:  # a concurrent retry with the same key won
            final.unlink(missing_ok=True)
            assert key is not None
            self.api.same_body(owner, "file", key, upload.sha256)
            return json_response(self.store.file(stored, owner), 200)
        if upload.size <= INLINE_CHECK_BYTES:
            await run_in_threadpool(self.check_file, file_id)
        else:
            self._checks.submit(self.check_file, file_id)
        return json_response(self.store.file(file_id, owner), 201)

    async def get_file(self, request: Request) -> Response:
        owner = self.api.owner(request)
        doc = self.store.file(request.path_params["file_id"], owner)
        if doc is None:
            raise RequestError(404, "file_not_found", "file not found")
        return json_response(doc)

    async def list_files(self, request: Request) -> Response:
        owner = self.api.owner(request)
        limit = int_param(request, "limit", 100, 1, 1000)
        return json_response({"files": self.store.files(owner, limit)})
