"""Where code runs: a Jupyter kernel or not (decides whether live views are shown)."""

from __future__ import annotations


def in_notebook() -> bool:
    """Whether code runs in a Jupyter kernel (an IPython shell with a kernel attached)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
