"""The config form's fields, derived from the schema: which widget, and how values convert.

A field shows what the TOML says, not what it resolves to: a key that is not written is a
blank field (its default as the placeholder), never a ``0`` or an unticked box that would read
as a value. Numbers are text fields for that reason; an optional boolean is a three-way
dropdown (not set, true, false); ``Literal`` keys and keys with known values (``mode``) are
dropdowns; lists (``target_modules``) are tag inputs.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import ipywidgets as w
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from synth_lab._html import escape
from synth_lab.config import SFTConfig, schema
from synth_lab.errors import Problem

FORM_SECTIONS: dict[str, tuple[str, ...] | None] = {
    "job": ("model", "data"),
    "data": ("validation_path",),
    "compute": None,
    "hyperparameters": None,
    "hyperparameters.parallelism": None,
    "training": None,
    "training.lora": None,
    "training.validation": None,
}
"""The groups of the form, and the keys shown in each (``None``: every scalar or list key)."""

HIDDEN: frozenset[str] = frozenset(
    {"compute.variant", "hyperparameters.world_size"}
    | {f"hyperparameters.{alias}" for alias in schema.LORA_ALIASES}
)
"""Informational keys and old spellings the form leaves out (they still round-trip)."""

KNOWN_VALUES: dict[str, tuple[str, ...]] = {"training.mode": schema.KNOWN_MODES}
"""Free-text keys with a known set of values, shown as dropdowns."""

Kind = Literal["bool", "int", "float", "choice", "str", "list"]
NOT_SET = ""  # the dropdown value of a key that is not written


@dataclass(frozen=True)
class FieldSpec:
    """One form field, derived from a schema field.

    Attributes:
        path: Dotted key path (``hyperparameters.learning_rate``).
        kind: The widget kind.
        description: The schema's description.
        optional: Whether the schema allows ``None``.
        default: The schema default, or ``None``.
        choices: The values of a dropdown.
    """

    path: str
    kind: Kind
    description: str
    optional: bool
    default: Any = None
    choices: tuple[str, ...] = ()


def _plain(annotation: Any) -> Any:
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _union_args(annotation: Any) -> tuple[Any, ...]:
    annotation = _plain(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(_plain(a) for a in get_args(annotation))
    return (annotation,)


def _section_model(path: str) -> type[BaseModel]:
    """The pydantic model of a dotted section path (``training.lora``)."""
    model: type[BaseModel] = SFTConfig
    for part in path.split("."):
        args = [a for a in _union_args(model.model_fields[part].annotation) if a is not type(None)]
        model = args[0]
    return model


def field_spec(path: str, info: FieldInfo) -> FieldSpec | None:
    """The form field for a schema field, or ``None`` for tables and mixed types."""
    args = _union_args(info.annotation)
    optional = type(None) in args
    args = tuple(a for a in args if a is not type(None))
    nested = tuple(x for a in args for x in _union_args(a))
    choices: tuple[str, ...] = ()
    kind: Kind
    if any(get_origin(a) is list for a in nested):
        kind = "list"
    elif len(args) == 1 and get_origin(args[0]) is Literal:
        kind, choices = "choice", tuple(get_args(args[0]))
    elif args == (bool,):
        kind = "bool"
    elif args == (int,):
        kind = "int"
    elif args and set(args) <= {int, float}:
        kind = "float"
    elif args == (str,) and path in KNOWN_VALUES:
        kind, choices = "choice", KNOWN_VALUES[path]
    elif args == (str,):
        kind = "str"
    else:
        return None
    default = None if info.default is PydanticUndefined else info.default
    return FieldSpec(path, kind, info.description or "", optional, default, choices)


def form_fields() -> Iterator[tuple[str, list[FieldSpec]]]:
    """``(section, fields)`` for every group of the form, in order, derived from the schema."""
    for section, only in FORM_SECTIONS.items():
        specs = []
        for name, info in _section_model(section).model_fields.items():
            path = f"{section}.{name}"
            if (only is not None and name not in only) or path in HIDDEN:
                continue
            spec = field_spec(path, info)
            if spec is not None:
                specs.append(spec)
        yield section, specs


def written_value(config: SFTConfig, path: str) -> Any:
    """The value the TOML writes at a dotted path (``None`` where it writes nothing)."""
    node: Any = config.to_dict()
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _default_text(spec: FieldSpec) -> str:
    if spec.default is None or spec.default == []:
        return "not set"
    value = spec.default
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"default: {value}"


def make_widget(spec: FieldSpec) -> w.ValueWidget:
    """The widget of a field, with the schema's description as its tooltip."""
    common: dict[str, Any] = {
        "description": spec.path.rsplit(".", 1)[-1],
        "tooltip": spec.description,
        "style": {"description_width": "180px"},
        "layout": w.Layout(width="440px"),
    }
    if spec.kind == "bool" and not spec.optional:
        return w.Checkbox(indent=True, **common)
    if spec.kind in ("bool", "choice"):
        values = ("true", "false") if spec.kind == "bool" else spec.choices
        unset = f"({_default_text(spec)})" if spec.default is not None else "(not set)"
        options = [(unset, NOT_SET)] + [(str(c), str(c)) for c in values]
        return w.Dropdown(options=options, **common)
    if spec.kind == "list":
        return w.TagsInput(allow_duplicates=False, tooltip=spec.description)
    return w.Text(placeholder=_default_text(spec), continuous_update=False, **common)


def labelled(spec: FieldSpec, widget: w.Widget) -> w.Widget:
    """The widget as a form row (a tag input has no label of its own)."""
    if spec.kind != "list":
        return widget
    name = spec.path.rsplit(".", 1)[-1]
    label = w.HTML(
        f"<span title='{escape(spec.description)}'>{escape(name)}</span>",
        layout=w.Layout(width="184px"),
    )
    return w.HBox([label, widget], layout=w.Layout(width="640px"))


def display_value(spec: FieldSpec, widget: w.ValueWidget, value: Any) -> Any:
    """The widget value showing ``value`` as written (``None``: not written)."""
    if spec.kind == "bool" and not spec.optional:
        return bool(spec.default if value is None else value)
    if spec.kind == "bool":
        return NOT_SET if value is None else ("true" if value else "false")
    if spec.kind == "choice":
        if value is not None and str(value) not in [v for _, v in widget.options]:
            widget.options = [*widget.options, (str(value), str(value))]  # an unknown mode
        return NOT_SET if value is None else str(value)
    if spec.kind == "list":
        return [] if value is None else [value] if isinstance(value, str) else list(value)
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def config_value(spec: FieldSpec, value: Any) -> Any:
    """The TOML value of a widget value (``None`` removes the key).

    Raises:
        ValueError: A number field holds text that is not a number (the message says so).
    """
    if spec.kind == "bool" and not spec.optional:
        return bool(value)
    if spec.kind in ("bool", "choice"):
        if value == NOT_SET:
            return None
        return value == "true" if spec.kind == "bool" else value
    if spec.kind == "list":
        items = [str(v).strip() for v in value if str(v).strip()]
        return None if not items else "all-linear" if items == ["all-linear"] else items
    text = str(value).strip()
    if text == "" and (spec.optional or spec.default is not None):
        return None
    if spec.kind == "int":
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"'{text}' is not a whole number") from None
    if spec.kind == "float":
        try:
            return float(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"'{text}' is not a number") from None
    return text


def entry_problem(spec: FieldSpec, exc: ValueError) -> Problem:
    """The problem shown for text that does not convert."""
    return Problem(
        spec.path, None, None, str(exc), "type a number, or clear the field to leave it unset"
    )
