"""pydantic's validation errors as readable problems: type, range, choice, missing and unknown
keys, each with its position and a hint (a did-you-mean where one fits)."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from synth_lab.config import schema
from synth_lab.config.keys import Place, problem_at, suggest, table_name
from synth_lab.config.source import KeyPath
from synth_lab.errors import Problem


def from_pydantic(exc: ValidationError, data: dict[str, Any], place: Place) -> list[Problem]:
    """One problem per offending key of ``data`` (a union's several errors count once)."""
    problems: list[Problem] = []
    seen: set[KeyPath] = set()
    for err in exc.errors(include_url=False):
        kind = err["type"]
        loc = tuple(err["loc"])
        path = tuple(str(p) for p in loc) if kind == "missing" else _existing_prefix(data, loc)
        if path in seen:  # a union reports one error per member; one is enough
            continue
        seen.add(path)
        message, hint, code = _describe(kind, path, err, data)
        problems.append(problem_at(place, path, message, hint, code=code))
    return problems


def _describe(kind: str, path: KeyPath, err: Any, data: dict[str, Any]) -> tuple[str, str, str]:
    key, parent = (path[-1] if path else ""), path[:-1]
    value = err.get("input")
    if kind == "extra_forbidden":
        model = section_model(parent)
        options = [f.alias or n for n, f in model.model_fields.items()] if model else []
        is_table = isinstance(value, dict)
        what = f"unknown section [{'.'.join(path)}]" if is_table else f"unknown key '{key}'"
        if not is_table or parent:
            what += f" in {table_name(parent)}" if not is_table else ""
        guess = suggest(key, options)
        if guess:
            shown = f"[{'.'.join((*parent, guess))}]" if is_table else f"'{guess}'"
            return what, f"did you mean {shown}?", "unknown_key"
        return (
            what,
            f"remove it; {table_name(parent)} accepts: {', '.join(options)}",
            "unknown_key",
        )
    if kind == "missing":
        if path == ("job",):
            return "missing the [job] table", 'add [job] with model = "<model id>"', "missing_key"
        hint = 'set it, e.g. model = "Qwen/Qwen3-4B"' if path == ("job", "model") else "add it"
        return f"missing required key '{key}' in {table_name(parent)}", hint, "missing_key"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return (
            f"{table_name(path)} must be a table, got {type(value).__name__}",
            f"write it as a [{'.'.join(path)}] section",
            "wrong_type",
        )
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = [o.strip().strip("'\"") for o in expected.replace(" or ", ",").split(",")]
        guess = suggest(str(value), [o for o in options if o])
        hint = f"did you mean '{guess}'?" if guess else f"use one of {expected}"
        return f"'{key}' must be one of {expected}; got {value!r}", hint, "invalid_choice"
    if path[-2:] == ("lora", "target_modules"):
        return (
            f"'target_modules' must be a list of module names or \"all-linear\"; got {value!r}",
            'e.g. target_modules = ["q_proj", "v_proj"]',
            "wrong_type",
        )
    message = str(err.get("msg", "invalid value"))
    message = message.replace("Input should be", "must be").replace("Input ", "")
    return f"'{key}' {message}; got {value!r}", _range_hint(kind, err), _code(kind)


def _range_hint(kind: str, err: Any) -> str:
    ctx = err.get("ctx") or {}
    if kind == "greater_than":
        return f"use a number > {ctx.get('gt')}"
    if kind in ("less_than_equal", "greater_than_equal"):
        return "use a number in the allowed range"
    if kind.startswith("int"):
        return "use a whole number without quotes"
    if kind.startswith("float"):
        return "use a number without quotes"
    if kind.startswith("bool"):
        return "use true or false"
    if kind.startswith("string"):
        return 'use a quoted string, e.g. "H100"'
    return ""


def _code(kind: str) -> str:
    if kind.startswith(("greater", "less")):
        return "out_of_range"
    return "wrong_type"


def section_model(path: KeyPath) -> type[BaseModel] | None:
    """The pydantic model that describes the table at ``path`` (``()`` is the document)."""
    model: type[BaseModel] = schema.ConfigModel
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return None
        nested = _model_in(field.annotation)
        if nested is None:
            return None
        model = nested
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _existing_prefix(data: Any, loc: tuple[Any, ...]) -> KeyPath:
    path: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(str(part))
            node = node[part]
        else:
            break
    return tuple(path)
