"""Text and HTML renderings of configs and dry runs (pure functions, every string escaped)."""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synth_lab.config import SFTConfig
    from synth_lab.dryrun import DryRun
    from synth_lab.errors import Problem

MAX_PROBLEMS_SHOWN = 50

_MODE = {"full_finetune": "full finetune", "lora": "LoRA", "qlora": "QLoRA (4-bit NF4 + LoRA)"}


def config_rows(config: SFTConfig) -> list[tuple[str, str]]:
    """The config at a glance: (label, value) rows shared by the text and HTML views."""
    c = config
    hp = c.hyperparameters
    compute = c.compute
    if compute and compute.gpu_type:
        gpus = f"{c.world_size} × {compute.gpu_type}"
    else:
        gpus = f"{c.world_size} GPU(s), type not set" if c.world_size > 1 else "one device"
    nodes = compute.nodes if compute and compute.nodes else 1
    mode = _MODE[c.train_mode]
    if c.train_mode != "full_finetune":
        lora = c.lora
        mode += f" (r={lora.r}, alpha={lora.alpha:g}, dropout={lora.dropout:g})"
    v = c.validation
    if c.training and c.training.validation and v.enabled:
        every = f"every {v.eval_steps} steps" if v.eval_steps else "backend default interval"
        best = f", keep best by {v.metric_for_best_model}" if v.save_best_model_at_end else ""
        validation = f"{every}{best}"
    elif c.training and c.training.validation:
        validation = "disabled"
    else:
        validation = "not configured"
    from synth_lab.config.schema import DEFAULT_LEARNING_RATE, DEFAULT_SEQUENCE_LENGTH

    lr = _num(hp.learning_rate, DEFAULT_LEARNING_RATE[c.train_mode])
    warmup = _num(hp.warmup_ratio, 0)
    seq = _num(hp.sequence_length, DEFAULT_SEQUENCE_LENGTH)
    if hp.sequence_length is None:
        seq += " or the model's limit if smaller"
    rows = [
        ("Model", c.job.model),
        ("Mode", mode),
        ("Compute", f"{gpus} on {nodes} node(s), world size {c.world_size}"),
        ("Parallelism", f"{c.strategy}, {c.precision}"),
        (
            "Batch",
            f"{c.per_device_batch} per device × {c.gradient_accumulation_steps} accumulation × "
            f"{c.world_size} = global batch {c.global_batch}",
        ),
        ("Epochs", str(hp.n_epochs)),
        ("Learning rate", f"{lr}, warmup ratio {warmup}"),
        ("Sequence length", seq),
        ("Validation", validation),
    ]
    if c.validation_path:
        rows.append(("Validation data", c.validation_path))
    from synth_lab.models.gguf import weights_note

    note = weights_note(c.job.model)  # dequantized GGUF weights are not the original ones
    if note:
        rows.insert(1, ("Weights", note))
    return rows


def config_text(config: SFTConfig) -> str:
    """The config card for terminals."""
    lines = ["SFT config"] + [f"  {label:16} {value}" for label, value in config_rows(config)]
    lines += [f"  warning: {p.format()}" for p in config.warnings]
    return "\n".join(lines)


def _num(value: float | int | None, default: float | int) -> str:
    """The value, or the default it resolves to, marked as such (never a bare "default")."""
    return f"{default:g} (default)" if value is None else f"{value:g}"


def _tokens_line(tokens: dict | None) -> str:
    if not tokens:
        return "not counted (%sft_train --dry-run --tokens counts them with the model's tokenizer)"
    return (
        f"{tokens['tokens']:,} in all, {tokens['trained_tokens']:,} trained, longest "
        f"{tokens['max_tokens']:,}, {tokens['truncated_records']} record(s) cut "
        f"({tokens['tokenizer']})"
    )


def _plan_lines(run: DryRun) -> list[str]:
    """The launch plan; a loud first line when it does not fit."""
    if run.plan is None:
        return [f"Launch plan: not available: {run.plan_error}"]
    if run.plan.fits:
        return run.plan.format_text().splitlines()
    return ["!!! " + run.plan.headline(), *run.plan.format_text(headline=False).splitlines()]


def format_problem(source: str, problem: Problem) -> str:
    if source == "config":
        where = problem.location()
    else:
        where = " ".join(
            w for w in ("" if problem.line is None else f"line {problem.line}", problem.path) if w
        )
    where = f"{where}: " if where else ""
    text = f"{problem.severity:7} {source:10} {where}{problem.message}"
    return text + (f" — {problem.hint}" if problem.hint else "")


