"""A feature whose extra is not installed says which extra to install.

Absence is simulated with the meta-path blocker of ``tests/blocking.py``: the package is hidden
and its import refused, the way an environment without that extra behaves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from blocking import block_imports
from conftest import GOLDEN
from IPython.core.interactiveshell import InteractiveShell

from synth_lab.errors import MissingDependencyError, SynthLabError
from synth_lab.samples import sample_path

__all__ = ["block_imports"]  # the fixture, imported for use here

TINY = (
    '[job]\nmodel = "synth-lab/tiny-chat"\n[compute]\ngpu_type = "H100"\ngpu_count = 1\n'
    "[hyperparameters]\nn_epochs = 1\nper_device_batch = 2\n"
)


def failure(shell: InteractiveShell, code: str) -> BaseException:
    result = shell.run_cell(code)
    assert not result.success, code
    assert result.error_in_exec is not None
    return result.error_in_exec


def assert_names_extra(err: BaseException, package: str, extra: str) -> None:
    assert isinstance(err, MissingDependencyError), repr(err)
    assert isinstance(err, SynthLabError) and isinstance(err, ImportError)
    assert err.package == package
    assert f"pip install 'synth-lab[{extra}]'" in str(err.hint)
    assert package in str(err)


def test_local_training_without_torch(shell: InteractiveShell, block_imports, tmp_path) -> None:
    shell.run_cell(f"%%sft_config tiny\n{TINY}")
    block_imports("torch")
    err = failure(
        shell,
        f"%sft_train --local --config tiny --dataset {sample_path()} "
        f"--output-dir {tmp_path / 'run'} --max-steps 1",
    )
    assert_names_extra(err, "torch", "train")
    assert not (tmp_path / "run").exists()


def test_a_local_sweep_without_torch(shell: InteractiveShell, block_imports, tmp_path) -> None:
    shell.run_cell(f"%%sft_config tiny\n{TINY}")
    block_imports("torch")
    err = failure(
        shell,
        f"%sft_sweep --config tiny --dataset {sample_path()} --output-dir {tmp_path / 's'} "
        '--grid "hyperparameters.learning_rate=1e-3,3e-3" --max-steps 1',
    )
    assert_names_extra(err, "torch", "train")


def test_local_training_without_transformers(block_imports) -> None:
    from synth_lab.train import run

    block_imports("transformers")
    with pytest.raises(MissingDependencyError) as info:
        run(TINY, sample_path(), max_steps=1)
    assert_names_extra(info.value, "transformers", "train")


def test_sft_data_without_pandas(shell: InteractiveShell, block_imports) -> None:
    block_imports("pandas", fresh=("synth_lab.data.dataset", "synth_lab.data.stats"))
    err = failure(shell, f"%sft_data {sample_path()}")
    assert_names_extra(err, "pandas", "notebook")


def test_the_dry_run_works_without_pandas_until_a_dataframe_is_asked_for(
    shell: InteractiveShell, block_imports
) -> None:
    block_imports("pandas", fresh=("synth_lab.data.dataset", "synth_lab.data.stats"))
    seed = (GOLDEN / "seed_minimal_fft_qwen3_4b.toml").read_text()
    shell.run_cell(f"%%sft_config cfg\n{seed}")
    dry = shell.run_cell(f"%sft_train --dry-run --config cfg --dataset {sample_path()}").result
    assert dry.ok and dry.records > 0
    with pytest.raises(MissingDependencyError) as info:
        _ = dry.problems_df
    assert_names_extra(info.value, "pandas", "notebook")


def test_plots_without_matplotlib(block_imports) -> None:
    from synth_lab.plots import plot_losses

    block_imports("matplotlib")
    with pytest.raises(MissingDependencyError) as info:
        plot_losses([{"name": "train.loss", "value": 1.0, "step": 1}])
    assert_names_extra(info.value, "matplotlib", "notebook")


def test_widgets_without_ipywidgets(block_imports) -> None:
    block_imports("ipywidgets", fresh=("synth_lab.widgets",))
    with pytest.raises(MissingDependencyError) as info:
        import synth_lab.widgets  # noqa: F401
    assert_names_extra(info.value, "ipywidgets", "notebook")


def test_running_a_notebook_without_nbformat(block_imports, tmp_path: Path) -> None:
    from synth_lab.demo import run_notebook

    block_imports("nbformat", "nbclient")
    with pytest.raises(MissingDependencyError) as info:
        run_notebook(tmp_path / "any.ipynb")
    assert_names_extra(info.value, "nbformat", "lab")


def test_a_broken_install_keeps_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synth_lab._deps import require

    # Installed, but its own import fails: that is not a missing extra, and says so as it is.
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("import _no_such_module_for_synth_lab\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "brokenpkg", raising=False)
    with pytest.raises(ModuleNotFoundError) as info:
        require("brokenpkg", "Anything", "notebook")
    assert not isinstance(info.value, MissingDependencyError)
    assert info.value.name == "_no_such_module_for_synth_lab"
