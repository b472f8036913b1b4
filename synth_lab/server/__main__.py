"""``python -m synth_lab.server``: the same as ``synth-lab serve``."""

from __future__ import annotations

import sys

from synth_lab.server.cli import main

sys.exit(main())
