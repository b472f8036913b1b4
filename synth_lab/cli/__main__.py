"""``python -m synth_lab.cli`` runs the ``synth-lab`` command."""

import sys

from synth_lab.cli import main

sys.exit(main())
