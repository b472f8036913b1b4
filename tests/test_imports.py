"""Heavy libraries stay out of ``import synth_lab``, the config and the dry-run path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import GOLDEN

HEAVY = ("torch", "transformers", "pandas", "matplotlib", "peft")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return {m for m in out.stdout.strip().split(",") if m}


@pytest.mark.parametrize(
    "code",
    [
        "import synth_lab",
        "import synth_lab.config",
        "import synth_lab.cli",
        "import synth_lab.magics",
        "import synth_lab.job.dryrun, synth_lab.job.jobspec",
    ],
)
def test_imports_are_light(code: str) -> None:
    assert loaded_after(code) == set()


def test_a_whole_dry_run_is_light(tmp_path) -> None:
    data = tmp_path / "d.jsonl"
    user, assistant = {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}
    data.write_text(json.dumps({"messages": [user, assistant]}) + "\n")
    code = (
        "from synth_lab.job.dryrun import dry_run\n"
        f"run = dry_run({str(GOLDEN / 'seed_minimal_fft_qwen3_4b.toml')!r}, {str(data)!r})\n"
        "assert run.ok\n"
        "run.format_text(); run.to_dict()\n"
        f"dry_run({str(GOLDEN / 'seed_minimal_fft_qwen3_4b.toml')!r}, {str(data)!r}, local=True)\n"
    )
    assert loaded_after(code) == set()
