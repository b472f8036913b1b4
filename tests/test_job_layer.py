"""The job layer and the config import without cycles, each module on its own."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import synth_lab.config
import synth_lab.job

PACKAGES = (synth_lab.config, synth_lab.job)
MODULES = sorted(
    f"{package.__name__}.{info.name}"
    for package in PACKAGES
    for info in pkgutil.iter_modules(package.__path__)
)
# Function-level imports of synth_lab modules that these packages may keep, and why.
DEFERRED = {"synth_lab.data.dataset": "imports pandas, which a dry run must not load"}


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    # A cycle shows only when a module of it is the first one imported.
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def _deferred_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    found.append((inner.lineno, inner.module))
                elif isinstance(inner, ast.Import):
                    found += [(inner.lineno, alias.name) for alias in inner.names]
    return found


def test_no_function_level_import_dodges_a_cycle() -> None:
    """Modules of synth_lab are imported at the top; a deferred one has a named reason."""
    files = [Path(p) for package in PACKAGES for p in package.__path__]
    unexplained = [
        f"{path.name}:{line} imports {module} inside a function"
        for folder in files
        for path in sorted(folder.glob("*.py"))
        for line, module in _deferred_imports(path)
        if module.split(".")[0] == "synth_lab" and module not in DEFERRED
    ]
    assert unexplained == []


def test_the_config_does_not_import_the_job_layer() -> None:
    """The layers point one way: the job layer builds on the config, never the reverse."""
    probe = "import sys, synth_lab.config\nprint(sorted(m for m in sys.modules if 'job' in m))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("synth_lab.dryrun", "synth_lab.job.dryrun", "dry_run"),
        ("synth_lab.payload", "synth_lab.job.payload", "build_payload"),
    ],
)
def test_the_import_paths_readme_documented_still_work(old: str, new: str, name: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
