"""Random search: axes drawn from distributions, a budget of points and a seed.

The points are i.i.d. draws made up front with :class:`random.Random` seeded once, so the same
seed, axes and budget give the same points (on any machine and Python version: ``random``'s
Mersenne Twister and its ``uniform``/``randint``/``choice`` are stable), and the whole plan can
be validated and written to the sweep's manifest before anything runs.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synth_lab.errors import SynthLabError


class Distribution:
    """An axis of a random search: :func:`choice`, :func:`uniform`, :func:`loguniform`,
    :func:`randint`."""

    def draw(self, rng: random.Random) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Choice(Distribution):
    values: tuple[Any, ...]

    def draw(self, rng: random.Random) -> Any:
        return self.values[rng.randrange(len(self.values))]


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class LogUniform(Distribution):
    low: float
    high: float

    def draw(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))


@dataclass(frozen=True)
class RandInt(Distribution):
    low: int
    high: int

    def draw(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)


def choice(values: Sequence[Any]) -> Choice:
    """One of ``values``, each equally likely."""
    if isinstance(values, (str, bytes)) or not values:
        raise SynthLabError(f"choice() needs a non-empty list of values, got {values!r}")
    return Choice(tuple(values))


def uniform(low: float, high: float) -> Uniform:
    """A float drawn evenly from ``[low, high]``."""
    _check_range("uniform", low, high)
    return Uniform(float(low), float(high))


def loguniform(low: float, high: float) -> LogUniform:
    """A float whose logarithm is uniform on ``[log low, log high]`` (learning rates)."""
    _check_range("loguniform", low, high)
    if low <= 0:
        raise SynthLabError(
            f"loguniform({low}, {high}) needs low > 0", hint="e.g. loguniform(1e-5, 1e-3)"
        )
    return LogUniform(float(low), float(high))


def randint(low: int, high: int) -> RandInt:
    """An integer from ``low`` to ``high``, both included."""
    if not (isinstance(low, int) and isinstance(high, int)):
        raise SynthLabError(f"randint({low!r}, {high!r}) needs integers")
    _check_range("randint", low, high)
    return RandInt(low, high)


def _check_range(name: str, low: float, high: float) -> None:
    if not (isinstance(low, (int, float)) and isinstance(high, (int, float))) or low > high:
        raise SynthLabError(
            f"{name}({low!r}, {high!r}) needs two numbers with low <= high",
            hint=f"e.g. {name}(1e-5, 1e-3)" if name != "randint" else "e.g. randint(4, 32)",
        )


def is_random(axes: Any) -> bool:
    """Whether ``axes`` (a mapping) has at least one distribution."""
    return isinstance(axes, Mapping) and any(isinstance(v, Distribution) for v in axes.values())


def sample(axes: Mapping[str, Any], budget: int, seed: int = 0) -> list[dict[str, Any]]:
    """``budget`` override dicts drawn from ``axes``.

    Args:
        axes: Dotted key to a distribution; a plain list is taken as :func:`choice` of it.
        budget: The number of points.
        seed: The seed of the draw (the same seed gives the same points).

    Raises:
        SynthLabError: No budget, or an axis that is neither a distribution nor a list.
    """
    if not isinstance(budget, int) or budget < 1:
        raise SynthLabError(
            f"a random search needs a budget of at least 1 point, got {budget!r}",
            hint="pass budget=8 (or --budget 8)",
        )
    dists: dict[str, Distribution] = {}
    for key, axis in axes.items():
        if isinstance(axis, Distribution):
            dists[key] = axis
        elif isinstance(axis, Sequence) and not isinstance(axis, (str, bytes)):
            dists[key] = choice(axis)
        else:
            raise SynthLabError(
                f"sweep axis '{key}' must be a distribution or a list, got {axis!r}",
                hint="use choice([...]), uniform(a, b), loguniform(a, b) or randint(a, b)",
            )
    rng = random.Random(seed)
    return [{key: dist.draw(rng) for key, dist in dists.items()} for _ in range(budget)]


_DIST = re.compile(r"^\s*(choice|uniform|loguniform|randint)\s*\((.*)\)\s*$", re.DOTALL)


def parse_distribution(key: str, text: str) -> Distribution:
    """``"loguniform(1e-5, 1e-3)"`` (the ``--random`` syntax) as a distribution.

    Raises:
        SynthLabError: Not one of the four forms, or bad arguments.
    """
    from synth_lab.sweep.grid import parse_axis

    match = _DIST.match(text)
    if not match:
        raise SynthLabError(
            f"bad random axis {key}={text!r}",
            hint='write KEY=loguniform(1e-5,1e-3), uniform(a,b), randint(a,b) or choice(a,b,"c")',
        )
    name, args = match.groups()
    values = parse_axis(f"{key}={args}")[1]
    if name == "choice":
        return choice(values)
    if len(values) != 2:
        raise SynthLabError(f"{name}() for {key} takes two numbers, got {args!r}")
    return {"uniform": uniform, "loguniform": loguniform, "randint": randint}[name](*values)
