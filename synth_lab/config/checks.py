"""Turn raw TOML data into a validated model, collecting every problem before raising once.

Three layers, all collected into one list of :class:`~synth_lab.errors.Problem`:
pydantic's type/range/enum/unknown-key errors made readable, with did-you-mean
(:mod:`~synth_lab.config.schema_errors`), the cross-field consistency rules of the spec
(:mod:`~synth_lab.config.rules`), and warnings for forwarded sections (here).
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import ValidationError

from synth_lab.config import schema
from synth_lab.config.keys import Place, problem_at, suggest, table_name
from synth_lab.config.rules import consistency
from synth_lab.config.schema_errors import from_pydantic
from synth_lab.config.source import KeyPath, Position, locate
from synth_lab.errors import Problem

__all__ = ["suggest", "validate"]


def validate(
    data: dict[str, Any],
    positions: dict[KeyPath, Position],
    model_cls: type[schema.ConfigModel] = schema.ConfigModel,
) -> tuple[schema.ConfigModel | None, list[Problem]]:
    """Validate ``data``; return the model (``None`` if invalid) and every problem found."""

    def place(path: KeyPath) -> Position | tuple[None, None]:
        return locate(positions, path)

    try:
        model = model_cls.model_validate(data)
    except ValidationError as exc:
        problems = from_pydantic(exc, data, place) + _forwarded_warnings(data, place)
        return None, sorted(problems, key=_order)
    problems = consistency(model, place) + _forwarded_warnings(data, place)
    return model, sorted(problems, key=_order)


def _order(problem: Problem) -> tuple[int, int]:
    return (problem.line or 1 << 30, problem.col or 0)


def _forwarded_warnings(data: dict[str, Any], place: Place) -> list[Problem]:
    """Unknown keys in forwarded-verbatim sections are sent as-is; warn in case they are typos."""
    problems: list[Problem] = []
    par = data.get("hyperparameters", {})
    par = par.get("parallelism") if isinstance(par, dict) else None
    if isinstance(par, dict):
        known = schema.ParallelismSection.model_fields
        for key in par:
            if key not in known:
                problems.append(_forwarded(("hyperparameters", "parallelism", key), known, place))
    topo = data.get("data", {})
    topo = topo.get("topology") if isinstance(topo, dict) else None
    if isinstance(topo, dict):
        for key, value in topo.items():
            path = ("data", "topology", key)
            expected = schema.TOPOLOGY_KEYS.get(key)
            if expected is None:
                problems.append(_forwarded(path, schema.TOPOLOGY_KEYS, place))
            elif not isinstance(value, expected) or isinstance(value, bool):
                problems.append(
                    problem_at(
                        place,
                        path,
                        f"'{key}' should be {expected.__name__}; got {value!r}",
                        "it is informational and forwarded as written",
                        "warning",
                        "wrong_type",
                    )
                )
    return problems


def _forwarded(path: KeyPath, known: typing.Iterable[str], place: Place) -> Problem:
    guess = suggest(path[-1], known)
    hint = f"did you mean '{guess}'?" if guess else "forwarded verbatim to the backend"
    message = f"unrecognised key '{path[-1]}' in {table_name(path[:-1])} (sent as written)"
    return problem_at(place, path, message, hint, "warning", "unknown_key")
