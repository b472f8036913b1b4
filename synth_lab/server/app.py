"""The learning API server (Starlette): the hosted service's routes, run on this machine.

Routes follow ``docs/contract/learning-api.md``: files under both ``/api/files`` and
``/api/learning/files``, jobs under ``/api/learning/jobs``. Every route but ``/health`` needs a
bearer key; a key sees only its own files and jobs (others' are 404). Errors are
``{"detail": {"code", "message", ...}, "code", "message"}`` with status
400/401/404/409/413/422/429. Answers name files and jobs by id and folders relative to the job;
tracebacks and server paths stay in the server's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from synth_lab.job.jobspec import available_gpus, plan_job
from synth_lab.server.errors import RequestError
from synth_lab.server.limits import Limits, over_quota
from synth_lab.server.models import ModelCatalog
from synth_lab.server.scheduler import Scheduler
from synth_lab.server.store import TERMINAL, Store
from synth_lab.server.tenancy import Tenants, private_dir
from synth_lab.server.uploads import receive_upload
from synth_lab.server.web import (
    StripTrailingSlash,
    http_error,
    int_param,
    json_response,
    read_json,
    request_error,
    server_error,
)
from synth_lab.server.worker import DB_NAME, DEFAULT_RUNNER
from synth_lab.status import Status

log = logging.getLogger("synth_lab.server")

FILE_PREFIXES = ("/api/files", "/api/learning/files")
JOBS = "/api/learning/jobs"
INLINE_CHECK_BYTES = 8 << 20
MAX_PROBLEMS_KEPT = 100
SSE_POLL_SECONDS = 0.5
SSE_HEARTBEAT_SECONDS = 15.0


@dataclass
class ServerSettings:
    """How the server runs.

    Attributes:
        data_dir: Where the database, uploaded files and job outputs live.
        api_keys: Accepted keys, each mapped to its owner (keys of one owner share data), or to
            ``None`` for an owner id derived from the key.
        model_map: Requested model id -> local model id or path.
        allowed_models: Model ids tenants may use as they are (``--allow-model``).
        models_dir: Folder whose model subfolders tenants may use by name (``--models-dir``).
        limits: Job limits and tenant quotas.
        accept_any_compute: Run jobs asking for more GPUs than exist on what there is.
        max_upload_bytes: Largest accepted upload.
        gpus: GPUs to schedule on (default: detected).
        runner: ``module:function`` the workers train with.
        run_jobs: Start the scheduler (false: jobs are accepted but never run).
    """

    data_dir: Path
    api_keys: Mapping[str, str | None]
    model_map: Mapping[str, str] = field(default_factory=dict)
    allowed_models: Sequence[str] = ()
    models_dir: Path | None = None
    limits: Limits = field(default_factory=Limits)
    accept_any_compute: bool = False
    max_upload_bytes: int = 4 << 30
    gpus: int | None = None
    runner: str = DEFAULT_RUNNER
    run_jobs: bool = True


class Api:
    """The route handlers, sharing the store, the scheduler and the settings."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.data_dir = private_dir(Path(settings.data_dir))
        self.files_dir = private_dir(self.data_dir / "files")
        private_dir(self.data_dir / "jobs")
        self.store = Store(self.data_dir / DB_NAME)
        self.tenants = Tenants(settings.api_keys, self.data_dir, self.store)
        self.models = ModelCatalog(
            settings.model_map, tuple(settings.allowed_models), settings.models_dir
        )
        self.gpus = available_gpus() if settings.gpus is None else settings.gpus
        self.scheduler = Scheduler(
            self.store,
            self.data_dir,
            self.gpus,
            settings.runner,
            limits=settings.limits,
            private_values=self.tenants.keys,
        )
        self._checks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="file-check")
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------

    def startup(self) -> None:
        for part in self.files_dir.glob(".*.part"):  # uploads a crash cut short
            log.info("removing the partial upload %s", part.name)
            part.unlink(missing_ok=True)
        for file_id in self.store.files_with_status("processing"):
            self._checks.submit(self._check_file, file_id)
        if self.settings.run_jobs:
            self.scheduler.start()

    def shutdown(self) -> None:
        if self.settings.run_jobs:
            self.scheduler.stop()
        self._checks.shutdown(wait=False, cancel_futures=True)

    # -- helpers --------------------------------------------------------------------------------

    def owner(self, request: Request) -> str:
        return self.tenants.owner(request.headers.get("authorization", ""))

    def _finetuned(self, model: str, owner: str) -> str | None:
        """The output folder of the caller's succeeded job with this ``fine_tuned_model`` id."""
        row = self.store.job_row(model.rsplit(":", 1)[-1], owner)
        if row is None or row["status"] != Status.SUCCEEDED or not row["result"]:
            return None
        result = orjson.loads(row["result"])
        if result.get("fine_tuned_model") != model or not result.get("final_dir"):
            return None
        job_dir = (self.data_dir / "jobs" / row["id"]).resolve()
        final = (job_dir / result["final_dir"]).resolve()
        return str(final) if final.is_relative_to(job_dir) and final.is_dir() else None

    def job_or_404(self, request: Request) -> tuple[str, str]:
        owner = self.owner(request)
        job_id = request.path_params["job_id"]
        if self.store.job_row(job_id, owner) is None:
            raise RequestError(404, "job_not_found", f"job {job_id} not found")
        return owner, job_id

    def _check_file(self, file_id: str) -> None:
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

    def _replay(
        self, request: Request, owner: str, kind: str, lookup: Any, body_hash: str | None = None
    ) -> tuple[str | None, Response | None]:
        """The request's ``Idempotency-Key`` and, when it was seen before, the first answer.

        Raises:
            RequestError: 422 when the key was first used with another body.
        """
        key = request.headers.get("idempotency-key")
        known = self.store.idempotent_ref(owner, kind, key) if key else None
        if known is None:
            return key, None
        assert key is not None
        self._same_body(owner, kind, key, body_hash)
        return key, json_response(lookup(known, owner), 200)

    def _same_body(self, owner: str, kind: str, key: str, body_hash: str | None) -> None:
        first = self.store.idempotent_hash(owner, kind, key)
        if body_hash is not None and first is not None and first != body_hash:
            raise RequestError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was first used with a different request body",
                hint="use a new Idempotency-Key for a different request",
            )

    def _check_storage(self, owner: str, adding: int) -> None:
        quota = self.settings.limits.max_stored_bytes
        stored = self.store.usage(owner)["stored_bytes"]
        if quota and stored + adding > quota:
            raise over_quota(
                "max_stored_bytes",
                f"your files would take {stored + adding:,} bytes; the quota is {quota:,}",
                quota,
            )

    # -- files ----------------------------------------------------------------------------------

    async def upload_file(self, request: Request) -> Response:
        owner = self.owner(request)
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
            _, replay = self._replay(request, owner, "file", self.store.file, upload.sha256)
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
            self._same_body(owner, "file", key, upload.sha256)
            return json_response(self.store.file(stored, owner), 200)
        if upload.size <= INLINE_CHECK_BYTES:
            await run_in_threadpool(self._check_file, file_id)
        else:
            self._checks.submit(self._check_file, file_id)
        return json_response(self.store.file(file_id, owner), 201)

    async def get_file(self, request: Request) -> Response:
        owner = self.owner(request)
        doc = self.store.file(request.path_params["file_id"], owner)
        if doc is None:
            raise RequestError(404, "file_not_found", "file not found")
        return json_response(doc)

    async def list_files(self, request: Request) -> Response:
        owner = self.owner(request)
        limit = int_param(request, "limit", 100, 1, 1000)
        return json_response({"files": self.store.files(owner, limit)})

    # -- jobs -----------------------------------------------------------------------------------

    async def create_job(self, request: Request) -> Response:
        owner = self.owner(request)
        payload = await read_json(request)
        body_hash = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
        key, replay = self._replay(request, owner, "job", self.store.job, body_hash)
        if replay is not None:
            return replay
        plan = plan_job(
            payload,
            model_map=self.settings.model_map,
            gpus_available=self.gpus,
            accept_any_compute=self.settings.accept_any_compute,
            file_status=lambda fid: self.store.file(fid, owner),
            resolve_model=lambda model: self.models.resolve(
                model, lambda ft: self._finetuned(ft, owner)
            ),
            limits=self.settings.limits,
        )
        queued_quota = self.settings.limits.max_queued_jobs
        if queued_quota and self.store.usage(owner)["queued"] >= queued_quota:
            raise over_quota(
                "max_queued_jobs",
                f"you have {queued_quota} jobs waiting, this server's quota; "
                "start, cancel or wait for some",
                queued_quota,
            )
        job_id = f"job_{uuid.uuid4().hex[:24]}"
        job_dir = self.data_dir / "jobs" / job_id
        spec = {
            "config": plan.config,
            "train_path": str(self.files_dir / f"{plan.training_file_id}.jsonl"),
            "val_path": str(self.files_dir / f"{plan.validation_file_id}.jsonl")
            if plan.validation_file_id
            else None,
            "output_dir": str(job_dir / "output"),
            "local_model": plan.local_model,
            "max_steps": plan.budget.max_steps,
            "suffix": plan.suffix,
        }
        stored, created = await run_in_threadpool(
            self.store.add_job, job_id, owner, plan.model, payload, spec, plan.gpus, key, body_hash
        )
        if not created:  # a concurrent request with the same key won
            assert key is not None
            self._same_body(owner, "job", key, body_hash)
            return json_response(self.store.job(stored, owner), 200)
        self.store.add_event(job_id, "sft.created", "job created", {"model": plan.model})
        for note in plan.notes:
            message = (
                f"{note['requested_gpus']} × {note['requested_gpu_type']} requested; running on "
                f"{note['used_gpus'] or 'the CPU'}" + (" GPU(s)" if note["used_gpus"] else "")
            )
            self.store.add_event(job_id, "sft.compute.adjusted", message, note, level="warning")
        for warning in plan.warnings:
            self.store.add_event(
                job_id, "sft.request.ignored", warning["message"], warning, level="warning"
            )
        return json_response(self.store.job(job_id, owner), 201)

    async def list_jobs(self, request: Request) -> Response:
        owner = self.owner(request)
        status = request.query_params.get("status") or None
        limit = int_param(request, "limit", 20, 1, 1000)
        return json_response({"jobs": self.store.jobs(owner, status, limit)})

    async def get_job(self, request: Request) -> Response:
        owner, job_id = self.job_or_404(request)
        return json_response(self.store.job(job_id, owner))

    async def start_job(self, request: Request) -> Response:
        owner, job_id = self.job_or_404(request)
        row = self.store.job_row(job_id)
        if row is not None and row["status"] in TERMINAL and not row["started"]:
            raise RequestError(409, "job_finished", f"job {job_id} is {row['status']}")
        if await run_in_threadpool(self.store.mark_started, job_id):
            self.scheduler.wake()
        return json_response(self.store.job(job_id, owner))

    async def cancel_job(self, request: Request) -> Response:
        owner, job_id = self.job_or_404(request)
        await run_in_threadpool(self.scheduler.cancel, job_id)
        return json_response(self.store.job(job_id, owner))

    async def events(self, request: Request) -> Response:
        _, job_id = self.job_or_404(request)
        since = int_param(request, "since_seq", 0, 0, None)
        if "text/event-stream" in request.headers.get("accept", ""):
            return StreamingResponse(
                self._sse(request, job_id, since),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        limit = int_param(request, "limit", 200, 1, 1000)
        return json_response({"events": self.store.events(job_id, since, limit)})

    async def _sse(self, request: Request, job_id: str, since: int) -> AsyncIterator[bytes]:
        idle = 0.0
        while True:
            batch = self.store.events(job_id, since, 200)
            for event in batch:
                since = event["seq"]
                yield b"id: %d\ndata: %s\n\n" % (since, orjson.dumps(event))
            if batch:
                idle = 0.0
                continue
            row = self.store.job_row(job_id)
            if row is None or row["status"] in TERMINAL or await request.is_disconnected():
                return
            if idle >= SSE_HEARTBEAT_SECONDS:
                idle = 0.0
                yield b": keep-alive\n\n"
            await asyncio.sleep(SSE_POLL_SECONDS)
            idle += SSE_POLL_SECONDS

    async def metrics(self, request: Request) -> Response:
        _, job_id = self.job_or_404(request)
        after = request.query_params.get("after_step")
        after_step = int_param(request, "after_step", 0, -1, None) if after else None
        limit = int_param(request, "limit", 200, 1, 5000)
        name = request.query_params.get("name") or None
        return json_response({"points": self.store.metrics(job_id, after_step, limit, name)})

    async def timeline(self, request: Request) -> Response:
        _, job_id = self.job_or_404(request)
        return json_response({"events": self.store.timeline(job_id)})

    async def health(self, request: Request) -> Response:
        # Unauthenticated: says that the server is up and nothing about it or its tenants.
        return json_response({"status": "ok"})


def create_app(settings: ServerSettings) -> Starlette:
    """The ASGI app. The scheduler starts and stops with the app's lifespan."""
    api = Api(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(api.startup)
        try:
            yield
        finally:
            await run_in_threadpool(api.shutdown)

    routes = [Route(p, api.health) for p in ("/health", "/api/health")]
    for prefix in FILE_PREFIXES:
        routes += [
            Route(prefix, api.upload_file, methods=["POST"]),
            Route(prefix, api.list_files, methods=["GET"]),
            Route(prefix + "/{file_id}", api.get_file, methods=["GET"]),
        ]
    routes += [
        Route(JOBS, api.create_job, methods=["POST"]),
        Route(JOBS, api.list_jobs, methods=["GET"]),
        Route(JOBS + "/{job_id}", api.get_job, methods=["GET"]),
        Route(JOBS + "/{job_id}/start", api.start_job, methods=["POST"]),
        Route(JOBS + "/{job_id}/cancel", api.cancel_job, methods=["POST"]),
        Route(JOBS + "/{job_id}/events", api.events, methods=["GET"]),
        Route(JOBS + "/{job_id}/metrics", api.metrics, methods=["GET"]),
        Route(JOBS + "/{job_id}/timeline", api.timeline, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            RequestError: request_error,
            HTTPException: http_error,
            Exception: server_error,
        },
    )
    app.state.api = api
    # A trailing slash is served as without one: no redirect, which would echo the Host header.
    app.router.redirect_slashes = False
    app.add_middleware(StripTrailingSlash)
    return app
