"""Run a notebook headlessly and export it as HTML (``make demo`` runs the quickstart).

python -m synth_lab.demo notebooks/01_quickstart.ipynb --output out/01_quickstart.html
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_NOTEBOOK = Path("notebooks") / "01_quickstart.ipynb"


def run_notebook(
    path: str | os.PathLike[str],
    *,
    output_html: str | os.PathLike[str] | None = None,
    timeout: int = 900,
) -> Any:
    """Execute every cell of ``path`` in a fresh kernel, in the notebook's folder.

    Cells tagged ``raises-exception`` may fail (they show what an error looks like); any other
    failing cell stops the run with ``nbclient.exceptions.CellExecutionError``.

    Returns:
        The executed notebook (an ``nbformat.NotebookNode``).
    """
    from synth_lab._deps import require

    nbformat = require("nbformat", "Running notebooks (synth_lab.demo)", "lab")
    NotebookClient = require("nbclient", "Running notebooks (synth_lab.demo)", "lab").NotebookClient

    notebook_path = Path(path).resolve()
    notebook = nbformat.read(notebook_path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client.execute()
    if output_html is not None:
        HTMLExporter = require("nbconvert", "HTML export (synth_lab.demo)", "lab").HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(notebook)
        target = Path(output_html)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute a notebook and export it as HTML.")
    parser.add_argument("notebook", nargs="?", default=str(DEFAULT_NOTEBOOK))
    parser.add_argument("--output", help="HTML file to write")
    args = parser.parse_args(argv)
    run_notebook(args.notebook, output_html=args.output)
    print(f"executed {args.notebook}" + (f" -> {args.output}" if args.output else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
