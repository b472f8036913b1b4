"""The names a notebook user reaches for, from ``synth_lab`` itself, loaded on first use."""

from __future__ import annotations

import inspect
import subprocess
import sys
from importlib.metadata import version

import pytest

import synth_lab


def test_every_public_name_resolves_to_its_home() -> None:
    from synth_lab.client.remote import attach, submit
    from synth_lab.config import SFTConfig
    from synth_lab.data.dataset import Dataset
    from synth_lab.job.dryrun import dry_run
    from synth_lab.sweep import run_sweep
    from synth_lab.train.api import run

    homes = {
        "SFTConfig": SFTConfig,
        "Dataset": Dataset,
        "attach": attach,
        "dry_run": dry_run,
        "run": run,
        "run_sweep": run_sweep,
        "submit": submit,
    }
    for name, value in homes.items():
        assert name in synth_lab.__all__ and getattr(synth_lab, name) is value
    assert set(synth_lab.__all__) <= set(dir(synth_lab))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        synth_lab.nope  # noqa: B018


def test_the_version_is_the_distribution_s() -> None:
    assert synth_lab.__version__ == version("synth-lab")


def test_names_load_lazily() -> None:
    probe = (
        "import sys, synth_lab\n"
        "assert 'synth_lab.train.api' not in sys.modules\n"
        "assert 'synth_lab.client.remote' not in sys.modules\n"
        "synth_lab.SFTConfig\n"
        "assert 'synth_lab.train.api' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_train_run_takes_keywords_after_the_dataset() -> None:
    from synth_lab.train.api import run

    params = list(inspect.signature(run).parameters.values())
    assert [p.name for p in params[:2]] == ["config", "dataset"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:])
    with pytest.raises(TypeError):
        run("sft.toml", "train.jsonl", "runs/out")  # type: ignore[misc]


def test_client_all_offers_no_internals() -> None:
    import synth_lab.client as client

    assert {"SynthClient", "submit", "attach", "RemoteJob"} <= set(client.__all__)
    assert not {"mask_key", "resolve_api_key", "resolve_base_url"} & set(client.__all__)
    assert all(not name.startswith("_") for name in client.__all__)
