"""A self-hostable learning API: the hosted service's routes, running jobs on this machine.

``synth-lab serve`` starts it; :func:`create_app` gives the ASGI app for other servers. The web
stack (starlette, uvicorn, python-multipart) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synth_lab._lazy import lazy_attributes

if TYPE_CHECKING:
    from synth_lab.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]


__getattr__ = lazy_attributes(__name__, dict.fromkeys(__all__, "synth_lab.server.app"))
