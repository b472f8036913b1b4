"""The job routes: create (validated into a training plan, within the quota, idempotent),
list, get, start, cancel, and a job's events (JSON pages or a server-sent-event stream),
metric points and timeline. A job is visible only to the key's owner (others get 404).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from synth_lab.job.jobspec import plan_job
from synth_lab.server.errors import RequestError
from synth_lab.server.limits import over_quota
from synth_lab.server.store import TERMINAL
from synth_lab.server.web import int_param, json_response, read_json
from synth_lab.status import Status

if TYPE_CHECKING:
    from synth_lab.server.app import Api

SSE_POLL_SECONDS = 0.5
SSE_HEARTBEAT_SECONDS = 15.0


class JobRoutes:
    """``/api/learning/jobs`` and what is under a job."""

    def __init__(self, api: Api) -> None:
        self.api, self.store, self.settings = api, api.store, api.settings

    def job_or_404(self, request: Request) -> tuple[str, str]:
        owner = self.api.owner(request)
        job_id = request.path_params["job_id"]
        if self.store.job_row(job_id, owner) is None:
            raise RequestError(404, "job_not_found", f"job {job_id} not found")
        return owner, job_id

    async def create_job(self, request: Request) -> Response:
        owner = self.api.owner(request)
        payload = await read_json(request)
        body_hash = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
        key, replay = self.api.replay(request, owner, "job", self.store.job, body_hash)
        if replay is not None:
            return replay
        plan = plan_job(
            payload,
            model_map=self.settings.model_map,
            gpus_available=self.api.gpus,
            accept_any_compute=self.settings.accept_any_compute,
            file_status=lambda fid: self.store.file(fid, owner),
            resolve_model=lambda model: self.api.models.resolve(
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
        job_dir = self.api.data_dir / "jobs" / job_id
        spec = {
            "config": plan.config,
            "train_path": str(self.api.files_dir / f"{plan.training_file_id}.jsonl"),
            "val_path": str(self.api.files_dir / f"{plan.validation_file_id}.jsonl")
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
            self.api.same_body(owner, "job", key, body_hash)
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
        owner = self.api.owner(request)
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
            self.api.scheduler.wake()
        return json_response(self.store.job(job_id, owner))

    async def cancel_job(self, request: Request) -> Response:
        owner, job_id = self.job_or_404(request)
        await run_in_threadpool(self.api.scheduler.cancel, job_id)
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

    def _finetuned(self, model: str, owner: str) -> str | None:
        """The output folder of the caller's succeeded job with this ``fine_tuned_model`` id."""
        row = self.store.job_row(model.rsplit(":", 1)[-1], owner)
        if row is None or row["status"] != Status.SUCCEEDED or not row["result"]:
            return None
        result = orjson.loads(row["result"])
        if result.get("fine_tuned_model") != model or not result.get("final_dir"):
            return None
        job_dir = (self.api.data_dir / "jobs" / row["id"]).resolve()
        final = (job_dir / result["final_dir"]).resolve()
        return str(final) if final.is_relative_to(job_dir) and final.is_dir() else None
