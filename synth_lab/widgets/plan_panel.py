"""A live launch-plan panel: per-GPU memory, verdict, suggestions, time and cost of a config.

The :class:`~synth_lab.widgets.ConfigEditor` shows one under its form and calls
:meth:`PlanPanel.update` with every config that validates; it works alone as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as w

from synth_lab._html import escape
from synth_lab.errors import SynthLabError
from synth_lab.widgets._base import WidgetView

if TYPE_CHECKING:
    from synth_lab.config import SFTConfig
    from synth_lab.plan import Plan


class PlanPanel(WidgetView):
    """Shows :func:`synth_lab.plan.estimate` of a config, recomputed on :meth:`update`.

    Args:
        config: The config to plan.
        options: Keyword arguments for :func:`~synth_lab.plan.estimate` (``gpu_type=`` ...).

    Attributes:
        plan: The last plan (``None`` when it could not be made; see :attr:`error`).
        error: Why there is no plan (an unknown model, say), else ``None``.
        view: The HTML widget.
        widget: The root widget.
    """

    def __init__(self, config: SFTConfig, **options: Any) -> None:
        self.options = options
        self.plan: Plan | None = None
        self.error: str | None = None
        self.view = w.HTML()
        self.widget = w.VBox([w.HTML("<b>Launch plan</b>"), self.view])
        self.update(config)

    def update(self, config: SFTConfig) -> None:
        """Re-plan ``config`` and redraw (milliseconds: shapes and arithmetic only)."""
        from synth_lab.plan import estimate

        try:
            self.plan, self.error = estimate(config, **self.options), None
        except SynthLabError as exc:
            problems = getattr(exc, "problems", None)
            hint = problems[0].hint if problems else exc.hint
            self.plan, self.error = None, exc.message + (f" — {hint}" if hint else "")
        if self.plan is not None:
            self.view.value = self.plan.html()
        else:
            self.view.value = f"<p>Not available: {escape(self.error or '')}</p>"
