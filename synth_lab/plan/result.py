"""The :class:`Plan` display object: per-GPU memory, verdict, suggestions, time and cost."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from synth_lab._html import escape, no_math

if TYPE_CHECKING:
    from synth_lab.config import SFTConfig
    from synth_lab.plan.gpus import GPU
    from synth_lab.plan.memory import Setup, Term
    from synth_lab.plan.shapes import ModelShape

CATEGORIES = ("weights", "gradients", "optimizer", "activations", "other")
_MODE = {"full_finetune": "full finetune", "lora": "LoRA", "qlora": "QLoRA"}


def gb(n: float | None) -> str:
    """Bytes as GiB, the unit ``nvidia-smi`` and torch report (an "80 GB" H100 has 79.6)."""
    return "-" if n is None else f"{n / (1 << 30):,.1f} GiB"


@dataclass(frozen=True)
class Suggestion:
    """A set of config overrides and the per-GPU total it gives."""

    overrides: dict[str, Any]
    per_gpu_total: int
    fits: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "overrides": self.overrides,
            "per_gpu_total": self.per_gpu_total,
            "fits": self.fits,
            "why": self.why,
        }

    def describe(self, max_keys: int = 4) -> str:
        """One line: why, the new per-GPU total, the overrides (the first few, for width)."""
        items = list(self.overrides.items())
        keys = ", ".join(f"{k} = {_toml(v)}" for k, v in items[:max_keys])
        more = f", … +{len(items) - max_keys} key(s)" if len(items) > max_keys else ""
        return f"{self.why} → {gb(self.per_gpu_total)} per GPU [{keys}{more}]"


@dataclass(frozen=True)
class Plan:
    """What a job will need before it starts. Display it, or read ``.to_dict()``."""

    config: SFTConfig
    shape: ModelShape
    setup: Setup
    gpu: GPU
    terms: list[Term]
    per_gpu: dict[str, int]
    trainable_params: int
    time: dict[str, Any]
    cost: dict[str, Any]
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.per_gpu["total"]

    @property
    def fits(self) -> bool:
        return self.total <= self.gpu.memory

    @property
    def headroom(self) -> int:
        """GPU memory left (negative: how much it overflows by)."""
        return self.gpu.memory - self.total

    @property
    def best(self) -> Suggestion | None:
        return next((s for s in self.suggestions if s.fits), None)

    def with_suggestions(self, suggestions: list[Suggestion]) -> Plan:
        return replace(self, suggestions=list(suggestions))

    def to_dict(self) -> dict[str, Any]:
        """The ``synth-lab plan --json`` object (bytes as integers)."""
        s = self.shape
        return {
            "model": {
                "id": s.id,
                "params": s.params,
                "active_params": s.active_params,
                "trainable_params": self.trainable_params,
                "mode": self.setup.mode,
                "shape_source": s.source,
                "hidden": s.hidden,
                "layers": s.layers,
                "vocab": s.vocab,
            },
            "gpu": {"type": self.gpu.name, "count": self.setup.world_size},
            "per_gpu": dict(self.per_gpu),
            "terms": [t.to_dict() for t in self.terms],
            "gpu_memory": self.gpu.memory,
            "fits": self.fits,
            "headroom": self.headroom,
            "suggestions": [x.to_dict() for x in self.suggestions],
            "time": dict(self.time),
            "cost": dict(self.cost),
        }

    # -- display --------------------------------------------------------------------------------

    def headline(self) -> str:
        """One line: fits with how much room, or overflows by how much and the best fix."""
        where = f"{self.setup.world_size} × {self.gpu.name} ({gb(self.gpu.memory)} each)"
        if self.fits:
            return f"Fits: {gb(self.total)} per GPU on {where}, {gb(self.headroom)} headroom."
        line = (
            f"DOES NOT FIT: {gb(self.total)} per GPU on {where}, over by {gb(-self.headroom)} "
            f"({self._largest()})."
        )
        best = self.best
        return line + (f" Best fix: {best.describe()}" if best else " No single change fits.")

    def _largest(self) -> str:
        top = max(CATEGORIES, key=lambda c: self.per_gpu[c])
        return f"largest: {top} {gb(self.per_gpu[top])}"

    def _summary_rows(self) -> list[tuple[str, str]]:
        s, st = self.shape, self.setup
        compute = self.config.compute
        assumed = "" if compute and compute.gpu_type else " (no [compute].gpu_type: assumed)"
        hours, usd = self.time.get("hours"), self.cost.get("usd")
        time = "unknown (no token count)" if hours is None else _duration(hours)
        if usd is not None:
            money = f"{usd:,.0f}" if usd >= 100 else f"{usd:,.2f}"
            time += f" on {self.setup.world_size} GPU(s), ${money} at "
            time += f"${self.cost['price_per_gpu_hour']:g}/GPU-hour"
        return [
            ("Model", f"{s.id}: {s.params / 1e9:,.2f} B params ({s.source})"),
            ("Training", f"{_MODE[st.mode]}, {self.trainable_params:,} trained params"),
            (
                "Run",
                f"{st.world_size} GPU(s), sharding {st.sharding}, micro-batch "
                f"{st.per_device_batch} × {st.sequence_length} tokens, checkpointing "
                f"{'on' if st.checkpointing else 'off'}, {st.precision}",
            ),
            ("Per GPU", " + ".join(f"{c} {gb(self.per_gpu[c])}" for c in CATEGORIES)),
            ("Total", f"{gb(self.total)} of {gb(self.gpu.memory)} ({self.gpu.name}{assumed})"),
            ("Tokens", f"{_num(self.time.get('tokens'))} ({self.time['tokens_how']})"),
            ("Time", time + f", assumed MFU {self.time['assumed_mfu']:.0%}"),
        ]

    def format_text(self, *, headline: bool = True) -> str:
        """The plan for terminals (``headline=False``: the caller printed it already)."""
        lines = ["Launch plan"] + (["  " + self.headline()] if headline else [])
        lines += [f"  {k:10} {v}" for k, v in self._summary_rows()]
        lines.append("  Terms (per GPU):")
        lines += [f"    {t.name:18} {gb(t.bytes):>10}  {t.how}" for t in self.terms]
        lines.append(f"    FLOPs per token: {self.time['flops_per_token_how']}")
        if self.suggestions:
            lines.append("  Suggestions:")
            for x in self.suggestions:
                lines.append(f"    {'fits ' if x.fits else 'no   '} {x.describe()}")
        return "\n".join(lines)

    def html(self) -> str:
        """An HTML fragment (used inside the dry-run card and on its own), kept from MathJax:
        its cost line has dollar signs."""
        color = "#1b5e20" if self.fits else "#b00020"
        rows = "".join(
            f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in self._summary_rows()
        )
        terms = "".join(
            f"<tr><td>{escape(t.name)}</td><td>{escape(gb(t.bytes))}</td>"
            f"<td>{escape(t.how)}</td></tr>"
            for t in self.terms
        )
        sugg = "".join(
            f"<li>{'✔' if x.fits else '✘'} {escape(x.describe())}</li>" for x in self.suggestions
        )
        return no_math(
            f"<div class='sl-plan'><p style='color:{color};font-weight:600'>"
            f"{escape(self.headline())}</p><table>{rows}</table>"
            + (f"<b>Suggestions</b><ul>{sugg}</ul>" if sugg else "")
            + "<details><summary>How each term is derived</summary>"
            f"<table>{terms}</table><p>{escape(self.time['flops_per_token_how'])}</p>"
            "</details></div>"
        )

    def __str__(self) -> str:
        return self.format_text()

    def __repr__(self) -> str:
        verdict = "fits" if self.fits else "does not fit"
        return f"<Plan {self.shape.id}: {gb(self.total)} per GPU, {verdict}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        css = (
            "<style>.sl-plan{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px}"
            ".sl-plan td,.sl-plan th{padding:2px 10px 2px 0;text-align:left!important;"
            "vertical-align:top}</style>"
        )
        return {"text/plain": self.format_text(), "text/html": css + self.html()}


def _duration(hours: float) -> str:
    if hours >= 1:
        return f"{hours:,.1f} h"
    return f"{hours * 60:.1f} min" if hours * 60 >= 1 else f"{hours * 3600:.1f} s"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else str(value)


def _num(n: int | None) -> str:
    return "unknown" if n is None else f"{n:,}"
