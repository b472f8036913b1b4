"""``ConfigEditor``: a form over :class:`SFTConfig`, generated from the schema.

Each TOML section that matters for a run is a collapsible group; each scalar key a widget chosen
by its type (bool: ``Checkbox``, int: ``IntText``, float: ``FloatText``, ``Literal``:
``Dropdown``, str: ``Text``) with the schema's description as its tooltip. Every edit goes
through :meth:`SFTConfig.replace`, so the form can never hold a config that does not validate.
"""

from __future__ import annotations

import html
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import ipywidgets as w
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from synth_lab.config import SFTConfig, schema
from synth_lab.errors import ConfigError, Problem
from synth_lab.widgets._base import WidgetView, problems_html
from synth_lab.widgets.plan_panel import PlanPanel

FORM_SECTIONS: dict[str, tuple[str, ...] | None] = {
    "job": ("model",),
    "compute": None,
    "hyperparameters": None,
    "training": None,
    "training.lora": None,
    "training.validation": None,
}
"""The groups of the form, and the keys shown in each (``None``: every scalar key)."""

HIDDEN: frozenset[str] = frozenset(
    {"compute.variant", "hyperparameters.world_size"}
    | {f"hyperparameters.{alias}" for alias in schema.LORA_ALIASES}
)
"""Informational keys and old spellings the form leaves out (they still round-trip)."""

Kind = Literal["bool", "int", "float", "choice", "str"]
_NOT_SET = ""  # the Dropdown value of an optional Literal key that is not written


@dataclass(frozen=True)
class FieldSpec:
    """One form field, derived from a schema field.

    Attributes:
        path: Dotted key path (``hyperparameters.learning_rate``).
        kind: The widget kind.
        description: The schema's description.
        optional: Whether the key may be left out (``None``).
        default: The schema default, or ``None``.
        choices: The allowed values of a ``Literal`` key.
        zero_unsets: A number field where 0 is invalid and so means "not set".
    """

    path: str
    kind: Kind
    description: str
    optional: bool
    default: Any = None
    choices: tuple[str, ...] = ()
    zero_unsets: bool = False


