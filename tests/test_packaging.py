"""The built wheel, installed as the README's Install section says, in a fresh virtual env.

Builds the wheel from this checkout (with the prebuilt JupyterLab extension inside), creates a
new venv, installs torch's CPU wheel first and then the wheel with the ``lab``, ``notebook`` and
``train`` extras (the README's "notebooks with local training" line), and checks, using only
that venv (no ``PYTHONPATH``, another working folder, its own Jupyter folders):

- ``jupyter labextension list`` shows the extension enabled and OK;
- a kernel of that venv runs ``%load_ext synth_lab``, ``%%sft_config`` and
  ``%sft_train --dry-run`` and shows the dry-run report as HTML;
- the quickstart notebook installed with the wheel runs every cell (it trains the tiny model,
  which is why the ``train`` extra is installed; here for a few steps, to keep this affordable).

On the CI machine ``pip install torch==2.13.0`` resolves to the local CPU wheel (the README's
``--index-url .../whl/cpu`` does the same elsewhere); the other packages come from the
configured index or pip's cache.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

TORCH = "torch==2.13.0"  # the README: torch's CPU wheel first, on machines without a GPU
EXTRAS = "lab,notebook,train"
EXTENSION = "synth-lab-sft-toml"
INSTALL_TIMEOUT_S = 900
TRAIN_CELL = "%sft_train --local --config tiny --output-dir runs/quickstart"


def _env(venv_dir: Path, home: Path) -> dict[str, str]:
    """The environment of a user of that venv: its bin first, nothing of this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv_dir)
    env["JUPYTER_CONFIG_DIR"] = str(home / "jupyter-config")
    env["JUPYTER_DATA_DIR"] = str(home / "jupyter-data")
    env["JUPYTER_RUNTIME_DIR"] = str(home / "jupyter-runtime")
    env["SYNTH_LAB_CACHE"] = str(home / "synth-lab-cache")
    env["MPLBACKEND"] = "Agg"
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> str:
    """Run ``cmd``; return its stdout and stderr together (jupyter logs to stderr)."""
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    pytest.importorskip("hatch_jupyter_builder")
    base = tmp_path_factory.mktemp("packaging")
    dist, home, work = base / "dist", base / "home", base / "work"
    work.mkdir()
    build_env = dict(os.environ)
    # jlpm (from jupyterlab) is used only when the extension is not built yet.
    build_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{build_env.get('PATH', '')}"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    _run([*build, "--wheel-dir", str(dist), str(ROOT)], build_env, work, INSTALL_TIMEOUT_S)
    (wheel,) = dist.glob("synth_lab-*.whl")

    venv_dir = base / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    env = _env(venv_dir, home)
    # The README's commands; --no-compile only skips writing .pyc files up front (a third of
    # the install time on 2 cores), Python writes them on first import instead.
    pip = [str(venv_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile"]
    _run([*pip, TORCH], env, work, INSTALL_TIMEOUT_S)
    _run([*pip, f"{wheel}[{EXTRAS}]"], env, work, INSTALL_TIMEOUT_S)
    return venv_dir, env, work


def test_the_wheel_carries_the_extension_and_the_notebooks(installed) -> None:
    venv_dir, env, work = installed
    listing = _run(["jupyter", "labextension", "list"], env, work, 120)
    out = re.sub(r"\x1b\[[0-9;]*m", "", listing)  # it colours "enabled" and "OK"
    assert re.search(rf"{EXTENSION} v\S+ enabled\s+OK \(python, synth-lab\)", out), out
    assert (venv_dir / "share" / "synth-lab" / "notebooks" / "01_quickstart.ipynb").is_file()
    # The package is the installed one, not this checkout.
    where = _run(["python", "-c", "import synth_lab; print(synth_lab.__file__)"], env, work, 60)
    assert str(venv_dir) in where and str(ROOT) not in where


DRY_RUN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import nbformat
    from nbclient import NotebookClient

    cells = [
        "%load_ext synth_lab\\nimport synth_lab\\nprint(synth_lab.__file__)",
        "%%sft_config cfg\\n[job]\\nmodel = 'Qwen/Qwen3-4B'\\n[compute]\\ngpu_type = 'H100'\\n"
        "gpu_count = 4\\n[hyperparameters]\\nn_epochs = 2\\nper_device_batch = 2\\n",
        "from synth_lab.samples import sample_path\\n"
        "%sft_train --dry-run --config cfg --dataset {sample_path()} --examples 50",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, kernel_name="python3", timeout=300).execute()
    with open(sys.argv[1], "w") as f:
        json.dump([c.outputs for c in nb.cells], f)
    """
)


def test_magics_and_dry_run_in_a_kernel_of_the_venv(installed) -> None:
    venv_dir, env, work = installed
    _run(["python", "-c", DRY_RUN_SCRIPT, "outputs.json"], env, work, 600)
    load, config, dry = json.loads((work / "outputs.json").read_text())
    assert str(venv_dir) in load[0]["text"]
    assert "SFT config" in config[-1]["data"]["text/html"]
    (result,) = [o for o in dry if o["output_type"] == "execute_result"]
    assert set(result["data"]) == {"text/plain", "text/html"}
    assert "<b>Dry run</b>" in result["data"]["text/html"]
    assert "50 records" in result["data"]["text/plain"]


def test_the_installed_quickstart_runs_from_the_venv(installed) -> None:
    venv_dir, env, work = installed
    source = venv_dir / "share" / "synth-lab" / "notebooks" / "01_quickstart.ipynb"
    notebook = json.loads(source.read_text())
    # Every cell as installed, with one change: the training run is cut to a few steps. The
    # full run (440 steps, minutes on 2 busy cores) is tests/test_notebooks.py's, from the
    # checkout; here the point is that the installed package runs every cell.
    (train,) = [c for c in notebook["cells"] if TRAIN_CELL in "".join(c["source"])]
    train["source"] = "".join(train["source"]).replace(TRAIN_CELL, f"{TRAIN_CELL} --max-steps 6")
    (work / source.name).write_text(json.dumps(notebook))
    cmd = ["python", "-m", "synth_lab.demo", source.name, "--output", "quickstart.html"]
    _run(cmd, env, work, 600)
    html = (work / "quickstart.html").read_text()
    assert "Dry run" in html and "succeeded: 6/6 steps" in html
    assert (work / "runs" / "quickstart" / "final").is_dir()


def test_binder_installs_cpu_torch_and_the_built_package() -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    text = (ROOT / "binder" / "requirements.txt").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert any(re.fullmatch(r"torch==[\d.]+\+cpu", ln) for ln in lines), lines
    # Not editable, so the wheel build (with the extension) runs; Binder keeps its JupyterLab.
    (package,) = [ln for ln in lines if ln.startswith(".")]
    extras = re.fullmatch(r"\.\[([\w,]+)\]", package).group(1).split(",")
    defined = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(extras) <= set(defined["optional-dependencies"]) and "lab" not in extras
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK)
    script = post_build.read_text()
    assert "jupyter labextension list" in script and EXTENSION in script
    assert "tiny_chat_path()" in script
