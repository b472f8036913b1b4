"""``synth-lab train`` without ``--dry-run``: submit the job to the learning API and watch it.

Progress goes to stderr; with ``--json`` stdout holds one object at the end, in the shape a
local run's has (:mod:`synth_lab.results`), then ``job_id``, ``backend`` and
``fine_tuned_model``. Exit codes: 0 the job
succeeded (or was submitted with ``--no-poll``), 1 it failed or was cancelled, 2 the dry run
found errors (nothing was sent), 130 watching was interrupted (the job keeps running).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from synth_lab.errors import SynthLabError


def run_remote(args: argparse.Namespace) -> int:
    """Submit (or ``--attach`` to) a remote job; returns the exit code.

    Reads ``config``/``config_pos``, ``dataset``, ``examples``, ``backend``, ``json`` and, when
    present, ``poll`` (false: do not watch), ``poll_timeout``, ``poll_interval``, ``attach``.
    """
    from synth_lab.cli import EXIT_FAILED, EXIT_OK
    from synth_lab.client import attach, submit

    as_json = bool(getattr(args, "json", False))
    watch = getattr(args, "poll", True) is not False
    timeout = getattr(args, "poll_timeout", None) or 3600.0
    interval = getattr(args, "poll_interval", None)
    live = False if as_json else None
    job_id = getattr(args, "attach", None)
    if job_id:
        job = attach(job_id, backend=args.backend)
        print(f"attached to job {job.id} ({job.status}) at {job.client.base_url}", file=sys.stderr)
    else:
        config = getattr(args, "config", None) or getattr(args, "config_pos", None)
        if not config:
            raise SynthLabError("no config given", hint="synth-lab train --config sft.toml ...")
        job = submit(
            config,
            getattr(args, "dataset", None),
            examples=getattr(args, "examples", None),
            backend=args.backend,
            wait=False,
        )
        print(f"submitted job {job.id} to {job.client.base_url}", file=sys.stderr, flush=True)
    if watch and not job.done:
        job.wait(timeout, poll_interval=interval, live=live)
    if as_json:
        from synth_lab.cli.output import print_json

        print_json(_summary(job))
    if job.interrupted:
        return 130
    if job.failed:
        print(f"error: job {job.id} failed: {job.failure_reason()}", file=sys.stderr)
        return EXIT_FAILED
    if job.cancelled:
        print(f"job {job.id} was cancelled", file=sys.stderr)
        return EXIT_FAILED
    if watch and job.succeeded:
        model = job.doc.get("fine_tuned_model") or ""
        print(f"job {job.id} succeeded {model}".rstrip(), file=sys.stderr)
    return EXIT_OK


def _summary(job: Any) -> dict[str, Any]:
    from synth_lab.results import result_dict

    steps = max((int(p["step"]) for p in job.points), default=0)
    model = job.doc.get("fine_tuned_model") or job.doc.get("model_id")
    return result_dict(
        status=job.status,
        steps=steps,
        points=job.points,
        model=model,
        total_steps=_total_steps(job),
        seconds=_seconds(job.doc),
        error=job.failure_reason() if job.failed else None,
        job_id=job.id,
        backend=job.client.base_url,
        fine_tuned_model=model,
    )


def _total_steps(job: Any) -> int | None:
    """The planned steps, from the newest event that says (``sft.training.started`` ...)."""
    totals = [(e.get("data") or {}).get("total_steps") for e in job.all_events]
    found = [int(t) for t in totals if isinstance(t, int) and not isinstance(t, bool)]
    return found[-1] if found else None


def _seconds(doc: dict[str, Any]) -> float | None:
    """Wall time from the job's creation to its end (``finished_at``, else ``updated_at``)."""
    from datetime import datetime

    def stamp(value: Any) -> float | None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
        return None

    began, ended = (
        stamp(doc.get("created_at")),
        stamp(doc.get("finished_at") or doc.get("updated_at")),
    )
    return ended - began if began is not None and ended is not None and ended >= began else None


def add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``run_remote`` reads beyond those ``train`` already has (for wiring)."""
    parser.add_argument(
        "--no-poll", dest="poll", action="store_false", help="submit and return; do not watch"
    )
    parser.add_argument(
        "--poll-timeout", type=float, default=3600.0, help="seconds to watch at most (3600)"
    )
    parser.add_argument("--poll-interval", type=float, help="seconds between polls")
    parser.add_argument("--attach", metavar="JOB_ID", help="watch an existing job instead")
