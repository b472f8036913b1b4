"""Sweep points: the cartesian product of config overrides, each one validated up front."""

from __future__ import annotations

import dataclasses
import itertools
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synth_lab.config import ConfigError, SFTConfig
from synth_lab.errors import SynthLabError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class SweepPoint:
    """One configuration of a sweep.

    Attributes:
        index: Position in the sweep (0-based).
        overrides: Dotted key to value, as passed to :meth:`SFTConfig.replace`.
        config: The validated config with the overrides applied.
    """

    index: int
    overrides: dict[str, Any]
    config: SFTConfig = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """Human label: ``learning_rate=0.001, r=4`` (``base`` without overrides)."""
        if not self.overrides:
            return "base"
        return ", ".join(f"{_leaf(k)}={format_value(v)}" for k, v in self.overrides.items())

    @property
    def name(self) -> str:
        """Short folder-safe name, unique within a sweep: ``00-learning_rate_0.001-r_4``."""
        parts = [f"{_leaf(k)}_{format_value(v)}" for k, v in self.overrides.items()] or ["base"]
        safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", "-".join(parts)).strip("_")[:80]
        return f"{self.index:02d}-{safe}"


def format_value(value: Any) -> str:
    """A compact rendering of an override value (``0.001``, ``true``, ``cosine``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def grid(
    base: SFTConfig, axes: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]
) -> list[SweepPoint]:
    """Sweep points from axes (their cartesian product) or from an explicit list of overrides.

    Every point's config is built and validated here, so a bad value fails before anything
    runs.

    Args:
        base: The config every point starts from.
        axes: ``{"hyperparameters.learning_rate": [1e-3, 3e-3], "training.lora.r": [4, 8]}``
            (the product, first key varying slowest), or a list of override dicts
            (``[{"hyperparameters.learning_rate": 1e-3}, ...]``) used as given.

    Returns:
        The points, in order.

    Raises:
        ConfigError: A combination gives an invalid config; the message names the combination
            and the key(s) at fault.
        SynthLabError: An axis has no values, or ``axes`` has the wrong shape.
    """
    combos = _combinations(axes)
    points = []
    for index, overrides in enumerate(combos):
        try:
            config = base.replace(overrides)
        except ConfigError as exc:
            raise _point_error(base, index, overrides, exc) from None
        points.append(SweepPoint(index, overrides, config))
    for message in mode_switches(base, points):
        warnings.warn(message, UserWarning, stacklevel=2)
    return points


def mode_switches(base: SFTConfig, points: Sequence[SweepPoint]) -> list[str]:
    """One message per point whose overrides change what is trained (full finetune, LoRA,
    QLoRA) from the base config's mode, so a sweep never compares different modes silently."""
    switched = [p for p in points if p.config.train_mode != base.train_mode]
    modes = {p.config.train_mode for p in switched}
    if len(switched) == len(points) > 1 and len(modes) == 1:
        return [
            f"every sweep point trains {modes.pop()}, the base config trains {base.train_mode} "
            "(the overrides change the training mode)"
        ]
    return [
        f"sweep point {p.index} ({p.label}) trains {p.config.train_mode}, "
        f"the base config trains {base.train_mode}"
        for p in switched
    ]


def _combinations(
    axes: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    if isinstance(axes, Mapping):
        for key, values in axes.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise SynthLabError(
                    f"sweep axis '{key}' must be a list of values, got {values!r}",
                    hint=f'write {{"{key}": [value1, value2]}}',
                )
            if not values:
                raise SynthLabError(f"sweep axis '{key}' has no values", hint="give at least one")
        keys = list(axes)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]
    combos = []
    for item in axes:
        if not isinstance(item, Mapping):
            raise SynthLabError(
                f"sweep points must be override dicts, got {item!r}",
                hint='pass {"key": [values]} axes or [{"key": value}, ...] points',
            )
        combos.append(dict(item))
    if not combos:
        raise SynthLabError("the sweep has no points", hint="give at least one override dict")
    return combos


