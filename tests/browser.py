"""A real JupyterLab for browser tests: temporary config, settings and root folders, the
system Chromium driven by Playwright. Used by the extension and widget tests."""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synth_lab._procs import free_port, start_group, stop_group

CHROMIUM = Path("/usr/bin/chromium")
EXTENSION = "synth-lab-sft-toml"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_S = 60
WAIT_MS = 20_000


@dataclass
class Lab:
    url: str
    token: str
    root: Path


def make_notebook(cells: list[str]) -> dict:
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [
            {
                "cell_type": "code",
                "id": f"cell-{i}",
                "metadata": {},
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
            for i, source in enumerate(cells)
        ],
    }


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 with a random token, in its own process group."""
    root, config = tmp_path / "root", tmp_path / "config"
    (config / "labconfig").mkdir(parents=True)
    root.mkdir()
    # The news toast would cover the notebook; disable it in this temporary config dir only.
    disabled = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
    (config / "labconfig" / "page_config.json").write_text(json.dumps(disabled))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    port, token = free_port(), secrets.token_hex(16)
    log = (tmp_path / "jupyterlab.log").open("wb")
    command = [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser"]
    command += ["--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0"]
    command += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    proc = start_group(command, log=log, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab not up after {SERVER_START_S} s")
            time.sleep(0.2)
        yield Lab(url=url, token=token, root=root)
    finally:
        stop_group(proc, timeout=10)
        log.close()


def run_cell(page: Any, cell: str) -> None:
    """Run ``cell`` (a CSS selector) with Shift+Enter once the kernel is ready, and wait until
    the kernel has taken it (its prompt shows ``[*]`` or an execution count).

    Shift+Enter pressed before the kernel is connected moves the cursor but runs nothing, so the
    status bar's "Idle" is awaited first.
    """
    page.get_by_text("| Idle").first.wait_for(timeout=WAIT_MS)
    page.click(f"{cell} .cm-content")
    page.keyboard.press("Shift+Enter")
    prompt = page.locator(f"{cell} .jp-InputPrompt")
    prompt.filter(has_text=re.compile(r"\[(\*|\d+)\]")).wait_for(timeout=WAIT_MS)
