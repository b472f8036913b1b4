"""``synth-lab serve``: the self-hosted learning API (see :mod:`synth_lab.server.cli`)."""

from __future__ import annotations

import argparse
from typing import Any


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` command to the ``synth-lab`` subparsers; returns its parser."""
    from synth_lab.server.cli import add_arguments

    parser = subparsers.add_parser(
        "serve", help="run the learning API on this machine (jobs train locally)"
    )
    add_arguments(parser)
    return parser


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted; returns the exit code."""
    from synth_lab.server.cli import run

    return run(args)