def _point_error(
    base: SFTConfig, index: int, overrides: dict[str, Any], exc: ConfigError
) -> ConfigError:
    """Re-raise with the combination and the key(s) at fault; line numbers would point into
    a generated TOML, so they are dropped."""
    culprits = []
    for key, value in overrides.items():
        try:
            base.replace({key: value})
        except ConfigError:
            culprits.append(key)
    culprits = culprits or [p.path for p in exc.errors if p.path in overrides] or list(overrides)
    combo = ", ".join(f"{k}={format_value(v)}" for k, v in overrides.items()) or "(no overrides)"
    problems = [dataclasses.replace(p, line=None, col=None) for p in exc.problems]
    return ConfigError(
        f"sweep point {index} ({combo}) is invalid at {', '.join(culprits)}",
        problems,
        hint=f"fix or drop the value of {', '.join(culprits)}; nothing was run",
    )


def parse_axis(text: str) -> tuple[str, list[Any]]:
    """``"hyperparameters.learning_rate=1e-3,3e-3"`` as ``(key, [0.001, 0.003])``.

    Values use TOML value syntax (numbers, ``true``/``false``, ``"quoted strings"``); a bare
    word that is not valid TOML is taken as a string (``lr_scheduler_type=cosine,linear``).

    Raises:
        SynthLabError: No ``=``, an empty key or no values.
    """
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key or not rest.strip():
        raise SynthLabError(
            f"bad sweep axis {text!r}",
            hint='write KEY=V1,V2, e.g. --grid "hyperparameters.learning_rate=1e-3,3e-3"',
        )
    try:
        values = tomllib.loads(f"v = [{rest}]")["v"]
    except tomllib.TOMLDecodeError:
        values = [_toml_or_text(item) for item in rest.split(",")]
    return key, list(values)


def _toml_or_text(item: str) -> Any:
    item = item.strip()
    try:
        return tomllib.loads(f"v = {item}")["v"]
    except tomllib.TOMLDecodeError:
        return item


@dataclass(frozen=True)
class SweepArgs:
    """``%sft_sweep`` arguments, typed (the magic never handles an argparse namespace)."""

    config: str | None
    dataset: str | None
    validation_dataset: str | None
    axes: dict[str, Any]
    max_steps: int | None
    output_dir: str
    name: str | None
    seed: int
    remote: bool
    backend: str | None
    parallel: int = 1
    resume: bool = False
    budget: int | None = None
    search_seed: int = 0
    early_stop: str | None = None
    evaluate: str | None = None

    @classmethod
    def parse(cls, args: Any) -> SweepArgs:
        axes: dict[str, list[Any]] = {}
        for text in args.grid or []:
            if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
                text = text[1:-1]  # IPython's argument split keeps the shell quotes
            key, values = parse_axis(text)
            if key in axes:
                raise SynthLabError(f"--grid {key} is given twice", hint="merge the values")
            axes[key] = values
        for text in getattr(args, "random", None) or []:
            from synth_lab.sweep.space import parse_distribution

            if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
                text = text[1:-1]
            key, _, dist = text.partition("=")
            key = key.strip()
            if key in axes:
                raise SynthLabError(f"sweep axis {key} is given twice", hint="keep one")
            axes[key] = parse_distribution(key, dist)
        if not axes:
            raise SynthLabError(
                "no sweep axes given", hint='add --grid "hyperparameters.learning_rate=1e-3,3e-3"'
            )
        if args.name is not None and not args.name.isidentifier():
            raise SynthLabError(f"'{args.name}' is not a valid Python variable name")
        return cls(
            config=args.config,
            dataset=args.dataset,
            validation_dataset=args.validation_dataset,
            axes=axes,
            max_steps=args.max_steps,
            output_dir=args.output_dir or "runs/sweep",
            name=args.name,
            seed=args.seed,
            remote=args.remote,
            backend=args.backend,
            parallel=getattr(args, "parallel", None) or 1,
            resume=bool(getattr(args, "resume", False)),
            budget=getattr(args, "budget", None),
            search_seed=getattr(args, "search_seed", None) or 0,
            early_stop=getattr(args, "early_stop", None),
            evaluate=getattr(args, "evaluate", None),
        )