def format_dry_run(run: DryRun) -> str:
    """The dry-run report for terminals."""
    s = run.summary()
    lines = ["Dry run: nothing was sent.", ""]
    if run.config.path:
        lines.append(f"{'Config':16} {run.config.path}")
    lines += [f"{label:16} {value}" for label, value in config_rows(run.config)]
    used = f"{s['records']} records"
    if run.examples is not None:
        used += f" (first {run.examples} lines, --examples {run.examples})"
    lines.append(f"{'Dataset':16} {run.training.path or '-'}: {used}")
    if run.validation:
        lines.append(f"{'Validation set':16} {run.validation.path}: {s['validation_records']}")
    lines.append(f"{'Steps':16} {_steps_line(s)}")
    lines.append(f"{'Tokens':16} {_tokens_line(run.tokens)}")
    lines += ["", *_plan_lines(run)]
    problems = run.problems
    errors = sum(p.severity == "error" for _, p in problems)
    lines += ["", f"Problems: {errors} error(s), {len(problems) - errors} warning(s)"]
    for source, problem in problems[:MAX_PROBLEMS_SHOWN]:
        lines.append("  " + format_problem(source, problem))
    if len(problems) > MAX_PROBLEMS_SHOWN:
        lines.append(f"  … and {len(problems) - MAX_PROBLEMS_SHOWN} more (use --json for all)")
    if run.dropped_keys:
        lines += ["", "Not sent to the remote backend:"]
        lines += [f"  {k}: {r}" for k, r in run.not_sent_reasons().items()]
    lines += ["", "Payload (POST /learning/jobs):", json.dumps(run.payload, indent=2)]
    return "\n".join(lines)


_CSS = (
    "<style>.sl-card{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px}"
    ".sl-card table{border-collapse:collapse}.sl-card td,.sl-card th{padding:2px 10px 2px 0;"
    "text-align:left!important;vertical-align:top}.sl-card th{font-weight:600}"
    ".sl-error{color:#b00020}.sl-warning{color:#8a6d00}.sl-card pre{max-height:24em;"
    "overflow:auto;background:var(--jp-layout-color2,#f5f5f5);padding:6px}</style>"
)


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def problems_html(problems: list[tuple[str, Problem]]) -> str:
    if not problems:
        return "<p>No problems found.</p>"
    head = "<tr><th>severity</th><th>source</th><th>where</th><th>message</th><th>hint</th></tr>"
    body = []
    for source, p in problems[:MAX_PROBLEMS_SHOWN]:
        where = f"{p.line or ''}{':' + str(p.col) if p.col else ''} {p.path}".strip()
        body.append(
            f"<tr class='sl-{p.severity}'><td>{p.severity}</td><td>{escape(source)}</td>"
            f"<td>{escape(where)}</td><td>{escape(p.message)}</td><td>{escape(p.hint)}</td></tr>"
        )
    more = len(problems) - MAX_PROBLEMS_SHOWN
    tail = f"<p>… and {more} more.</p>" if more > 0 else ""
    return f"<table>{head}{''.join(body)}</table>{tail}"


def config_html(config: SFTConfig) -> str:
    """The compact config card shown by ``%%sft_config``."""
    warnings = [("config", p) for p in config.warnings]
    parts = [_CSS, "<div class='sl-card'><b>SFT config</b>", _table(config_rows(config))]
    if warnings:
        parts += ["<b>Warnings</b>", problems_html(warnings)]
    return "".join(parts) + "</div>"


def _plan_html(run: DryRun) -> str:
    if run.plan is None:
        return f"<p><b>Launch plan</b>: not available: {escape(run.plan_error or '')}</p>"
    return "<b>Launch plan</b>" + run.plan.html()


def dry_run_html(run: DryRun) -> str:
    s = run.summary()
    rows = config_rows(run.config)
    rows.append(("Dataset", f"{run.training.path or '-'}: {s['records']} records"))
    if run.validation:
        rows.append(("Validation set", f"{run.validation.path}: {s['validation_records']}"))
    rows.append(("Steps", _steps_line(s)))
    rows.append(("Tokens", _tokens_line(run.tokens)))
    payload = escape(json.dumps(run.payload, indent=2))
    dropped = "".join(
        f"<li><code>{escape(k)}</code>: {escape(r)}</li>" for k, r in run.not_sent_reasons().items()
    )
    status = "ready to submit" if run.ok else f"{len(run.errors)} error(s)"
    return "".join(
        [
            _CSS,
            f"<div class='sl-card'><b>Dry run</b> — nothing was sent; {escape(status)}.",
            _table(rows),
            _plan_html(run),
            "<b>Problems</b>",
            problems_html(run.problems),
            f"<b>Not sent to the remote backend</b><ul>{dropped}</ul>" if dropped else "",
            "<details><summary>Payload (POST /learning/jobs)</summary>",
            f"<pre>{payload}</pre></details></div>",
        ]
    )


def _steps_line(s: dict[str, Any]) -> str:
    """The steps and what sets them (``n_epochs`` passes, or an exact ``total_steps``)."""
    if s.get("steps_from") == "total_steps":
        return (
            f"{s['total_steps']} steps (total_steps governs; {s['steps_per_epoch']} per epoch, "
            f"n_epochs ignored), {s['warmup_steps']} warmup"
        )
    return (
        f"{s['steps_per_epoch']} per epoch × {s['n_epochs']} epoch(s) = "
        f"{s['total_steps']} steps, {s['warmup_steps']} warmup"
    )
