"""synth-lab: supervised finetuning of language models, at home in Jupyter.

>>> import synth_lab as sl
>>> config = sl.SFTConfig.from_toml("sft.toml")              # doctest: +SKIP
>>> sl.dry_run(config, "train.jsonl")                        # doctest: +SKIP
>>> result = sl.run(config, "train.jsonl", max_steps=20)     # doctest: +SKIP  (here)
>>> job = sl.submit(config, "train.jsonl")                   # doctest: +SKIP  (on the API)

This module stays tiny on purpose: ``import synth_lab`` and ``%load_ext synth_lab`` must not
import torch, transformers, pandas or matplotlib, so the names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synth_lab._lazy import lazy_attributes

if TYPE_CHECKING:
    from synth_lab.client.remote import attach, submit
    from synth_lab.config import SFTConfig
    from synth_lab.data.dataset import Dataset
    from synth_lab.job.dryrun import dry_run
    from synth_lab.sweep import run_sweep
    from synth_lab.train.api import run

_EXPORTS = {
    "SFTConfig": "synth_lab.config",
    "Dataset": "synth_lab.data.dataset",
    "attach": "synth_lab.client.remote",
    "dry_run": "synth_lab.job.dryrun",
    "run": "synth_lab.train.api",
    "run_sweep": "synth_lab.sweep",
    "submit": "synth_lab.client.remote",
}
__all__ = [
    "Dataset",
    "SFTConfig",
    "__version__",
    "attach",
    "dry_run",
    "load_ipython_extension",
    "run",
    "run_sweep",
    "submit",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """Register the synth-lab magics (``%load_ext synth_lab``)."""
    from synth_lab.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Undo :func:`load_ipython_extension` (``%unload_ext synth_lab``)."""
    from synth_lab.magics import unload

    unload(ipython)


def _version() -> str:
    """The installed distribution's version: pyproject.toml is its one source."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("synth-lab")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


_exported = lazy_attributes(__name__, _EXPORTS)


def __getattr__(name: str) -> Any:
    return _version() if name == "__version__" else _exported(name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