def _union_args(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _section_model(path: str) -> type[BaseModel]:
    """The pydantic model of a dotted section path (``training.lora``)."""
    model: type[BaseModel] = SFTConfig
    for part in path.split("."):
        args = [a for a in _union_args(model.model_fields[part].annotation) if a is not type(None)]
        model = args[0]
    return model


def field_spec(path: str, info: FieldInfo) -> FieldSpec | None:
    """The form field for a schema field, or ``None`` when it is not a scalar.

    Args:
        path: The dotted key path.
        info: The pydantic field.

    Returns:
        The spec, or ``None`` for tables, lists and mixed types.
    """
    args = _union_args(info.annotation)
    optional = type(None) in args
    args = tuple(a for a in args if a is not type(None))
    choices: tuple[str, ...] = ()
    kind: Kind
    if len(args) == 1 and get_origin(args[0]) is Literal:
        kind, choices = "choice", tuple(get_args(args[0]))
    elif args == (bool,):
        kind = "bool"
    elif args == (int,):
        kind = "int"
    elif args and set(args) <= {int, float}:
        kind = "float"
    elif args == (str,):
        kind = "str"
    else:
        return None
    default = None if info.default is PydanticUndefined else info.default
    zero_unsets = optional and any(
        isinstance(m, annotated_types.Gt) and m.gt >= 0 for m in info.metadata
    )
    return FieldSpec(path, kind, info.description or "", optional, default, choices, zero_unsets)


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


def current_value(config: SFTConfig, path: str) -> Any:
    """The value a config holds at a dotted path (``None`` where a section or key is unset)."""
    node: Any = config
    for part in path.split("."):
        node = getattr(node, part, None)
        if node is None:
            return None
    return node


def _display_value(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        value = spec.default
    if spec.kind == "bool":
        return bool(value)
    if spec.kind in ("int", "float"):
        return 0 if value is None else value
    if spec.kind == "choice":
        return _NOT_SET if value is None else value
    return "" if value is None else str(value)


def _config_value(spec: FieldSpec, value: Any) -> Any:
    """The TOML value of a widget value (``None`` removes the key)."""
    if spec.kind == "choice" and value == _NOT_SET:
        return None
    if spec.kind == "str" and spec.optional and value == "":
        return None
    if spec.zero_unsets and value == 0:
        return None
    return value


def _make_widget(spec: FieldSpec) -> w.ValueWidget:
    name = spec.path.rsplit(".", 1)[-1]
    hint = spec.description + (" (0: not set)" if spec.zero_unsets else "")
    common: dict[str, Any] = {
        "description": name,
        "tooltip": hint,
        "style": {"description_width": "180px"},
        "layout": w.Layout(width="420px"),
    }
    if spec.kind == "bool":
        return w.Checkbox(indent=True, **common)
    if spec.kind == "int":
        return w.IntText(**common)
    if spec.kind == "float":
        return w.FloatText(**common)
    if spec.kind == "choice":
        options = [(c, c) for c in spec.choices]
        if spec.optional:
            options.insert(0, ("(not set)", _NOT_SET))
        return w.Dropdown(options=options, **common)
    return w.Text(**common)


class ConfigEditor(WidgetView):
    """A form that edits an :class:`SFTConfig`, with a live TOML preview and its problems.

    The config is immutable: every edit builds a new one with :meth:`SFTConfig.replace`. When an
    edit does not validate, its problems are shown and :attr:`config` keeps the last valid
    config; the failing values stay in the form (and are retried with the next edit) until
    they are fixed.

    Args:
        config: The config to start from.

    Attributes:
        fields: The value widget of each dotted key path.
        toml_preview: The TOML text as HTML.
        problems_view: The problems of the last edit (empty when it validated).
        widget: The root widget.
    """

    def __init__(self, config: SFTConfig) -> None:
        self._config = config
        self._callbacks: list[Callable[[SFTConfig], None]] = []
        self._pending: dict[str, Any] = {}
        self._syncing = False
        self.problems: list[Problem] = []
        self.specs: dict[str, FieldSpec] = {}
        self.fields: dict[str, w.ValueWidget] = {}
        groups, titles = [], []
        for section, specs in form_fields():
            boxes = []
            for spec in specs:
                widget = _make_widget(spec)
                widget.observe(self._on_edit(spec), names="value")
                self.specs[spec.path] = spec
                self.fields[spec.path] = widget
                boxes.append(widget)
            groups.append(w.VBox(boxes))
            titles.append(f"[{section}]")
        self.form = w.Accordion(children=groups, titles=tuple(titles))
        self.form.selected_index = 0
        self.toml_preview = w.HTML()
        self.problems_view = w.HTML()
        preview = w.Accordion(children=[self.toml_preview], titles=("TOML",))
        preview.selected_index = 0
        self.plan_panel = PlanPanel(config)  # live memory / time / cost of the config
        self.on_change(self.plan_panel.update)
        self.widget = w.VBox([self.form, self.problems_view, self.plan_panel.widget, preview])
        self.reset(config)

    @property
    def config(self) -> SFTConfig:
        """The last valid config."""
        return self._config

    @property
    def toml(self) -> str:
        """The TOML text of :attr:`config`."""
        return self._config.to_toml()

    def on_change(self, callback: Callable[[SFTConfig], None]) -> Callable[[SFTConfig], None]:
        """Call ``callback(new_config)`` after every edit that validates.

        Args:
            callback: The function to call.

        Returns:
            The callback (so this works as a decorator).
        """
        self._callbacks.append(callback)
        return callback

    def reset(self, config: SFTConfig | None = None) -> None:
        """Show ``config`` (default: the current one) in the form, dropping failed edits."""
        if config is not None:
            self._config = config
        self._pending.clear()
        self._syncing = True
        try:
            for path, widget in self.fields.items():
                widget.value = _display_value(self.specs[path], current_value(self._config, path))
        finally:
            self._syncing = False
        self._show([])
        self.plan_panel.update(self._config)

    def set(self, path: str, value: Any) -> SFTConfig:
        """Edit one key as the form would (the widget shows ``value``); return :attr:`config`."""
        self.fields[path].value = value
        return self._config

    def _on_edit(self, spec: FieldSpec) -> Callable[[dict[str, Any]], None]:
        def handler(change: dict[str, Any]) -> None:
            if not self._syncing:
                self._apply(spec.path, _config_value(spec, change["new"]))

        return handler

    def _apply(self, path: str, value: Any) -> None:
        updates = {**self._pending, path: value}
        try:
            config = self._config.replace(updates)
        except ConfigError as exc:
            self._pending = updates
            self._show(list(exc.problems) or [Problem(path, None, None, exc.message)])
            return
        self._pending.clear()
        self._config = config
        self._show([])
        for callback in list(self._callbacks):
            callback(config)

    def _show(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.problems_view.value = problems_html(
            (p.location(), p.message, p.hint) for p in problems
        )
        self.toml_preview.value = (
            f'<pre style="margin:0">{html.escape(self._config.to_toml())}</pre>'
        )
