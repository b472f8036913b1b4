"""``--dry-run``: validate config and data, derive the numbers, build the payload; send nothing.

The CLI (``synth-lab train --dry-run``) and the notebook (``%sft_train --dry-run``) both call
:func:`dry_run`. It imports neither torch nor pandas: a dry run should take well under a second.
"""

from __future__ import annotations

import dataclasses
import math
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth_lab import readiness
from synth_lab._deps import require
from synth_lab.config import SFTConfig, load_config
from synth_lab.data.examples import first_examples
from synth_lab.data.validate import lint_file
from synth_lab.errors import ConfigError, Problem, SynthLabError
from synth_lab.job.payload import (
    TRAINING_FILE_PLACEHOLDER,
    VALIDATION_FILE_PLACEHOLDER,
    build_payload,
    dropped_keys,
    dropped_reason,
    request_form_payload,
)
from synth_lab.job.report import dry_run_html, format_dry_run
from synth_lab.plan import Plan, estimate
from synth_lab.plan.timecost import tokens_from_counts


@dataclass(frozen=True)
class FileCheck:
    """What the validator found in one JSONL file."""

    role: str  # "training" or "validation"
    path: str | None
    records: int = 0
    valid_records: int = 0
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "records": self.records,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass(frozen=True)
class DryRun:
    """Everything a dry run found. Display it, or read its fields."""

    config: SFTConfig
    payload: dict[str, Any]
    dropped_keys: list[str]
    training: FileCheck
    validation: FileCheck | None
    config_problems: list[Problem]
    examples: int | None = None
    tokens: dict[str, Any] | None = None
    max_steps: int | None = None
    """An exact step budget (the SDK form's ``total_steps``); it governs over ``n_epochs``."""
    plan: Plan | None = None  # per-GPU memory, verdict, suggestions, time and cost
    plan_error: str | None = None  # why there is no plan (an unknown model, say)

    @property
    def problems(self) -> list[tuple[str, Problem]]:
        """Every problem with its source: ``config``, ``training`` or ``validation``."""
        rows = [("config", p) for p in self.config_problems]
        rows += [("training", p) for p in self.training.problems]
        if self.validation:
            rows += [("validation", p) for p in self.validation.problems]
        return rows

    @property
    def errors(self) -> list[tuple[str, Problem]]:
        return [(s, p) for s, p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def records(self) -> int:
        """Training records used (after ``--examples``)."""
        return self.training.valid_records

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.records / self.config.global_batch) if self.records else 0

    @property
    def total_steps(self) -> int:
        if self.max_steps is not None:
            return self.max_steps
        return self.steps_per_epoch * self.config.hyperparameters.n_epochs

    @property
    def steps_from(self) -> str:
        """What sets the number of steps: ``"total_steps"`` or ``"n_epochs"``."""
        return "n_epochs" if self.max_steps is None else "total_steps"

    @property
    def warmup_steps(self) -> int:
        return math.ceil(self.total_steps * (self.config.hyperparameters.warmup_ratio or 0.0))

    def summary(self) -> dict[str, Any]:
        """The derived numbers, as plain data."""
        c = self.config
        return {
            "model": c.job.model,
            "mode": c.train_mode,
            "world_size": c.world_size,
            "per_device_batch": c.per_device_batch,
            "gradient_accumulation_steps": c.gradient_accumulation_steps,
            "global_batch": c.global_batch,
            "records": self.records,
            "examples": self.examples,
            "validation_records": self.validation.valid_records if self.validation else None,
            "n_epochs": c.hyperparameters.n_epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "steps_from": self.steps_from,
            "warmup_steps": self.warmup_steps,
            "sequence_length": c.hyperparameters.sequence_length,
            "precision": c.precision,
            "strategy": c.strategy,
            "tokens": self.tokens,
        }

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` output of a successful dry run."""
        out: dict[str, Any] = {
            "payload": self.payload,
            "warnings": [p.to_dict() for p in self.config_problems],
            "dropped_keys": self.dropped_keys,
            "dataset": self.training.to_dict(),
            "summary": self.summary(),
        }
        if self.validation:
            out["validation_dataset"] = self.validation.to_dict()
        out["plan"] = self.plan.to_dict() if self.plan is not None else None
        return out

    def errors_dict(self) -> dict[str, Any]:
        """The ``--json`` output of a failed dry run."""
        return {"errors": [_error_row(source, p, self) for source, p in self.errors]}

    def raise_for_errors(self) -> None:
        """Raise :class:`ConfigError` naming every error, if there are any."""
        if self.ok:
            return
        problems = [_located(source, p, self) for source, p in self.errors]
        raise ConfigError(f"Dry run found {len(problems)} error(s)", problems)

    def format_text(self) -> str:
        """A readable report for terminals."""
        return format_dry_run(self)

    def __str__(self) -> str:
        return self.format_text()

    def __repr__(self) -> str:
        status = "ok" if self.ok else f"{len(self.errors)} error(s)"
        return f"<DryRun {self.config.job.model}: {self.records} records, {status}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        # No application/json: JupyterLab prefers it over the HTML and shows a collapsed tree.
        # The data stays at .to_dict() / .errors_dict().
        return {"text/plain": self.format_text(), "text/html": dry_run_html(self)}

    @property
    def problems_df(self) -> Any:
        """The problems as a pandas DataFrame (source, line, col, path, code, severity, ...)."""
        pd = require("pandas", "DryRun.problems_df", "notebook")

        columns = ["source", "line", "col", "path", "code", "severity", "message", "hint"]
        rows = [{"source": s, **p.to_dict()} for s, p in self.problems]
        return pd.DataFrame(rows, columns=columns)

    def not_sent_reasons(self) -> dict[str, str]:
        return {key: dropped_reason(key) for key in self.dropped_keys}


def _file_for(source: str, run: DryRun) -> str | None:
    if source == "training":
        return run.training.path
    if source == "validation" and run.validation:
        return run.validation.path
    return str(run.config.path) if run.config.path else None


def _error_row(source: str, problem: Problem, run: DryRun) -> dict[str, Any]:
    row = problem.to_dict()
    row["source"] = source
    row["file"] = _file_for(source, run)
    return row


def _located(source: str, problem: Problem, run: DryRun) -> Problem:
    if source == "config":
        return problem
    name = os.path.basename(_file_for(source, run) or source)
    path = name if problem.line is None else f"{name}:{problem.line}"
    path += f" {problem.path}" if problem.path else ""
    return Problem(path, None, None, problem.message, problem.hint, "error", problem.code)


def _missing_file(role: str, path: str | None, hint: str) -> FileCheck:
    what = "not specified" if path is None else f"not found: {path}"
    problem = Problem("", None, None, f"{role} dataset {what}", hint, code="file_not_found")
    return FileCheck(role, path, problems=[problem])


def _check_file(role: str, path: Path) -> FileCheck:
    report = lint_file(path)
    return FileCheck(role, str(path), report.records, report.valid_records, list(report.problems))


def count_tokens(
    path: str | os.PathLike[str], tokenizer: Any, *, sequence_length: int | None, limit: int | None
) -> dict[str, Any]:
    """Token totals of the valid records of ``path`` through the chat template.

    This loads transformers and renders every record, so it is opt-in (``tokenizer=`` /
    ``--tokens``): the default dry run stays light.
    """
    from synth_lab.data.dataset import Dataset

    ds = Dataset.load(path, limit=limit).drop_invalid().with_tokenizer(tokenizer, sequence_length)
    df = ds.df
    name = getattr(ds.tokenizer, "name_or_path", "") or type(ds.tokenizer).__name__
    return {
        "tokenizer": str(name),
        "tokens": int(df["n_tokens"].sum()) if len(df) else 0,
        "trained_tokens": int(df["n_trained_tokens"].sum()) if len(df) else 0,
        "max_tokens": int(df["n_tokens"].max()) if len(df) else 0,
        "truncated_records": int(df["truncated"].sum()) if len(df) else 0,
    }


def dry_run(
    config: SFTConfig | str | os.PathLike[str],
    dataset: str | os.PathLike[str] | None = None,
    *,
    examples: int | None = None,
    validation_dataset: str | os.PathLike[str] | None = None,
    tokenizer: Any = None,
    local: bool = False,
    form: str = "cli",
    total_steps: int | None = None,
    suffix: str | None = None,
    integrations: dict[str, Any] | None = None,
) -> DryRun:
    """Validate ``config`` and its data as a remote job would need them; send nothing.

    Args:
        config: A config, a TOML path, or TOML text.
        dataset: Training JSONL; overrides ``[job].data``. Relative to the current directory.
        examples: Use only the first N non-empty lines of the training file (N > 0).
        validation_dataset: Overrides ``[data].validation_path``.
        tokenizer: A tokenizer (or a local name/path) to count tokens with; ``True`` uses the
            model's own tokenizer if it is available locally. Off by default: it is slow.
        local: Check for local training: what only the hosted backend needs
            (``[compute].gpu_type`` ...) is not required.
        form: The request form the payload is shown in: ``"cli"`` (synth-ai's CLI) or
            ``"sdk"`` (its Python SDK; ``docs/contract/learning-api.md`` section 2).
        total_steps: ``form="sdk"`` only: an exact optimizer-step budget (over ``n_epochs``).
        suffix: ``form="sdk"`` only: a name part for the finetuned model.
        integrations: ``form="sdk"`` only: integrations to request, by name.

    Returns:
        A :class:`DryRun`; check ``.ok`` or call ``.raise_for_errors()``.

    Raises:
        ConfigError: The config itself cannot be read or validated.
    """
    cfg = load_config(config)
    config_problems = list(cfg.warnings) + ([] if local else cfg.remote_problems())
    train_path = dataset if dataset is not None else cfg.dataset_path
    val_path = validation_dataset if validation_dataset is not None else cfg.validation_path

    estimated = None
    with ExitStack() as stack:
        if train_path is None:
            training = _missing_file(
                "training", None, "pass --dataset PATH or set data = ... under [job]"
            )
        elif not Path(train_path).is_file():
            training = _missing_file(
                "training", str(train_path), "check the path (relative to the current directory)"
            )
        else:
            used = Path(train_path)
            if examples is not None:
                used = stack.enter_context(first_examples(used, examples))
            report = lint_file(used)
            # The plan's token estimate comes from the same pass (of the subset, if one).
            estimated = tokens_from_counts(report.characters, report.message_records)
            training = FileCheck(
                "training",
                str(train_path),
                report.records,
                report.valid_records,
                list(report.problems),
            )
        validation = None
        if val_path is not None:
            if Path(val_path).is_file():
                validation = _check_file("validation", Path(val_path))
            else:
                validation = _missing_file(
                    "validation", str(val_path), "fix [data].validation_path or remove it"
                )

    tokens = None
    if tokenizer is not None and tokenizer is not False and training.valid_records:
        tok = cfg.job.model if tokenizer is True else tokenizer
        seq = cfg.hyperparameters.sequence_length
        tokens = count_tokens(train_path, tok, sequence_length=seq, limit=examples)  # type: ignore[arg-type]
    config_problems += readiness.batch_problems(cfg, training.valid_records)
    if local:
        config_problems += readiness.local_problems(cfg)
    cut = readiness.truncation_problems(cfg, tokens)
    if cut:
        training = dataclasses.replace(training, problems=[*training.problems, *cut])
    payload = build_payload(
        cfg, TRAINING_FILE_PLACEHOLDER, VALIDATION_FILE_PLACEHOLDER if val_path else None
    )
    payload = request_form_payload(
        payload, form, total_steps=total_steps, suffix=suffix, integrations=integrations
    )
    plan_tokens = (tokens or estimated) if training.valid_records else None
    plan, plan_error = _plan(cfg, train_path if training.valid_records else None, plan_tokens)
    return DryRun(
        config=cfg,
        payload=payload,
        dropped_keys=dropped_keys(cfg),
        training=training,
        validation=validation,
        config_problems=config_problems,
        examples=examples,
        tokens=tokens,
        max_steps=total_steps,
        plan=plan,
        plan_error=plan_error,
    )


def _plan(cfg: SFTConfig, dataset: Any, tokens: Any) -> tuple[Plan | None, str | None]:
    """The launch plan, or why there is none (the dry run reports it; it does not fail)."""
    try:
        return estimate(cfg, dataset, tokens=tokens), None
    except SynthLabError as exc:
        problems = getattr(exc, "problems", None)
        hint = problems[0].hint if problems else exc.hint
        return None, f"{exc.message}" + (f" — {hint}" if hint else "")
