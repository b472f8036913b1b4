"""The display objects in real JupyterLab: each shows its HTML report, not a JSON tree.

JupyterLab picks the richest MIME type it knows; ``application/json`` outranks ``text/html`` and
is drawn as a collapsed tree (``▶ root``). This runs a notebook with a config card, a dry run, a
dataset, a short local training run, a two-point sweep, a remote job handle and user text with
dollar signs in JupyterLab driven by Chromium, and checks that every result is rendered as HTML
(nothing typeset as LaTeX). The plots are saved as screenshots (to ``$SYNTH_LAB_SCREENSHOTS``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, Lab, lab, make_notebook, run_cell

pytest.importorskip("playwright")
pytest.importorskip("torch")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
    ),
]

__all__ = ["lab"]  # the fixture, imported for use here

CELLS = {
    "setup": (
        "%load_ext synth_lab\n"
        "from synth_lab.samples import sample_path\n"
        'train_path = sample_path("chat_sample")'
    ),
    "config": (
        "%%sft_config tiny\n"
        "[job]\n"
        'model = "synth-lab/tiny-chat"\n'
        "[compute]\n"
        'gpu_type = "H100"\n'
        "gpu_count = 1\n"
        "[hyperparameters]\n"
        "n_epochs = 1\n"
        "per_device_batch = 4\n"
        "learning_rate = 5e-3\n"
        "sequence_length = 128"
    ),
    "dry run": "%sft_train --dry-run --config tiny --dataset $train_path --examples 50",
    "dataset": "%sft_data $train_path",
    "train result": (
        "%sft_train --local --config tiny --dataset $train_path --output-dir runs/one --max-steps 2"
    ),
    "sweep": (
        "from synth_lab.sweep import run_sweep\n"
        'run_sweep(tiny, {"hyperparameters.learning_rate": [1e-3, 3e-3]}, train_path,\n'
        '          output_dir="runs/sweep", max_steps=1, live=False)'
    ),
    "sweep plot": '_.plot(metric="train.loss");',
    "lengths": (
        "from synth_lab.data import Dataset\n"
        "Dataset.load(train_path).plot_lengths(\n"
        '    tokenizer="synth-lab/tiny-chat", sequence_length=128);'
    ),
    "dollars": (
        "from synth_lab.train.compare import Comparison\n"
        'Comparison(["costs $1 or $2 <b>now</b>"], ["no"], ["yes"])'
    ),
    "remote job": (
        "from synth_lab.client import SynthClient\n"
        "from synth_lab.client.remote import RemoteJob\n"
        'client = SynthClient(api_key="sk-browser-test", base_url="http://127.0.0.1:9")\n'
        'RemoteJob(client, "job_1", {"id": "job_1", "status": "running", "model": "m"})'
    ),
}
# Text each rendered report shows (a heading or a row of its table).
EXPECTED = {
    "config": "SFT config",
    "dry run": "Dry run",
    "dataset": "Dataset",
    "train result": "succeeded",
    "sweep": "learning_rate=0.003",
    "remote job": "job_1",
    "dollars": "costs $1 or $2 <b>now</b>",  # as typed: no LaTeX, no bold
}
# Cells whose output holds a plot, and the screenshot each is saved to (to look at the plots).
PLOTS = {
    "train result": "live_view.png",
    "sweep plot": "sweep_plot.png",
    "lengths": "lengths.png",
}


def test_display_objects_render_as_html_in_jupyterlab(lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("SYNTH_LAB_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    (lab.root / "display.ipynb").write_text(json.dumps(make_notebook(list(CELLS.values()))))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{lab.url}/lab/tree/display.ipynb?token={lab.token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell .cm-line")
            for i, name in enumerate(CELLS, start=1):
                cell = f".jp-Notebook .jp-Cell:nth-child({i})"
                run_cell(page, cell)
                if name in PLOTS:
                    output = page.locator(f"{cell} .jp-OutputArea")
                    output.locator("img").first.wait_for(timeout=120_000)
                    output.screenshot(path=str(shots / PLOTS[name]))
                if name not in EXPECTED:
                    continue
                result = page.locator(f"{cell} .jp-OutputArea-executeResult")
                result.wait_for(timeout=120_000)
                html = result.locator(".jp-RenderedHTMLCommon")
                html.get_by_text(EXPECTED[name]).first.wait_for(timeout=WAIT_MS)
                assert result.locator(".jp-RenderedJSON").count() == 0, name
                # JupyterLab typesets $...$ in HTML as LaTeX (the dry run's cost line has two)
                assert result.locator("mjx-container, .MathJax").count() == 0, name
                if name == "dry run":
                    assert html.locator("table").count() >= 1
                    result.scroll_into_view_if_needed()
                    page.screenshot(path=str(shots / "dry_run.png"))
            page.screenshot(path=str(shots / "display_objects.png"), full_page=True)
        finally:
            browser.close()
