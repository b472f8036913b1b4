"""A self-hostable learning API: the hosted service's routes, running jobs on this machine.

``synth-lab serve`` starts it; :func:`create_app` gives the ASGI app for other servers. The web
stack (starlette, uvicorn, python-multipart) is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synth_lab.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("synth_lab.server.app"), name)
    raise AttributeError(f"module 'synth_lab.server' has no attribute {name!r}")
