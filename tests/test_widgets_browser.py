"""A ``ConfigEditor`` in a real notebook: JupyterLab driven by Chromium through Playwright.

Renders the editor, edits a field in the browser and checks that the kernel's config, the TOML
preview and the problems area follow. Reuses the JupyterLab harness of the extension test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, Lab, lab, make_notebook, run_cell

pytest.importorskip("ipywidgets")
pytest.importorskip("playwright")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
    ),
]

__all__ = ["lab"]  # the fixture, imported for use here

EDITOR_CELL = (
    "from synth_lab.config import SFTConfig\n"
    "from synth_lab.widgets import ConfigEditor\n"
    "config = SFTConfig.from_toml('[job]\\nmodel = \"m\"\\n[hyperparameters]\\nn_epochs = 2\\n')\n"
    "editor = ConfigEditor(config)\n"
    "editor"
)
CHECK_CELL = 'print(f"epochs={editor.config.hyperparameters.n_epochs}", config is editor.config)'


def test_config_editor_edits_in_the_browser(lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    (lab.root / "editor.ipynb").write_text(json.dumps(make_notebook([EDITOR_CELL, CHECK_CELL])))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{lab.url}/lab/tree/editor.ipynb?token={lab.token}")
            editor_cell = ".jp-Notebook .jp-Cell:nth-child(1)"
            check_cell = ".jp-Notebook .jp-Cell:nth-child(2)"
            page.wait_for_selector(f"{editor_cell} .cm-line")

            run_cell(page, editor_cell)
            output = page.locator(f"{editor_cell} .jp-OutputArea-output")
            header = output.get_by_text("[hyperparameters]", exact=True)
            header.wait_for(timeout=60_000)
            header.click()
            field = output.locator(".widget-inline-hbox", has_text="n_epochs").locator("input")
            expect(field).to_have_value("2")
            preview = output.locator("pre", has_text="[job]")

            field.fill("5")
            field.press("Enter")
            expect(preview).to_contain_text("n_epochs = 5")

            run_cell(page, check_cell)
            result = page.locator(f"{check_cell} .jp-OutputArea-output")
            expect(result).to_contain_text("epochs=5 False")

            field.fill("0")  # invalid: the problem shows, the config stays
            field.press("Enter")
            expect(output).to_contain_text("greater than 0")
            expect(preview).to_contain_text("n_epochs = 5")

            field.fill("")  # cleared: the key goes away, the field stays blank
            field.press("Enter")
            expect(preview).not_to_contain_text("n_epochs")
            expect(field).to_have_value("")

            output.get_by_role("button", name="Dry run").click()  # the report, as HTML
            report = output.locator(".jp-RenderedHTML", has_text="nothing was sent")
            expect(report).to_contain_text("training dataset not specified")
            page.screenshot(path=str(tmp_path / "config_editor.png"))
        finally:
            browser.close()
