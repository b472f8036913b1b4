"""The learning API server (Starlette): the hosted service's routes, run on this machine.

Routes follow ``docs/contract/learning-api.md``: files under both ``/api/files`` and
``/api/learning/files``, jobs under ``/api/learning/jobs``. Every route but ``/health`` needs a
bearer key; a key sees only its own files and jobs (others' are 404). Errors are
``{"detail": {"code", "message", ...}, "code", "message"}`` with status
400/401/404/409/413/422/429. Answers name files and jobs by id and folders relative to the job;
tracebacks and server paths stay in the server's log.

This module holds the settings, what the routes share and the route table; the handlers are in
:mod:`~synth_lab.server.file_routes` and :mod:`~synth_lab.server.job_routes`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from synth_lab.job.jobspec import available_gpus
from synth_lab.server.errors import RequestError
from synth_lab.server.file_routes import FileRoutes
from synth_lab.server.job_routes import JobRoutes
from synth_lab.server.limits import Limits
from synth_lab.server.models import ModelCatalog
from synth_lab.server.scheduler import Scheduler
from synth_lab.server.store import Store
from synth_lab.server.tenancy import Tenants, private_dir
from synth_lab.server.web import (
    StripTrailingSlash,
    http_error,
    json_response,
    request_error,
    server_error,
)
from synth_lab.server.worker import DB_NAME, DEFAULT_RUNNER

FILE_PREFIXES = ("/api/files", "/api/learning/files")
JOBS = "/api/learning/jobs"


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
    """What the routes share (the store, the tenants, the models, the scheduler, the settings),
    with the file routes in :attr:`files` and the job routes in :attr:`jobs`."""

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
        self.files = FileRoutes(self)
        self.jobs = JobRoutes(self)

    # -- lifecycle ------------------------------------------------------------------------------

    def startup(self) -> None:
        self.files.startup()
        if self.settings.run_jobs:
            self.scheduler.start()

    def shutdown(self) -> None:
        if self.settings.run_jobs:
            self.scheduler.stop()
        self.files.shutdown()

    # -- shared by the routes ----------------------------------------------------------------------

    def owner(self, request: Request) -> str:
        """The owner of the request's bearer key (401 without a valid one)."""
        return self.tenants.owner(request.headers.get("authorization", ""))

    def replay(
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
        self.same_body(owner, kind, key, body_hash)
        return key, json_response(lookup(known, owner), 200)

    def same_body(self, owner: str, kind: str, key: str, body_hash: str | None) -> None:
        """422 when ``key`` was first used with a request whose hash is not ``body_hash``."""
        first = self.store.idempotent_hash(owner, kind, key)
        if body_hash is not None and first is not None and first != body_hash:
            raise RequestError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was first used with a different request body",
                hint="use a new Idempotency-Key for a different request",
            )

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
            Route(prefix, api.files.upload_file, methods=["POST"]),
            Route(prefix, api.files.list_files, methods=["GET"]),
            Route(prefix + "/{file_id}", api.files.get_file, methods=["GET"]),
        ]
    routes += [
        Route(JOBS, api.jobs.create_job, methods=["POST"]),
        Route(JOBS, api.jobs.list_jobs, methods=["GET"]),
        Route(JOBS + "/{job_id}", api.jobs.get_job, methods=["GET"]),
        Route(JOBS + "/{job_id}/start", api.jobs.start_job, methods=["POST"]),
        Route(JOBS + "/{job_id}/cancel", api.jobs.cancel_job, methods=["POST"]),
        Route(JOBS + "/{job_id}/events", api.jobs.events, methods=["GET"]),
        Route(JOBS + "/{job_id}/metrics", api.jobs.metrics, methods=["GET"]),
        Route(JOBS + "/{job_id}/timeline", api.jobs.timeline, methods=["GET"]),
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
