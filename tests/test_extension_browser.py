"""The JupyterLab extension (extension/): TOML highlighting of ``%%sft_config`` cell bodies.

Starts a real JupyterLab (temporary config, settings and root dirs), drives it with the system
Chromium through Playwright, types an ``%%sft_config`` cell and checks the tokens' CSS classes and
colours, then runs the cell and checks the config card. Needs ``make setup`` (which builds and
installs the extension) and ``/usr/bin/chromium``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    EXTENSION,
    WAIT_MS,
    Lab,
    lab,
    make_notebook,
    run_cell,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
    ),
]
__all__ = ["lab"]  # the JupyterLab fixture, imported for use here

SETUP_CELL = '%load_ext synth_lab\nnote = "[job]"  # a Python cell: no TOML classes here\nsize = 2'
TOML_LINES = [
    "%%sft_config cfg",
    "[job]",
    'model = "x"  # the base model',
    "[hyperparameters]",
    "n_epochs = 2",
    "[training]",
    "use_qlora = false",
]


def _computed_color_check(cell: str, selector: str, variable: str) -> str:
    """JS: the element's colour equals the theme variable's colour (both resolved)."""
    return f"""() => {{
        const el = document.querySelector({json.dumps(cell + " " + selector)});
        const probe = document.createElement('span');
        probe.style.color = 'var({variable})';
        el.parentElement.appendChild(probe);
        const ok = getComputedStyle(el).color === getComputedStyle(probe).color;
        probe.remove();
        return ok;
    }}"""


def test_sft_config_cell_is_highlighted_as_toml(lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    (lab.root / "sft.ipynb").write_text(json.dumps(make_notebook([SETUP_CELL, ""])))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{lab.url}/lab/tree/sft.ipynb?token={lab.token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content")

            config = json.loads(page.locator("#jupyter-config-data").text_content() or "{}")
            names = [ext["name"] for ext in config.get("federated_extensions", [])]
            assert EXTENSION in names, f"{EXTENSION} not installed (run `make setup`): {names}"

            python_cell = ".jp-Notebook .jp-Cell:nth-child(1)"
            toml_cell = ".jp-Notebook .jp-Cell:nth-child(2)"
            page.wait_for_selector(f"{python_cell} .cm-line")

            # Type the %%sft_config cell (insert_text: no bracket/quote auto-closing).
            page.click(f"{toml_cell} .cm-content")
            for i, line in enumerate(TOML_LINES):
                if i:
                    page.keyboard.press("Enter")
                page.keyboard.insert_text(line)

            tokens = {
                "table": "[job]",
                "key": "model",
                "string": '"x"',
                "comment": "# the base model",
                "number": "2",
                "bool": "false",
            }
            for kind, text in tokens.items():
                span = page.locator(f"{toml_cell} .cm-line span.sl-toml-{kind}", has_text=text)
                span.first.wait_for(timeout=WAIT_MS)
                assert text in span.first.text_content()
            assert page.locator(f"{toml_cell} .cm-line.sl-toml-line").count() == len(TOML_LINES) - 1
            magic_line = page.locator(f"{toml_cell} .cm-line").first
            assert magic_line.text_content().startswith("%%sft_config")
            assert "sl-toml-line" not in (magic_line.get_attribute("class") or "")
            # The colours are the theme's, not the Python highlighting underneath.
            for kind, var in [("string", "string"), ("comment", "comment"), ("table", "def")]:
                check = _computed_color_check(
                    toml_cell, f"span.sl-toml-{kind}", f"--jp-mirror-editor-{var}-color"
                )
                assert page.evaluate(check), f"sl-toml-{kind} does not use the {var} colour"

            # A normal Python cell gets none of it, even with TOML-looking text.
            assert page.locator(f"{python_cell} [class*='sl-toml']").count() == 0

            page.screenshot(path=str(tmp_path / "sft_config_toml.png"))

            # Run the setup cell, then the config cell: the config card appears.
            run_cell(page, python_cell)
            run_cell(page, toml_cell)
            card = page.locator(f"{toml_cell} .jp-OutputArea-output", has_text="SFT config")
            card.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "sft_config_card.png"))
        finally:
            browser.close()
