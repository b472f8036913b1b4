"""A meta-path blocker: makes installed packages look absent, to test the missing-extra errors.

``block_imports("torch")`` hides ``torch`` and its submodules from ``sys.modules`` and puts a
finder first on ``sys.meta_path`` that refuses them, as an environment without that extra
would. Modules named in ``fresh`` are dropped too, so that their top-level imports run again.
Everything is restored when the test ends.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from importlib.abc import MetaPathFinder
from typing import Any

import pytest


class _Blocker(MetaPathFinder):
    def __init__(self, names: Iterable[str]) -> None:
        self.names = set(names)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _matches(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.fixture
def block_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Call ``block_imports(*packages, fresh=(module, ...))`` inside a test."""

    def block(*names: str, fresh: Iterable[str] = ()) -> None:
        drop = (*names, *fresh)
        for module in [m for m in sys.modules if _matches(m, drop)]:
            monkeypatch.delitem(sys.modules, module)
        monkeypatch.setattr(sys, "meta_path", [_Blocker(names), *sys.meta_path])

    yield block
