"""Optional dependencies: import one, or raise a :class:`MissingDependencyError` naming the extra.

Each feature beyond the config layer and the dry run needs an extra (``pip install
'synth-lab[notebook]'``, ``[train]``, ``[lab]``, ``[server]``); a missing one is reported with the
command that installs it, not as a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from synth_lab.errors import MissingDependencyError


def require(module: str, feature: str, extra: str, *, package: str | None = None) -> ModuleType:
    """Import ``module`` and return it, or raise if it (not one of its own imports) is missing.

    Args:
        module: The import name (``"torch"``, ``"pandas"``).
        feature: What needs it, for the message (``"Local training (--local)"``).
        extra: The synth-lab extra that installs it.
        package: The distribution name when it differs from ``module``.

    Raises:
        MissingDependencyError: ``module`` is not installed.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only the package itself being absent is ours to explain; a broken install whose own
        # import fails keeps its original error as the cause.
        if exc.name is None or exc.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingDependencyError(package or module, feature, extra=extra) from exc
