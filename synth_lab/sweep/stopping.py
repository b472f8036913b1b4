"""Early stopping rules: which runs of a sweep to stop, from their ``val.loss`` curves.

A rule is pure: :meth:`decide` takes every run's curve (step to value, lower is better) and the
names of the runs still going, and names the runs to stop with the step whose evidence stopped
them. Runs are compared only at steps that both report (matching steps), so runs evaluated at
different intervals are never compared across steps. The runner calls :meth:`decide` as points
arrive; local runs are stopped (with a checkpoint), remote ones cancelled.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from synth_lab.errors import SynthLabError
from synth_lab.metrics import VAL_LOSS

Curves = Mapping[str, Mapping[int, float]]


@dataclass(frozen=True)
class MedianStopping:
    """Stop a run whose best value so far is worse than the median of the other runs' best
    values so far, at a step they all report (the median stopping rule of Google Vizier, with
    the best value instead of the running mean, which a single noisy evaluation moves less).

    Args:
        metric: The metric compared.
        min_step: No run is stopped on evidence from before this step (a grace period).
        min_peers: Other runs that must report the step before it can stop anyone.
    """

    metric: str = VAL_LOSS
    min_step: int = 1
    min_peers: int = 2

    def decide(self, curves: Curves, active: Iterable[str]) -> dict[str, int]:
        """``{run: step}`` for each active run the rule stops, at the first step it fires."""
        stop = {}
        for name in sorted(set(active)):
            for step in sorted(s for s in curves.get(name, {}) if s >= self.min_step):
                peers = [
                    _best_until(curve, step)
                    for other, curve in curves.items()
                    if other != name and step in curve
                ]
                if len(peers) >= self.min_peers and _best_until(
                    curves[name], step
                ) > statistics.median(peers):
                    stop[name] = step
                    break
        return stop


@dataclass(frozen=True)
class SuccessiveHalving:
    """Asynchronous successive halving: at each rung (``min_step``, ``min_step × eta``, ...), a
    run is kept only while its value at that step is among the best ``1/eta`` of the runs that
    reached it (ties broken by name); a rung decides once at least ``eta`` runs reached it.

    Args:
        metric: The metric compared.
        min_step: The first rung (default: the first step any run reported, so the rungs fall
            on evaluation steps: evaluating every 5 steps gives rungs 5, 15, 45 with ``eta=3``).
        eta: The reduction factor (keep the best third with 3).
    """

    metric: str = VAL_LOSS
    min_step: int | None = None
    eta: int = 3

    def __post_init__(self) -> None:
        if self.eta < 2 or (self.min_step is not None and self.min_step < 1):
            raise SynthLabError(
                f"SuccessiveHalving needs eta >= 2 and min_step >= 1, got {self.eta}, "
                f"{self.min_step}"
            )

    def rungs(self, last: int, first: int = 1) -> list[int]:
        """The rung steps up to ``last`` (from ``min_step``, else from ``first``)."""
        steps, step = [], max(1, self.min_step or first)
        while step <= last:
            steps.append(step)
            step *= self.eta
        return steps

    def decide(self, curves: Curves, active: Iterable[str]) -> dict[str, int]:
        """``{run: step}`` for each active run the rule stops, at the first rung it fails."""
        active = set(active)
        reported = [s for curve in curves.values() for s in curve]
        stop: dict[str, int] = {}
        if not reported:
            return stop
        for rung in self.rungs(max(reported), min(reported)):
            reached = sorted((c[rung], n) for n, c in curves.items() if rung in c)
            if len(reached) < self.eta:
                continue
            kept = {n for _, n in reached[: len(reached) // self.eta]}
            for _, name in reached:
                if name in active and name not in kept and name not in stop:
                    stop[name] = rung
        return stop


RULES = {"median": MedianStopping, "halving": SuccessiveHalving}


def make_rule(rule: str | MedianStopping | SuccessiveHalving | None) -> object | None:
    """A rule from its name (``median``, ``halving``) or as given; ``None`` for none."""
    if rule is None or not isinstance(rule, str):
        return rule
    if rule not in RULES:
        raise SynthLabError(
            f"unknown early stopping rule {rule!r}", hint=f"use one of {', '.join(RULES)}"
        )
    return RULES[rule]()


def _best_until(curve: Mapping[int, float], step: int) -> float:
    return min(v for s, v in curve.items() if s <= step)
