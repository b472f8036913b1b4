"""IPython integration: register and unregister the synth-lab magics.

Nothing registers at import time; :func:`load` does, and :func:`unload` undoes exactly that.
"""

from __future__ import annotations

from typing import Any

from synth_lab.magics.core import SynthLabMagics

__all__ = ["SynthLabMagics", "load", "unload"]

_KEY = "_synth_lab_magics"


def load(ipython: Any) -> SynthLabMagics:
    """Register one :class:`SynthLabMagics` instance on ``ipython`` (idempotent)."""
    existing = getattr(ipython, _KEY, None)
    if existing is not None:
        return existing
    magics = SynthLabMagics(shell=ipython)
    ipython.register_magics(magics)
    ipython.configurables.append(magics)
    setattr(ipython, _KEY, magics)
    return magics


def unload(ipython: Any) -> None:
    """Remove what :func:`load` registered."""
    magics = getattr(ipython, _KEY, None)
    if magics is None:
        return
    manager = ipython.magics_manager
    for kind, names in magics.magics.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    manager.registry.pop(type(magics).__name__, None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
    magics.close()
    delattr(ipython, _KEY)
