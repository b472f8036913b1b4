"""``ConfigEditor``: a form over :class:`SFTConfig`, generated from the schema, with actions.

Each TOML section that matters for a run is a collapsible group (``[job]``, ``[data]``,
``[compute]``, ``[hyperparameters]`` and its parallelism, ``[training]``, LoRA, validation);
each key a widget chosen by its type (:mod:`synth_lab.widgets.form`) with the schema's
description as its tooltip. Every edit goes through :meth:`SFTConfig.replace`, so the form can
never hold a config that does not validate. Under the form: the problems of the last edit, a
*Dry run* and a *Train* button, extra panels (:meth:`ConfigEditor.add_panel`) and the TOML.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from synth_lab._html import escape
from synth_lab.config import SFTConfig
from synth_lab.errors import ConfigError, Problem, SynthLabError
from synth_lab.widgets._base import WidgetView, problems_html
from synth_lab.widgets.form import (
    FORM_SECTIONS,
    FieldSpec,
    config_value,
    display_value,
    entry_problem,
    form_fields,
    labelled,
    make_widget,
    written_value,
)
from synth_lab.widgets.plan_panel import PlanPanel

__all__ = ["FORM_SECTIONS", "ConfigEditor", "FieldSpec", "form_fields"]


class ConfigEditor(WidgetView):
    """A form that edits an :class:`SFTConfig`, with a live TOML preview, its problems and
    buttons to dry-run or train the config.

    The config is immutable: every edit builds a new one with :meth:`SFTConfig.replace`. When an
    edit does not validate, its problems are shown and :attr:`config` keeps the last valid
    config; the failing values stay in the form (and are retried with the next edit) until
    they are fixed. A key the TOML does not write is a blank field; clearing a field removes
    its key.

    Args:
        config: The config to start from.

    Attributes:
        fields: The value widget of each dotted key path.
        toml_preview: The TOML text as HTML.
        problems_view: The problems of the last edit (empty when it validated).
        dry_run_button: Runs :meth:`dry_run` and shows the report in :attr:`output`.
        train_button: Runs :meth:`train` (here, or on the learning API) in :attr:`output`.
        target: ``"local"`` or ``"remote"``: where the Train button trains.
        output: Where the buttons' results appear.
        result: What the last button showed: a ``DryRun``, a ``TrainResult``, a ``RemoteJob``,
            or the error it raised.
        panels: Extra panels added with :meth:`add_panel`.
        widget: The root widget.
    """

    def __init__(self, config: SFTConfig) -> None:
        self._config = config
        self._callbacks: list[Callable[[SFTConfig], None]] = []
        self._pending: dict[str, Any] = {}
        self._syncing = False
        self.problems: list[Problem] = []
        self.result: Any = None
        self.specs: dict[str, FieldSpec] = {}
        self.fields: dict[str, w.ValueWidget] = {}
        groups, titles = [], []
        for section, specs in form_fields():
            rows = []
            for spec in specs:
                widget = make_widget(spec)
                widget.observe(self._on_edit(spec), names="value")
                self.specs[spec.path] = spec
                self.fields[spec.path] = widget
                rows.append(labelled(spec, widget))
            groups.append(w.VBox(rows))
            titles.append(f"[{section}]")
        self.form = w.Accordion(children=groups, titles=tuple(titles))
        self.form.selected_index = 0
        self.toml_preview = w.HTML()
        self.problems_view = w.HTML()
        self.dry_run_button = w.Button(description="Dry run", icon="check")
        self.train_button = w.Button(description="Train", icon="play", button_style="primary")
        self.target = w.ToggleButtons(options=[("here", "local"), ("learning API", "remote")])
        self.dry_run_button.on_click(lambda _: self._act(self.dry_run))
        self.train_button.on_click(lambda _: self._act(self.train))
        self.output = w.Output()
        self.panels = w.VBox()
        preview = w.Accordion(children=[self.toml_preview], titles=("TOML",))
        preview.selected_index = 0
        actions = w.HBox([self.dry_run_button, self.train_button, self.target])
        self.plan_panel = PlanPanel(config)  # live memory / time / cost of the config
        self.on_change(self.plan_panel.update)
        self.widget = w.VBox(
            [
                self.form,
                self.problems_view,
                actions,
                self.output,
                self.plan_panel.widget,
                self.panels,
                preview,
            ]
        )
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

    def add_panel(self, title: str, panel: Any) -> None:
        """Show an extra panel (any widget, or an object with a ``widget``) under the buttons.

        A panel that follows the config subscribes with :meth:`on_change` and reads
        :attr:`config` for its first state.

        Args:
            title: The panel's title.
            panel: The widget.
        """
        widget = getattr(panel, "widget", panel)
        box = w.Accordion(children=[widget], titles=(title,))
        box.selected_index = 0
        self.panels.children = (*self.panels.children, box)

    def reset(self, config: SFTConfig | None = None) -> None:
        """Show ``config`` (default: the current one) in the form, dropping failed edits."""
        if config is not None:
            self._config = config
        self._pending.clear()
        self._syncing = True
        try:
            for path, widget in self.fields.items():
                value = written_value(self._config, path)
                widget.value = display_value(self.specs[path], widget, value)
        finally:
            self._syncing = False
        self._show([])
        self.plan_panel.update(self._config)

    def set(self, path: str, value: Any) -> SFTConfig:
        """Edit one key as the form would (the widget shows ``value``); return :attr:`config`."""
        self.fields[path].value = value
        return self._config

    def dry_run(self, **kwargs: Any) -> Any:
        """Dry-run :attr:`config` for the Train button's target (``[job].data`` is the
        training file); keyword arguments go to :func:`synth_lab.job.dryrun.dry_run`."""
        from synth_lab.job.dryrun import dry_run

        return dry_run(self._config, local=self.target.value == "local", **kwargs)

    def train(self, **kwargs: Any) -> Any:
        """Train :attr:`config` here (:func:`synth_lab.train.run`) or submit it to the learning
        API (:func:`synth_lab.client.remote.submit`, without waiting) and return the result or
        job; keyword arguments go to that function."""
        if self.problems:
            raise ConfigError("The form holds an invalid value", self.problems)
        if self.target.value == "local":
            from synth_lab.train import run

            self.result = run(self._config, live=True, **kwargs)
        else:
            from synth_lab.client.remote import submit

            kwargs.setdefault("wait", False)
            self.result = submit(self._config, **kwargs)
        return self.result

    def _act(self, action: Callable[[], Any]) -> None:
        """Run a button's action, showing its result (or its error) in :attr:`output`."""
        from IPython.display import HTML, display

        self.output.clear_output()
        with self.output:
            try:
                result = action()
            except SynthLabError as exc:
                self.result = exc
                message = escape(str(exc))
                display(HTML(f"<pre style='color:#b00020;white-space:pre-wrap'>{message}</pre>"))
                return
            self.result = result
            if self.target.value == "remote" and action == self.train:
                from synth_lab.widgets.job_monitor import JobMonitor

                result = JobMonitor(result)
            display(_as_html(result), raw=True)

    def _on_edit(self, spec: FieldSpec) -> Callable[[dict[str, Any]], None]:
        def handler(change: dict[str, Any]) -> None:
            if self._syncing:
                return
            try:
                value = config_value(spec, change["new"])
            except ValueError as exc:
                self._show([entry_problem(spec, exc)])
                return
            self._apply(spec.path, value)

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
        self.problems = [p for p in problems if p.severity == "error"]
        self.problems_view.value = problems_html(
            (p.location(), p.message, p.hint) for p in self.problems
        )
        self.toml_preview.value = f'<pre style="margin:0">{escape(self._config.to_toml())}</pre>'


def _as_html(result: Any) -> dict[str, Any]:
    """The result's HTML and text only: the report is what the output area should show."""
    bundle = result._repr_mimebundle_() if hasattr(result, "_repr_mimebundle_") else None
    if not isinstance(bundle, dict):
        return {"text/plain": repr(result)}
    return {k: v for k, v in bundle.items() if not k.startswith("application/json")}
