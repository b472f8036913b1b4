"""``TrainResult``: what a local training run returns to the notebook or the CLI."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synth_lab._html import escape, no_math
from synth_lab.status import Status
from synth_lab.train.metrics import (
    EVAL_SCORE,
    TRAIN_LOSS,
    VAL_LOSS,
    MetricPoint,
    points_frame,
    read_jsonl,
)

if TYPE_CHECKING:
    from synth_lab.train.compare import Comparison

FINAL_DIR = "final"  # the finished model or adapter, inside the run folder
SUMMARY_FILE = "training_summary.json"  # the summary, inside final/
EVAL_FILE = "eval.json"  # the evaluation hook's generations and scores, in the run folder


@dataclass
class TrainResult:
    """The outcome of :func:`synth_lab.train.run`.

    Attributes:
        status: ``succeeded`` or ``interrupted`` (failures raise instead).
        steps: Optimizer steps done (counting those before a resume).
        output_dir: The run folder (checkpoints, ``metrics.jsonl``, ``final/``).
        final_dir: The final model or adapter folder, when the run completed.
        best_checkpoint: The checkpoint with the best validation metric, if any.
        last_checkpoint: The newest checkpoint.
        points: Every metric point of this run.
        summary: The derived numbers (records, batch, precision, strategy ...).
    """

    status: Status
    steps: int
    output_dir: Path
    final_dir: Path | None = None
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
    points: list[MetricPoint] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    _loaded: tuple[Any, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_summary(cls, summary: dict[str, Any], points: list[MetricPoint]) -> TrainResult:
        def path(key: str) -> Path | None:
            value = summary.get(key)
            return Path(value) if value else None

        return cls(
            status=Status.parse(summary["status"]),  # "completed" in older summaries
            steps=int(summary["steps"]),
            output_dir=Path(summary["output_dir"]),
            final_dir=path("final_dir"),
            best_checkpoint=path("best_checkpoint"),
            last_checkpoint=path("last_checkpoint"),
            points=list(points),
            summary=dict(summary),
        )

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str]) -> TrainResult | None:
        """The result of the completed run in ``folder``, read back from what it wrote
        (``final/training_summary.json``, ``metrics.jsonl``, ``eval.json``); ``None`` when the
        run did not complete there."""
        folder = Path(folder)
        summary_file = folder / FINAL_DIR / SUMMARY_FILE
        if not summary_file.is_file():
            return None
        summary = json.loads(summary_file.read_text())
        history = folder / "metrics.jsonl"
        points = read_jsonl(history) if history.is_file() else []
        if (folder / EVAL_FILE).is_file():
            summary["eval"] = json.loads((folder / EVAL_FILE).read_text())
        summary.setdefault("final_dir", str(folder / FINAL_DIR))
        return cls.from_summary(summary, points)

    @property
    def metrics(self) -> Any:
        """Every point as a DataFrame: name, value, step, epoch, phase, created_at."""
        return points_frame(self.points)

    def _last(self, name: str) -> float | None:
        values = [p.value for p in self.points if p.name == name]
        return values[-1] if values else None

    @property
    def train_loss(self) -> float | None:
        """The last ``train.loss``."""
        return self._last(TRAIN_LOSS)

    @property
    def best_val_loss(self) -> float | None:
        """The lowest ``val.loss`` of this run."""
        values = [p.value for p in self.points if p.name == VAL_LOSS]
        return min(values) if values else None

    @property
    def eval_score(self) -> float | None:
        """The ``eval.score`` of the evaluation hook (mean score of the generations), if run."""
        return self._last(EVAL_SCORE)

    @property
    def model_dir(self) -> Path | None:
        """The folder :meth:`load` reads: the final folder, else the newest checkpoint."""
        return self.final_dir or self.last_checkpoint

    def plot(self, ax: Any = None) -> Any:
        """Train and validation loss against the step; returns the axes."""
        from synth_lab.plots import plot_losses

        return plot_losses(self.points, ax=ax, title=f"{self.summary.get('model', '')}".strip())

    def load(self, *, device: str | None = None) -> tuple[Any, Any]:
        """``(model, tokenizer)`` from :attr:`model_dir` (LoRA: base model plus adapter)."""
        folder = self.model_dir
        if folder is None:
            from synth_lab.errors import TrainingError

            raise TrainingError("this run saved no model", hint="train for at least one step")
        if self._loaded is None:
            from synth_lab.train.inference import load_trained

            self._loaded = load_trained(folder, device=device)
        return self._loaded

    def generate(self, prompt: str | list[dict[str, Any]], max_new_tokens: int = 64) -> str:
        """Reply of the trained model to a user message (or a list of chat messages), greedy."""
        from synth_lab.train.inference import generate

        model, tokenizer = self.load()
        return generate(model, tokenizer, prompt, max_new_tokens=max_new_tokens)

    def compare(self, prompts: list[Any], *, max_new_tokens: int = 64, seed: int = 0) -> Comparison:
        """The base model's and the trained model's replies to ``prompts``, side by side.

        Greedy and seeded. For LoRA the base is the same model with the adapter switched off.
        Returns a :class:`~synth_lab.train.compare.Comparison` (``.df``, an HTML table).
        """
        from synth_lab.train.compare import compare_result

        return compare_result(self, prompts, max_new_tokens=max_new_tokens, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the shape every run shares (:mod:`synth_lab.results`), then the
        folders and the trainer's summary (the CLI's ``--json`` output)."""
        from synth_lab.results import result_dict

        return result_dict(
            status=self.status,
            steps=self.steps,
            points=self.points,
            model=os.fspath(self.final_dir) if self.final_dir else None,
            total_steps=self.summary.get("total_steps"),
            train_loss=self.train_loss,
            best_val_loss=self.best_val_loss,
            eval_score=self.eval_score,
            seconds=self.summary.get("seconds"),
            output_dir=os.fspath(self.output_dir),
            final_dir=os.fspath(self.final_dir) if self.final_dir else None,
            best_checkpoint=os.fspath(self.best_checkpoint) if self.best_checkpoint else None,
            last_checkpoint=os.fspath(self.last_checkpoint) if self.last_checkpoint else None,
            summary=self.summary,
        )

    def _headline(self) -> str:
        loss = self.train_loss
        val = self.best_val_loss
        parts = [f"{self.status}: {self.steps}/{self.summary.get('total_steps', '?')} steps"]
        if loss is not None:
            parts.append(f"train.loss {loss:.4f}")
        if val is not None:
            parts.append(f"best val.loss {val:.4f}")
        if self.eval_score is not None:
            parts.append(f"eval.score {self.eval_score:.3f}")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"TrainResult({self._headline()}, output_dir={os.fspath(self.output_dir)!r})"

    def _repr_mimebundle_(self, **_: Any) -> dict[str, str]:
        rows = [
            ("model", self.summary.get("model")),
            ("mode", self.summary.get("mode")),
            ("strategy", f"{self.summary.get('strategy')} × {self.summary.get('world_size')}"),
            ("precision", self.summary.get("precision")),
            ("model folder", self.model_dir),
        ]
        cells = "".join(
            f"<tr><th style='text-align:left'>{escape(str(k))}</th>"
            f"<td style='text-align:left'>{escape(str(v))}</td></tr>"
            for k, v in rows
        )
        body = f"<div><b>{escape(self._headline())}</b><table>{cells}</table></div>"
        # HTML only (JupyterLab would render application/json as a tree); data: .to_dict().
        return {"text/plain": repr(self), "text/html": no_math(body)}
