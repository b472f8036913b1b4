"""Submit an SFT job to the learning API and watch it: :func:`submit`, :func:`attach`.

``submit`` runs the dry run first and sends nothing when it finds an error; then it uploads
the training file (then the validation file), creates the job with an ``Idempotency-Key``,
starts it and (by default) watches it with the same live view as local training. Interrupting
the watch (Ctrl-C, the notebook's stop button) stops watching, never the job.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from typing import Any

from synth_lab._html import escape, no_math
from synth_lab.client._client import SynthClient
from synth_lab.client.errors import (
    APIConnectionError,
    JobFailedError,
    PollTimeoutError,
    RateLimitError,
    ServerError,
)
from synth_lab.client.jobs import (
    TERMINAL_EVENTS,
    JobFeed,
    job_id_of,
    job_status,
)
from synth_lab.client.monitor import RemoteMonitor, make_view, visible
from synth_lab.metrics import TRAIN_LOSS, VAL_LOSS
from synth_lab.status import Status

DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_TIMEOUT = 3600.0
MAX_POLL_FAILURES = 30
"""Consecutive failed polls (server down, restarting ...) tolerated while watching."""


class RemoteJob:
    """A job on the learning API, with what has been read of it so far.

    Reading attributes never sends a request; :meth:`refresh` and :meth:`wait` do.

    Attributes:
        id: The job id.
        client: The client it talks through.
        doc: The last job document read.
        interrupted: Watching was interrupted by the user (the job went on).
    """

    def __init__(
        self,
        client: SynthClient,
        job_id: str,
        doc: dict[str, Any] | None = None,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self.client = client
        self.id = job_id
        self.doc: dict[str, Any] = dict(doc or {"id": job_id})
        self.poll_interval = poll_interval
        self.interrupted = False
        self._feed = JobFeed(client.jobs, job_id)

    # -- state ----------------------------------------------------------------------------------

    @property
    def status(self) -> Status:
        """The last status read, in the shared vocabulary (the API's word mapped)."""
        return job_status(self.doc)

    @property
    def done(self) -> bool:
        return self.status.terminal or self._terminal_event() is not None

    @property
    def succeeded(self) -> bool:
        return self.status is Status.SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED

    @property
    def cancelled(self) -> bool:
        return self.status is Status.CANCELLED

    @property
    def all_events(self) -> list[dict[str, Any]]:
        """Every event read, by ``seq``."""
        return list(self._feed.events)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The events worth reading (internal ones such as ``sft.created`` hidden)."""
        return visible(self._feed.events)

    @property
    def points(self) -> list[dict[str, Any]]:
        """Metric points read so far (from ``sft.progress`` events if the server has none)."""
        return self._feed.points

    @property
    def metrics(self) -> Any:
        """The points as a ``pandas.DataFrame`` (name, value, step, epoch, phase, created_at)."""
        from synth_lab.train.metrics import points_frame

        return points_frame(self.points)

    def _last(self, name: str) -> float | None:
        values = [p["value"] for p in self.points if p["name"] == name]
        return float(values[-1]) if values else None

    def _terminal_event(self) -> dict[str, Any] | None:
        return next((e for e in self._feed.events if e.get("type") in TERMINAL_EVENTS), None)

    def failure_reason(self) -> str:
        """Why the job failed, from its document or its failure event."""
        if self.doc.get("error"):
            return str(self.doc["error"])
        event = self._terminal_event()
        return str(event.get("message")) if event else str(self.status)

    # -- requests -------------------------------------------------------------------------------

    def refresh(self) -> RemoteJob:
        """Read the job document and the new events and points."""
        self.doc = self.client.jobs.retrieve(self.id)
        self._feed.poll()
        return self

    def cancel(self) -> RemoteJob:
        """Cancel the job on the server."""
        doc = self.client.jobs.cancel(self.id)
        if doc:
            self.doc = doc
        return self

    def timeline(self) -> list[dict[str, Any]]:
        """The job's phases with their times."""
        return self.client.jobs.timeline(self.id)

    def wait(
        self,
        timeout: float | None = DEFAULT_TIMEOUT,
        *,
        poll_interval: float | None = None,
        live: bool | None = None,
    ) -> RemoteJob:
        """Watch until the job ends, showing its progress.

        Args:
            timeout: Seconds to watch at most (``None``: no limit).
            poll_interval: Seconds between polls (default: the job's).
            live: ``True`` notebook view, ``False`` silent, ``None`` notebook view in a
                notebook, else a text line on stderr every few seconds.

        Returns:
            The job (check :attr:`status`). A ``KeyboardInterrupt`` stops watching, says how
            to reattach, sets :attr:`interrupted` and returns; the job keeps running.

        Raises:
            PollTimeoutError: ``timeout`` passed first (the job keeps running).
        """
        interval = poll_interval or self.poll_interval
        deadline = None if timeout is None else time.monotonic() + timeout
        monitor = RemoteMonitor(make_view(live), self.id)
        monitor.update(self.doc, self.status, self._feed.events, self._feed.points)
        failures = 0
        try:
            while True:
                try:
                    self.doc = self.client.jobs.retrieve(self.id)
                    events, points = self._feed.poll()
                    failures = 0
                except (APIConnectionError, ServerError, RateLimitError):
                    failures += 1
                    if failures > MAX_POLL_FAILURES:
                        raise
                else:
                    monitor.update(self.doc, self.status, events, points)
                    if self.status.terminal:
                        break
                    if self._terminal_event() is not None:
                        self.doc = self.client.jobs.retrieve(self.id)
                        break
                if deadline is not None and time.monotonic() >= deadline:
                    monitor.finish(self.status)
                    raise PollTimeoutError(self.id, float(timeout or 0), self.status)
                pause = interval if deadline is None else min(interval, deadline - time.monotonic())
                time.sleep(max(0.0, pause))
        except KeyboardInterrupt:
            self.interrupted = True
            monitor.finish(self.status)
            print(
                f"Stopped watching job {self.id}; it keeps running on the server. Reattach with "
                f"synth_lab.attach({self.id!r}) or %sft_train --attach {self.id}; "
                "cancel it with .cancel().",
                file=sys.stderr,
                flush=True,
            )
            return self
        monitor.finish(self.status)
        return self

    def raise_for_status(self) -> RemoteJob:
        """Raise :class:`JobFailedError` if the job failed."""
        if self.failed:
            raise JobFailedError(self, self.failure_reason())
        return self

    # -- display --------------------------------------------------------------------------------

    def plot(self, ax: Any = None) -> Any:
        """Draw train/val loss on ``ax`` (a new figure's when ``None``); returns the axes."""
        from synth_lab.plots import plot_losses

        return plot_losses(self.points, ax=ax, title=f"job {self.id} ({self.status})")

    def _summary(self) -> list[tuple[str, str]]:
        rows = [
            ("job", self.id),
            ("status", str(self.status)),
            ("model", str(self.doc.get("model", ""))),
        ]
        steps = [int(p["step"]) for p in self.points]
        if steps:
            rows.append(("step", str(max(steps))))
        for name in (TRAIN_LOSS, VAL_LOSS):
            value = self._last(name)
            if value is not None:
                rows.append((name, f"{value:.4f}"))
        if self.failed:
            rows.append(("error", self.failure_reason()))
        rows.append(("backend", self.client.base_url))
        return rows

    def __repr__(self) -> str:
        return "RemoteJob(" + ", ".join(f"{k}={v!r}" for k, v in self._summary()[:5]) + ")"

    def _repr_mimebundle_(self, **_: Any) -> dict[str, str]:
        cells = "".join(
            f"<tr><th style='text-align:left'>{escape(k)}</th>"
            f"<td style='text-align:left'>{escape(v)}</td></tr>"
            for k, v in self._summary()
        )
        return {"text/plain": repr(self), "text/html": no_math(f"<table>{cells}</table>")}


def _client(client: SynthClient | None, backend: str | None, api_key: str | None) -> SynthClient:
    return client or SynthClient(api_key=api_key, base_url=backend)


def submit(
    config: Any,
    dataset: str | os.PathLike[str] | None = None,
    *,
    examples: int | None = None,
    validation_dataset: str | os.PathLike[str] | None = None,
    backend: str | None = None,
    api_key: str | None = None,
    client: SynthClient | None = None,
    wait: bool = True,
    timeout: float | None = DEFAULT_TIMEOUT,
    poll_interval: float | None = None,
    live: bool | None = None,
    idempotency_key: str | None = None,
    form: str = "cli",
    total_steps: int | None = None,
    suffix: str | None = None,
    integrations: dict[str, Any] | None = None,
) -> RemoteJob:
    """Validate, upload, create, start, and (by default) watch a remote SFT job.

    Args:
        config: An ``SFTConfig``, a TOML path, or TOML text.
        dataset: Training JSONL (overrides ``[job].data``).
        examples: Upload only the first N training records.
        validation_dataset: Validation JSONL (overrides ``[data].validation_path``).
        backend: The API base URL (default from the environment).
        api_key: The key (default ``SYNTH_API_KEY``).
        client: A client to use instead of making one from ``backend``/``api_key``.
        wait: Watch until the job ends.
        timeout: Seconds to watch at most (the job keeps running past it).
        poll_interval: Seconds between polls (default ``[job].poll_seconds``, else 2).
        live: The view while watching (see :meth:`RemoteJob.wait`).
        idempotency_key: The create request's key (default: a new one); submitting again with
            the same key returns the job created first instead of a second one.
        form: Create the job as synth-ai's CLI does (``"cli"``) or as its Python SDK does
            (``"sdk"``: top-level ``validation_file``, and the three options below).
        total_steps: ``form="sdk"``: an exact optimizer-step budget (over ``n_epochs``).
        suffix: ``form="sdk"``: a name part for the finetuned model.
        integrations: ``form="sdk"``: integrations to request, by name.

    Returns:
        The :class:`RemoteJob`.

    Raises:
        ConfigError: The dry run found errors (nothing was sent).
        APIError: A request failed (a subclass says how).
        JobFailedError: The job ended ``failed`` (``.job`` holds it).
        PollTimeoutError: ``timeout`` passed (the job keeps running).
    """
    from synth_lab.job.dryrun import dry_run
    from synth_lab.job.payload import build_payload

    sdk = {"total_steps": total_steps, "suffix": suffix, "integrations": integrations}
    checked = dry_run(
        config,
        dataset,
        examples=examples,
        validation_dataset=validation_dataset,
        form=form,
        **sdk,
    )
    checked.raise_for_errors()
    cfg = checked.config
    api = _client(client, backend, api_key)
    with ExitStack() as stack:
        train_path = str(checked.training.path)
        if examples is not None:
            from synth_lab.data.examples import first_examples

            train_path = str(stack.enter_context(first_examples(train_path, examples)))
        train_id = str(api.files.upload(train_path)["id"])
    val_id = None
    if checked.validation is not None and checked.validation.path:
        val_id = str(api.files.upload(checked.validation.path)["id"])
    doc = api.jobs.create(
        build_payload(cfg, train_id, val_id), idempotency_key=idempotency_key, form=form, **sdk
    )
    job_id = job_id_of(doc)
    started = api.jobs.start(job_id)
    job = RemoteJob(
        api,
        job_id,
        started or doc,
        poll_interval=poll_interval or cfg.job.poll_seconds or DEFAULT_POLL_INTERVAL,
    )
    if wait:
        job.wait(timeout, live=live)
        if not job.interrupted:
            job.raise_for_status()
    return job


def attach(
    job_id: str,
    *,
    backend: str | None = None,
    api_key: str | None = None,
    client: SynthClient | None = None,
    wait: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    live: bool | None = None,
) -> RemoteJob:
    """A :class:`RemoteJob` for an existing job (read now), optionally watched to its end.

    Raises:
        NotFoundError: No such job for this key.
    """
    api = _client(client, backend, api_key)
    job = RemoteJob(api, job_id, poll_interval=poll_interval).refresh()
    if wait:
        job.wait(timeout, live=live)
    return job
