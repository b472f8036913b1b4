"""synth-lab: supervised finetuning of language models, at home in Jupyter.

This module stays tiny on purpose: ``%load_ext synth_lab`` must not import torch, transformers,
pandas or matplotlib. The magics are imported when the extension is loaded, not before.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "attach", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register the synth-lab magics (``%load_ext synth_lab``)."""
    from synth_lab.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Undo :func:`load_ipython_extension` (``%unload_ext synth_lab``)."""
    from synth_lab.magics import unload

    unload(ipython)


def attach(job_id: str, **kwargs: Any) -> Any:
    """Reattach to a remote job (after a kernel restart); see :func:`synth_lab.client.attach`."""
    from synth_lab.client.remote import attach as _attach

    return _attach(job_id, **kwargs)
