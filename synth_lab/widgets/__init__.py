"""ipywidgets UIs: edit a config, explore a dataset, watch a run.

>>> from synth_lab.widgets import ConfigEditor, DatasetExplorer, JobMonitor
>>> editor = ConfigEditor(config); editor  # edit; editor.config is the last valid config
>>> DatasetExplorer(Dataset.load("train.jsonl"), tokenizer="synth-lab/tiny-chat")
>>> JobMonitor(result_or_remote_job)

Importing this package loads ipywidgets but not torch, transformers, pandas or matplotlib.
"""

from __future__ import annotations

from synth_lab._deps import require

# Before the widget modules, so that a missing ipywidgets names the extra to install.
require("ipywidgets", "The widgets (synth_lab.widgets)", "notebook")

from synth_lab.widgets.config_editor import ConfigEditor  # noqa: E402
from synth_lab.widgets.dataset_explorer import DatasetExplorer  # noqa: E402
from synth_lab.widgets.job_monitor import JobMonitor  # noqa: E402
from synth_lab.widgets.plan_panel import PlanPanel  # noqa: E402

__all__ = ["ConfigEditor", "DatasetExplorer", "JobMonitor", "PlanPanel"]
