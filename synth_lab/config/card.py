"""The config card: a config at a glance as text and HTML (pure functions, every string escaped).

``SFTConfig`` shows it in notebooks; the dry-run report (``synth_lab.job.report``) builds on
its rows, table and problem list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synth_lab._html import escape, no_math
from synth_lab.config.schema import DEFAULT_LEARNING_RATE, DEFAULT_SEQUENCE_LENGTH
from synth_lab.models.gguf import weights_note

if TYPE_CHECKING:
    from synth_lab.config.model import SFTConfig
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


CARD_CSS = (
    "<style>.sl-card{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px}"
    ".sl-card table{border-collapse:collapse}.sl-card td,.sl-card th{padding:2px 10px 2px 0;"
    "text-align:left!important;vertical-align:top}.sl-card th{font-weight:600}"
    ".sl-error{color:#b00020}.sl-warning{color:#8a6d00}.sl-card pre{max-height:24em;"
    "overflow:auto;background:var(--jp-layout-color2,#f5f5f5);padding:6px}</style>"
)


def card_table(rows: list[tuple[str, str]]) -> str:
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
    parts = [CARD_CSS, "<div class='sl-card'><b>SFT config</b>", card_table(config_rows(config))]
    if warnings:
        parts += ["<b>Warnings</b>", problems_html(warnings)]
    return no_math("".join(parts) + "</div>")
