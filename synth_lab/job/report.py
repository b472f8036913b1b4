"""Text and HTML renderings of dry runs (pure functions, every string escaped).

The config part of the report is the config card (:mod:`synth_lab.config.card`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from synth_lab._html import escape, no_math
from synth_lab.config.card import (
    CARD_CSS,
    MAX_PROBLEMS_SHOWN,
    card_table,
    config_rows,
    problems_html,
)

if TYPE_CHECKING:
    from synth_lab.errors import Problem
    from synth_lab.job.dryrun import DryRun


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
    html = "".join(
        [
            CARD_CSS,
            f"<div class='sl-card'><b>Dry run</b> — nothing was sent; {escape(status)}.",
            card_table(rows),
            _plan_html(run),
            "<b>Problems</b>",
            problems_html(run.problems),
            f"<b>Not sent to the remote backend</b><ul>{dropped}</ul>" if dropped else "",
            "<details><summary>Payload (POST /learning/jobs)</summary>",
            f"<pre>{payload}</pre></details></div>",
        ]
    )
    return no_math(html)


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
