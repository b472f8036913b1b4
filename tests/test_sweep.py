"""Sweeps: the grid, real tiny-model runs compared, failures and interrupts, the magic."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from test_train_support import config_text, shared_cache

from synth_lab.config import ConfigError, SFTConfig
from synth_lab.errors import SynthLabError
from synth_lab.samples import sample_path
from synth_lab.sweep import SweepResult, grid, parse_axis, run_sweep

pytest.importorskip("torch")

LR = "hyperparameters.learning_rate"
VALIDATION = "[training.validation]\neval_steps = 4"


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with shared_cache(tmp_path_factory) as path:
        yield path


@pytest.fixture(autouse=True)
def agg() -> None:
    import matplotlib

    matplotlib.use("Agg")


def base(extra: str = "") -> SFTConfig:
    return SFTConfig.from_toml(config_text(extra=extra))


def test_an_axis_that_switches_the_mode_says_so() -> None:
    with pytest.warns(UserWarning, match=r"sweep point 1 \(train_kind=fft\) trains full_finetune"):
        points = grid(
            base("[training.lora]\nr = 4"), {"hyperparameters.train_kind": ["peft", "fft"]}
        )
    assert [p.config.train_mode for p in points] == ["lora", "full_finetune"]


def test_axes_that_switch_every_point_say_so_once() -> None:
    with pytest.warns(UserWarning) as caught:
        grid(base(), {"training.lora.r": [4, 8]})
    assert [str(w.message) for w in caught] == [
        "every sweep point trains lora, the base config trains full_finetune "
        "(the overrides change the training mode)"
    ]


def test_grid_is_the_product_of_the_axes_in_order() -> None:
    points = grid(base(), {LR: [1e-3, 3e-3], "training.lora.r": [4, 8]})
    assert [p.overrides for p in points] == [
        {LR: 1e-3, "training.lora.r": 4},
        {LR: 1e-3, "training.lora.r": 8},
        {LR: 3e-3, "training.lora.r": 4},
        {LR: 3e-3, "training.lora.r": 8},
    ]
    assert points[3].config.hyperparameters.learning_rate == 3e-3
    assert points[3].config.lora.r == 8
    assert points[0].name == "00-learning_rate_0.001-r_4"
    assert points[0].label == "learning_rate=0.001, r=4"
    assert len({p.name for p in points}) == 4

    explicit = grid(base(), [{LR: 1e-4}, {}])
    assert [p.label for p in explicit] == ["learning_rate=0.0001", "base"]
    assert explicit[1].config == base()

    assert parse_axis("hyperparameters.learning_rate=1e-3, 3e-3") == (LR, [1e-3, 3e-3])
    assert parse_axis('x.y=true,"a,b"') == ("x.y", [True, "a,b"])
    assert parse_axis("x.lr_scheduler_type=cosine,linear")[1] == ["cosine", "linear"]
    with pytest.raises(SynthLabError, match="bad sweep axis"):
        parse_axis("no-values")


def test_a_bad_value_fails_naming_the_point_and_key_before_anything_runs(tmp_path: Path) -> None:
    axes = {"training.lora.r": [4], LR: [1e-3, "fast"]}
    with pytest.raises(ConfigError, match=r"sweep point 1 \(training.lora.r=4, hyper") as info:
        grid(base(), axes)
    assert "hyperparameters.learning_rate=fast)" in info.value.message
    assert "invalid at hyperparameters.learning_rate" in info.value.message
    assert [p.path for p in info.value.errors] == [LR]
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError):
        run_sweep(base(), axes, sample_path(), output_dir=out, max_steps=2, live=False)
    assert not out.exists()
    with pytest.raises(SynthLabError, match="has no values"):
        grid(base(), {LR: []})


def test_local_sweep_trains_and_compares_every_run(tmp_path: Path) -> None:
    sweep = run_sweep(
        base(VALIDATION),
        {LR: [1e-4, 5e-3]},
        sample_path(),
        output_dir=tmp_path / "sweep",
        max_steps=4,
        validation_dataset=sample_path("chat_sample_val"),
        live=False,
    )
    assert sweep.status == "succeeded"
    assert [r.status for r in sweep.runs] == ["succeeded", "succeeded"]
    assert all((r.output_dir / "metrics.jsonl").is_file() for r in sweep.runs)
    assert sweep.runs[0].output_dir.name == "00-learning_rate_0.0001"
    losses = [r.train_loss for r in sweep.runs]
    assert all(math.isfinite(v) for v in losses) and abs(losses[0] - losses[1]) > 1e-3

    table = sweep.table
    assert list(table.columns) == [
        "name",
        LR,
        "status",
        "steps",
        "train_loss",
        "best_val_loss",
        "seconds",
        "output_dir",
        "error",
    ]
    assert sweep.metric == "val.loss"
    assert list(table.best_val_loss) == sorted(table.best_val_loss)
    assert list(table.steps) == [4, 4]
    assert sweep.best is not None and sweep.best.best_val_loss == table.best_val_loss.iloc[0]

    ax = sweep.plot()
    assert len(ax.get_lines()) == 2
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {
        "learning_rate=0.0001",
        "learning_rate=0.005",
    }
    assert len(sweep.plot(metric="val.loss").get_lines()) == 2

    data = json.loads(json.dumps(sweep.to_dict()))
    assert data["best"] == sweep.best.name and len(data["runs"]) == 2
    bundle = sweep._repr_mimebundle_()
    assert "learning_rate=0.005" in bundle["text/html"] and "succeeded" in bundle["text/plain"]


def test_a_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path, capsys) -> None:
    points = [{"hyperparameters.parallelism.tensor_parallel_size": 2}, {LR: 3e-3}]
    sweep = run_sweep(
        base(), points, sample_path(), output_dir=tmp_path / "s", max_steps=3, live=True
    )
    failed, done = sweep.runs
    assert sweep.status == "succeeded"
    assert failed.status == "failed" and failed.result is None
    assert failed.error.startswith("TrainingError:") and "tensor and pipeline" in failed.error
    assert done.status == "succeeded" and done.steps == 3
    assert sweep.best is done
    assert list(sweep.table.status) == ["succeeded", "failed"]
    assert "failed" in capsys.readouterr().out  # the live view, shown through display()

    odd = run_sweep(base(), [{LR: 3e-3}], sample_path(), output_dir=tmp_path / "o", max_steps=1)
    odd.runs[0].error = "<b>&</b>"
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in odd._repr_mimebundle_()["text/html"]


def test_an_interrupt_stops_the_sweep_and_keeps_what_finished(tmp_path: Path) -> None:
    seen: list[float] = []

    def stop_in_second_run(point) -> None:
        if point.name == "train.loss":
            seen.append(point.value)
            if len(seen) == 3 + 1:  # first step of the second run
                raise KeyboardInterrupt

    sweep = run_sweep(
        base(),
        {LR: [1e-3, 2e-3, 3e-3]},
        sample_path(),
        output_dir=tmp_path / "s",
        max_steps=3,
        live=False,
        logger=stop_in_second_run,
    )
    assert sweep.status == "interrupted"
    assert [r.status for r in sweep.runs] == ["succeeded", "interrupted", "queued"]
    assert sweep.best is sweep.runs[0]
    assert sweep.to_dict()["status"] == "interrupted"

    finished = sweep.runs[0].result.final_dir / "training_summary.json"
    written = finished.stat().st_mtime_ns
    resumed = run_sweep(
        base(), {LR: [1e-3, 2e-3, 3e-3]}, sample_path(), output_dir=tmp_path / "s",
        max_steps=3, live=False, resume=True,
    )  # fmt: skip
    assert [r.status for r in resumed.runs] == ["succeeded"] * 3
    first, second, third = resumed.runs
    # The finished run is read back from its folder, not trained again.
    assert finished.stat().st_mtime_ns == written
    assert first.result.steps == 3 and first.result.final_dir == sweep.runs[0].result.final_dir
    assert first.result.train_loss == first.train_loss == sweep.runs[0].train_loss
    assert second.result.summary["start_step"] == sweep.runs[1].steps > 0  # from its checkpoint
    assert second.steps == third.steps == 3


class StopAtStep2:
    """A rule naming the second point once it has reported step 2 (to test the wiring)."""

    metric = "train.loss"

    def decide(self, curves: dict[str, dict[int, float]], active: list[str]) -> dict[str, int]:
        return {n: 2 for n in active if n.startswith("01-") and 2 in curves.get(n, {})}


def test_an_early_stop_ends_a_local_run_with_a_checkpoint(tmp_path: Path) -> None:
    sweep = run_sweep(
        base(), {LR: [1e-3, 2e-3]}, sample_path(), output_dir=tmp_path / "s", max_steps=4,
        live=False, early_stop=StopAtStep2(),
    )  # fmt: skip
    kept, stopped = sweep.runs
    assert sweep.status == "succeeded" and kept.status == "succeeded" and kept.steps == 4
    assert (stopped.status, stopped.stopped_step, stopped.steps) == ("stopped early", 2, 2)
    assert stopped.result.last_checkpoint is not None


def test_the_magic_runs_a_sweep(shell: InteractiveShell, tmp_path: Path) -> None:
    shell.user_ns["cfg"] = base()
    line = (
        f"%sft_sweep --config cfg --dataset {sample_path()} --max-steps 2 --name sw "
        f'--output-dir {tmp_path / "sweep"} --grid "{LR}=1e-3,3e-3" --grid "training.lora.r=4"'
    )
    with capture_output():
        result = shell.run_cell(line)
    assert result.success, result.error_in_exec
    sweep = result.result
    assert isinstance(sweep, SweepResult) and shell.user_ns["sw"] is sweep
    assert [r.overrides for r in sweep.runs] == [
        {LR: 1e-3, "training.lora.r": 4},
        {LR: 3e-3, "training.lora.r": 4},
    ]
    assert [r.status for r in sweep.runs] == ["succeeded", "succeeded"]

    with capture_output():
        bad = shell.run_cell("%sft_sweep --config cfg --grid nothing")
    assert isinstance(bad.error_in_exec, SynthLabError)
    assert "--grid" in shell.find_line_magic("sft_sweep").__doc__  # the help


def test_remote_sweep_submits_every_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import GOLDEN, chat, write_jsonl
    from server_doubles import FAKE, FakeServer

    from synth_lab.client.remote import RemoteJob

    seed = SFTConfig.from_file(GOLDEN / "seed_minimal_fft_qwen3_4b.toml")
    seed = seed.replace({"job.poll_seconds": 1})
    data = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}") for i in range(8)])
    args = ["--runner", FAKE, "--gpus", "4"]
    args += ["--model-map", "Qwen/Qwen3-4B=synth-lab/tiny-chat"]
    with FakeServer(tmp_path / "srv", extra_args=args) as srv:
        monkeypatch.setenv("SYNTH_API_KEY", srv.api_key)
        out = tmp_path / "sw"
        sweep = run_sweep(
            seed, {LR: [1e-5, 2e-5]}, data, remote=True, backend=srv.url, live=False, output_dir=out
        )
    assert [r.status for r in sweep.runs] == ["succeeded", "succeeded"]
    assert all(isinstance(r.result, RemoteJob) for r in sweep.runs)
    assert sweep.runs[0].result.id != sweep.runs[1].result.id
    assert sweep.output_dir == out.resolve() and sweep.runs[0].output_dir is None
    assert sweep.runs[0].train_loss is not None and len(sweep.plot().get_lines()) == 2
    assert json.loads(json.dumps(sweep.to_dict()))["runs"][0]["result"]["id"]


def test_local_points_train_side_by_side_on_separate_gpus(tmp_path: Path) -> None:
    """Worker processes with disjoint ``CUDA_VISIBLE_DEVICES`` (on a CPU they train on it)."""
    points = [{LR: 1e-3}, {"hyperparameters.parallelism.tensor_parallel_size": 2}, {LR: 3e-3}]
    sweep = run_sweep(
        base(), points, sample_path(), output_dir=tmp_path / "s", max_steps=2, live=False,
        max_parallel=2, gpus=[0, 1],
    )  # fmt: skip
    assert [r.status for r in sweep.runs] == ["succeeded", "failed", "succeeded"]
    assert sweep.runs[1].error.startswith("TrainingError:")
    assert [r.steps for r in sweep.runs] == [2, 0, 2] and sweep.runs[2].train_loss is not None
    entries = json.loads((tmp_path / "s" / "manifest.json").read_text())["runs"]
    spans = [(e["devices"], e["started_at"], e["ended_at"]) for e in entries.values()]
    assert sorted(d for d, _, _ in spans[:2]) == [[0], [1]]  # the first two got one GPU each
    for devices, start, end in spans:
        same = [(s, e) for d, s, e in spans if d == devices and (s, e) != (start, end)]
        assert all(e <= start or s >= end for s, e in same)  # never two on one GPU
    assert spans[0][1] < spans[1][2] and spans[1][1] < spans[0][2]  # the first two overlapped
    assert (tmp_path / "s" / sweep.runs[0].name / "result.json").is_file()
