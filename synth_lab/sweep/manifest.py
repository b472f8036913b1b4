"""The sweep folder's ``manifest.json``: the plan and each run's state, written atomically.

The manifest is rewritten whole (temp file, then rename) at every change of a run's state, so a
kernel killed at any moment leaves the last complete state: the points, which runs finished
(with their result summary), and the remote job id and idempotency key of each submitted run.
A remote run's metric points are copied to ``<folder>/<run name>/metrics.jsonl`` when it ends
(local runs write theirs there as they train), so :func:`load` needs no server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from synth_lab._files import atomic_write_text
from synth_lab.config import SFTConfig
from synth_lab.errors import SynthLabError
from synth_lab.status import Status
from synth_lab.sweep.grid import SweepPoint, grid
from synth_lab.sweep.result import SweepResult, SweepRun

FILENAME = "manifest.json"
FORMAT = 1


class Manifest:
    """The manifest of one sweep folder.

    Args:
        folder: The sweep folder.
        data: The manifest's content (see :meth:`plan`).
    """

    def __init__(self, folder: str | os.PathLike[str], data: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.data = data

    @property
    def path(self) -> Path:
        return self.folder / FILENAME

    @classmethod
    def plan(
        cls,
        folder: Path,
        base: SFTConfig,
        points: list[SweepPoint],
        *,
        remote: bool,
        settings: dict[str, Any],
    ) -> Manifest:
        """A new manifest for ``points`` (every run ``queued``)."""
        data = {
            "format": FORMAT,
            "status": Status.RUNNING,
            "mode": "remote" if remote else "local",
            "base": base.to_toml(),
            "settings": settings,
            "points": [{"name": p.name, "overrides": p.overrides} for p in points],
            "runs": {p.name: {"status": Status.QUEUED} for p in points},
        }
        return cls(folder, data)

    @classmethod
    def read(cls, folder: str | os.PathLike[str]) -> Manifest:
        """The manifest of ``folder``.

        Raises:
            SynthLabError: No manifest there, or one this version cannot read.
        """
        path = Path(folder) / FILENAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SynthLabError(
                f"{path} does not exist: {folder} is not a sweep folder",
                hint="pass the output_dir a sweep was run with",
            ) from None
        except (OSError, ValueError) as exc:
            raise SynthLabError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SynthLabError(
                f"{path} is not a sweep manifest of format {FORMAT}",
                hint="it was written by another version of synth-lab; rerun the sweep",
            )
        return cls(folder, data)

    @staticmethod
    def exists(folder: str | os.PathLike[str]) -> bool:
        return (Path(folder) / FILENAME).is_file()

    def same_plan(self, other: Manifest) -> bool:
        """Whether both manifests plan the same mode, base config and points."""
        keys = ("mode", "base", "points")
        return json.dumps([self.data[k] for k in keys], sort_keys=True) == json.dumps(
            [other.data[k] for k in keys], sort_keys=True
        )

    def entry(self, name: str) -> dict[str, Any]:
        """The recorded state of run ``name``."""
        return self.data["runs"].setdefault(name, {"status": Status.QUEUED})

    def record(self, run: SweepRun, **extra: Any) -> Manifest:
        """Record ``run``'s state (and ``extra`` fields such as ``idempotency_key``)."""
        entry = self.entry(run.name)
        entry.update(
            status=run.status,
            error=run.error,
            seconds=round(run.seconds, 3),
            steps=run.steps,
            job_id=run.job_id,
            stopped_step=run.stopped_step,
            output_dir=os.fspath(run.output_dir) if run.output_dir else None,
        )
        entry.update(extra)
        return self

    def update(self, sweep: SweepResult) -> Manifest:
        """Record every run of ``sweep`` and its status."""
        for run in sweep.runs:
            self.record(run)
        self.data["status"] = sweep.status
        return self

    def save(self) -> Manifest:
        """Write the manifest atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(self.data, indent=1, sort_keys=True) + "\n")
        return self


def save_points(run: SweepRun, folder: Path) -> None:
    """Copy a finished remote run's metric points to ``folder/<run>/metrics.jsonl``."""
    lines = "".join(json.dumps(p, sort_keys=True) + "\n" for p in run.points)
    atomic_write_text(folder / run.name / "metrics.jsonl", lines)


def load(folder: str | os.PathLike[str]) -> SweepResult:
    """The :class:`SweepResult` of a sweep folder, rebuilt from its manifest and metric files
    (after a kernel restart, or to compare an old sweep); no training and no request.

    Raises:
        SynthLabError: ``folder`` holds no readable sweep manifest.
    """
    manifest = Manifest.read(folder)
    return rebuild(manifest)


def rebuild(manifest: Manifest) -> SweepResult:
    """The runs a manifest describes, with their recorded state and metric points."""
    from synth_lab.train.metrics import read_jsonl
    from synth_lab.train.result import TrainResult

    data = manifest.data
    remote = data.get("mode") == "remote"
    base = SFTConfig.from_toml(data["base"])
    points = grid(base, [p["overrides"] for p in data["points"]])
    runs = []
    for point in points:
        entry = manifest.entry(point.name)
        run = SweepRun(point)
        run.status = Status.parse(entry.get("status"), Status.QUEUED)  # "pending" before
        run.error = entry.get("error")
        run.seconds = float(entry.get("seconds") or 0.0)
        run.job_id = entry.get("job_id")
        run.stopped_step = entry.get("stopped_step")
        run.recorded_steps = entry.get("steps")
        if entry.get("output_dir"):
            run.output_dir = Path(entry["output_dir"])
        history = manifest.folder / point.name / "metrics.jsonl"
        if history.is_file():
            run.live_points = [p.to_dict() for p in read_jsonl(history)]
        if not remote and run.status is Status.SUCCEEDED:  # read back, not trained again
            run.result = TrainResult.from_folder(manifest.folder / point.name)
        runs.append(run)
    status = Status.parse(data.get("status"), Status.SUCCEEDED)  # "completed" before
    backend = data.get("settings", {}).get("backend") if remote else None
    return SweepResult(runs, status=status, output_dir=manifest.folder.resolve(), backend=backend)
