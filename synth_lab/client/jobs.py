"""``client.jobs``: create, start, read, list and cancel jobs; read their events and metrics.

:class:`JobFeed` keeps the cursors of one job: events de-duplicated by ``seq``, metric points by
``(name, step)`` with a cursor per metric name, and the fallback to ``sft.progress`` events for
servers that publish no metric points.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson

from synth_lab.client._base import BaseClient
from synth_lab.client.errors import APIResponseValidationError
from synth_lab.metrics import TRAIN_LOSS
from synth_lab.status import Status

TERMINAL_EVENTS = frozenset(
    {
        "sft.job.completed",
        "training.completed",
        "workflow.completed",
        "sft.job.failed",
        "training.failed",
        "workflow.failed",
        "sft.job.cancelled",
    }
)

SHOWN_EVENTS = frozenset(
    {
        "sft.progress",
        "sft.loss",
        "sft.training.started",
        "sft.training.finish",
        "sft.validation.summary",
        "sft.job.completed",
        "sft.job.failed",
        "sft.job.cancelled",
        "sft.job.resumed",
        "sft.compute.adjusted",
        "sft.request.ignored",
    }
)
"""Event types worth showing; the others (``sft.created``, ``hatchet.*`` ...) are noise."""

PAGE = 200
MAX_PAGES = 1000


def job_id_of(doc: dict[str, Any]) -> str:
    """The id of a job document: ``job_id``, else ``id``."""
    return str(doc.get("job_id") or doc.get("id") or "")


def job_status(doc: dict[str, Any]) -> Status:
    """The status of a job document (``status``, else ``state``) in the shared vocabulary.

    This is where the API's words (``succeeded``, ``canceled``, ``error`` ...) become
    :class:`~synth_lab.status.Status`; a document without one is :attr:`Status.QUEUED`.
    """
    word = doc.get("status") or doc.get("state")
    return Status.parse(word) if word else Status.QUEUED


class Jobs:
    """The jobs resource (``client.jobs``)."""

    def __init__(self, client: BaseClient) -> None:
        self._client = client

    def create(
        self,
        payload: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        form: str = "cli",
        total_steps: int | None = None,
        suffix: str | None = None,
        integrations: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``POST /learning/jobs``: create (not start) a job.

        One ``Idempotency-Key`` covers the call and its retries, so a create that reached the
        server before the connection broke returns the same job instead of a second one.

        Args:
            payload: A payload as :func:`synth_lab.job.payload.build_payload` makes it.
            idempotency_key: The key (a new UUID by default).
            form: ``"cli"`` sends ``payload`` as synth-ai's CLI does; ``"sdk"`` rewrites it as
                synth-ai's Python SDK sends it (top-level ``validation_file`` ...).
            total_steps: ``form="sdk"``: an exact optimizer-step budget (over ``n_epochs``).
            suffix: ``form="sdk"``: a name part for the finetuned model.
            integrations: ``form="sdk"``: integrations to request, by name.

        Raises:
            ConfigError: SDK-only options with ``form="cli"``, or an unknown form.
        """
        from synth_lab.job.payload import request_form_payload

        body = request_form_payload(
            payload, form, total_steps=total_steps, suffix=suffix, integrations=integrations
        )
        key = idempotency_key or str(uuid.uuid4())
        doc = self._client.post_json("/learning/jobs", body, headers={"Idempotency-Key": key})
        if not isinstance(doc, dict) or not job_id_of(doc):
            raise APIResponseValidationError(
                f"POST {self._client.base_url}/learning/jobs answered without a job id: "
                f"{self._client.redact(str(doc))[:200]!r}",
                status_code=200,
                body=self._client.redact(str(doc))[:200],
                method="POST",
                url=f"{self._client.base_url}/learning/jobs",
            )
        return doc

    def start(self, job_id: str) -> dict[str, Any]:
        """``POST /learning/jobs/{id}/start``; the answer is the job document (or empty)."""
        return self._client.post_json(f"/learning/jobs/{job_id}/start", {}, allow_empty=True)

    def retrieve(self, job_id: str) -> dict[str, Any]:
        """``GET /learning/jobs/{id}``: the job document."""
        return self._client.get_json(f"/learning/jobs/{job_id}")

    def list(self, *, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """``GET /learning/jobs``: this key's jobs, newest first."""
        doc = self._client.get_json("/learning/jobs", params={"status": status, "limit": limit})
        return list(doc.get("jobs", [])) if isinstance(doc, dict) else list(doc or [])

    def cancel(self, job_id: str) -> dict[str, Any]:
        """``POST /learning/jobs/{id}/cancel``: stop the job; the answer is the job document."""
        return self._client.post_json(f"/learning/jobs/{job_id}/cancel", allow_empty=True)

    def events(self, job_id: str, *, since_seq: int = 0, limit: int = PAGE) -> list[dict[str, Any]]:
        """Events with ``seq > since_seq``, oldest first."""
        doc = self._client.get_json(
            f"/learning/jobs/{job_id}/events", params={"since_seq": since_seq, "limit": limit}
        )
        return list(doc.get("events", [])) if isinstance(doc, dict) else []

    def stream_events(self, job_id: str, *, since_seq: int = 0) -> Iterator[dict[str, Any]]:
        """Events as server-sent events, until the server closes the stream.

        Raises:
            APIResponseValidationError: A ``data:`` line that is not a JSON object.
        """
        path = f"/learning/jobs/{job_id}/events"
        with self._client.stream_lines(path, params={"since_seq": since_seq}) as lines:
            for line in lines:
                if line.startswith("data:"):
                    yield self._event(line, path)

    def _event(self, line: str, path: str) -> dict[str, Any]:
        try:
            event = orjson.loads(line[5:].strip())
        except orjson.JSONDecodeError:
            event = None
        if isinstance(event, dict):
            return event
        url = f"{self._client.base_url}{path}"
        body = self._client.redact(line)[:200]
        raise APIResponseValidationError(
            f"GET {url} sent a malformed event line: {body!r}",
            status_code=200,
            body=body,
            method="GET",
            url=url,
        )

    def metrics(
        self,
        job_id: str,
        *,
        after_step: int | None = None,
        limit: int | None = PAGE,
        name: str | None = None,
    ) -> list[dict[str, Any]]:
        """Metric points with ``step > after_step`` (all when ``None``), by step."""
        params = {"after_step": after_step, "limit": limit, "name": name}
        doc = self._client.get_json(f"/learning/jobs/{job_id}/metrics", params=params)
        return list(doc.get("points", [])) if isinstance(doc, dict) else []

    def timeline(self, job_id: str) -> list[dict[str, Any]]:
        """``GET /learning/jobs/{id}/timeline``: phases with their times."""
        doc = self._client.get_json(f"/learning/jobs/{job_id}/timeline")
        return list(doc.get("events", [])) if isinstance(doc, dict) else []


class JobFeed:
    """Incremental reader of one job's events and metric points.

    Call :meth:`poll` repeatedly; it returns only what is new. ``events`` and ``points`` hold
    everything read so far, in order, without duplicates.
    """

    def __init__(self, jobs: Jobs, job_id: str) -> None:
        self._jobs = jobs
        self.job_id = job_id
        self.events: list[dict[str, Any]] = []
        self._seqs: set[int] = set()
        self.last_seq = 0
        self._points: dict[tuple[str, int], dict[str, Any]] = {}
        self.cursors: dict[str, int] = {}
        """Last step read, per metric name."""
        self.server_points = False

    @property
    def points(self) -> list[dict[str, Any]]:
        """Metric points by step; from ``sft.progress`` events when the server has none."""
        if self.server_points:
            return sorted(self._points.values(), key=lambda p: (p["step"], p["name"]))
        return progress_points(self.events)

    def poll(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Read new events and points; returns ``(new_events, new_points)``.

        Until the server has published a metric point, new points are derived from new
        ``sft.progress`` events.
        """
        events = self.poll_events()
        points = self.poll_metrics()
        if not self.server_points:
            points = progress_points(events)
        return events, points

    def poll_events(self) -> list[dict[str, Any]]:
        """Read the events after the last ``seq`` seen (all pages)."""
        new: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self._jobs.events(self.job_id, since_seq=self.last_seq, limit=PAGE)
            for event in page:
                seq = int(event.get("seq", 0))
                if seq in self._seqs:
                    continue
                self._seqs.add(seq)
                self.last_seq = max(self.last_seq, seq)
                new.append(event)
            if len(page) < PAGE or self.last_seq == 0:
                break
        self.events.extend(new)
        return new

    def poll_metrics(self) -> list[dict[str, Any]]:
        """Read the metric points not seen yet (all pages)."""
        # Re-read the lowest cursor's step itself: a point of another name may have been
        # written for that step after the last read.
        after = min(self.cursors.values()) - 1 if self.cursors else None
        new: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self._jobs.metrics(self.job_id, after_step=after, limit=PAGE)
            for point in page:
                key = (str(point.get("name")), int(point.get("step", 0)))
                if key in self._points:
                    continue
                self._points[key] = point
                self.cursors[key[0]] = max(self.cursors.get(key[0], key[1]), key[1])
                new.append(point)
            if len(page) < PAGE:
                break
            last = max(int(p.get("step", 0)) for p in page)
            # Re-read the page's last step unless that would not move the cursor at all.
            after = last - 1 if after is None or last - 1 > after else last
        if new:
            self.server_points = True
        return new


def progress_points(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``train.loss`` points from ``sft.progress`` events (``data.loss`` at ``data.step``)."""
    seen: dict[int, dict[str, Any]] = {}
    for event in events:
        if event.get("type") != "sft.progress":
            continue
        data = event.get("data") or {}
        if data.get("loss") is None or data.get("step") is None:
            continue
        seen[int(data["step"])] = {
            "name": TRAIN_LOSS,
            "value": float(data["loss"]),
            "step": int(data["step"]),
            "epoch": data.get("epoch"),
            "phase": "train",
            "created_at": event.get("created_at"),
        }
    return [seen[s] for s in sorted(seen)]
