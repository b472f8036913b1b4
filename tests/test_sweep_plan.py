"""Sweep planning and comparing without training: random search, early stopping rules on
scripted curves, the compare table, config diffs and the HTML legend's colours."""

from __future__ import annotations

import math

import pytest
from test_train_support import config_text

from synth_lab.config import SFTConfig
from synth_lab.errors import SynthLabError
from synth_lab.plots import run_color
from synth_lab.sweep import (
    MedianStopping,
    SuccessiveHalving,
    SweepArgs,
    SweepResult,
    SweepRun,
    choice,
    grid,
    loguniform,
    randint,
    sample,
    uniform,
)
from synth_lab.sweep.result import render_html
from synth_lab.sweep.space import parse_distribution
from synth_lab.sweep.stopping import make_rule

LR = "hyperparameters.learning_rate"
AXES = {
    LR: loguniform(1e-5, 1e-2),
    "hyperparameters.warmup_ratio": uniform(0.0, 0.2),
    "training.lora.r": randint(2, 16),
    "hyperparameters.weight_decay": choice([0.0, 0.01]),
}


def test_the_same_seed_gives_the_same_points() -> None:
    first, again, other = sample(AXES, 12, seed=7), sample(AXES, 12, seed=7), sample(AXES, 12, 8)
    assert first == again and first != other
    assert sample(AXES, 5, seed=7) == first[:5]  # a smaller budget is a prefix of a larger one
    for point in first:
        assert 1e-5 <= point[LR] <= 1e-2
        assert 0.0 <= point["hyperparameters.warmup_ratio"] <= 0.2
        assert isinstance(point["training.lora.r"], int) and 2 <= point["training.lora.r"] <= 16
        assert point["hyperparameters.weight_decay"] in (0.0, 0.01)
    # log-uniform: as many draws below the geometric middle (3.16e-4) as above, roughly
    below = sum(p[LR] < math.sqrt(1e-5 * 1e-2) for p in sample(AXES, 400, seed=1))
    assert 140 < below < 260
    points = grid(SFTConfig.from_toml(config_text()), first)
    assert points[3].config.hyperparameters.learning_rate == first[3][LR]


def test_random_axes_are_checked_and_parsed() -> None:
    with pytest.raises(SynthLabError, match="needs low > 0"):
        loguniform(0, 1)
    with pytest.raises(SynthLabError, match="low <= high"):
        uniform(2, 1)
    with pytest.raises(SynthLabError, match="budget of at least 1"):
        sample(AXES, 0)
    assert parse_distribution(LR, "loguniform(1e-5, 1e-3)") == loguniform(1e-5, 1e-3)
    assert parse_distribution("k", 'choice(1, "a", cosine)') == choice([1, "a", "cosine"])
    assert parse_distribution("k", "randint(2,8)") == randint(2, 8)
    with pytest.raises(SynthLabError, match="bad random axis"):
        parse_distribution("k", "normal(0, 1)")

    class Namespace:
        config = dataset = validation_dataset = max_steps = output_dir = name = backend = None
        seed, remote, grid, resume, early_stop = 0, True, [f"{LR}=1e-3"], True, "median"
        random = ("'training.lora.r=randint(2,8)'",)
        budget, search_seed, parallel = 6, 3, 2

    args = SweepArgs.parse(Namespace)
    assert args.axes == {LR: [1e-3], "training.lora.r": randint(2, 8)}
    assert (args.budget, args.search_seed, args.parallel, args.resume) == (6, 3, 2, True)
    Namespace.random = (f"{LR}=uniform(0,1)",)
    with pytest.raises(SynthLabError, match="given twice"):
        SweepArgs.parse(Namespace)


# Scripted val.loss curves (step -> value). a and b have finished; c, d, e are still going.
CURVES = {
    "a": {2: 1.00, 4: 0.90, 6: 0.80},
    "b": {2: 1.10, 4: 1.00, 6: 0.95},
    "c": {2: 1.02, 4: 0.85},
    "d": {2: 1.04, 4: 1.20, 6: 1.30},
    "e": {3: 9.00},
}
ACTIVE = {"c", "d", "e"}


def test_median_stopping_stops_exactly_the_runs_it_names() -> None:
    # step 2: d's 1.04 is worse than the median (1.02) of a, b, c; c's 1.02 beats the median
    # (1.04) of a, b, d; b is worse too but already finished; e reports no step anyone shares
    assert MedianStopping().decide(CURVES, ACTIVE) == {"d": 2}
    # from step 4 on: d's best (1.04) against the median (0.90) of a, b and c's bests
    assert MedianStopping(min_step=4).decide(CURVES, ACTIVE) == {"d": 4}
    assert MedianStopping(min_peers=4).decide(CURVES, ACTIVE) == {}
    assert MedianStopping().decide(CURVES, {"a", "b", "c", "d", "e"}) == {"b": 2, "d": 2}


def test_successive_halving_stops_exactly_the_runs_it_names() -> None:
    curves = {
        "r1": {2: 1.0, 3: 0.1, 4: 0.7, 8: 0.5},
        "r2": {2: 1.2, 4: 0.9},
        "r3": {2: 0.9, 4: 0.8},
        "r4": {2: 1.5},
        "r5": {4: 0.1},
    }
    rule = SuccessiveHalving(min_step=2, eta=2)
    assert rule.rungs(9) == [2, 4, 8]
    # rung 2 keeps r3 and r1 of four; rung 4 keeps r5 and r1 of four; rung 8 has one run only
    assert rule.decide(curves, set(curves)) == {"r2": 2, "r4": 2, "r3": 4}
    assert rule.decide(curves, {"r1", "r3"}) == {"r3": 4}
    assert SuccessiveHalving(min_step=2, eta=5).decide(curves, set(curves)) == {}
    assert SuccessiveHalving(eta=2).decide(curves, set(curves)) == {"r2": 2, "r4": 2, "r3": 4}
    assert SuccessiveHalving(eta=2).rungs(20, first=5) == [5, 10, 20]
    assert isinstance(make_rule("halving"), SuccessiveHalving)
    with pytest.raises(SynthLabError, match="unknown early stopping rule"):
        make_rule("hyperband")


def _run(index: int, lr: float, losses: list[float], score: float | None = None) -> SweepRun:
    base = SFTConfig.from_toml(config_text())
    (point,) = grid(base, [{LR: lr}])
    point = type(point)(index, point.overrides, point.config)
    points = [{"name": "val.loss", "value": v, "step": 2 * i + 2} for i, v in enumerate(losses)]
    if score is not None:
        points.append({"name": "eval.score", "value": score, "step": 2 * len(losses)})
    return SweepRun(point, status="succeeded", live_points=points)


def test_the_table_ranks_by_the_chosen_metric_and_gains_eval_score() -> None:
    runs = [_run(0, 1e-3, [1.0, 0.6]), _run(1, 2e-3, [0.9, 0.5]), _run(2, 3e-3, [1.2, 0.8])]
    sweep = SweepResult(runs)
    table = sweep.table
    assert "eval.score" not in table.columns and LR in table.columns
    assert list(table[LR]) == [2e-3, 1e-3, 3e-3] and sweep.best is runs[1]

    runs[0].live_points.append({"name": "eval.score", "value": 0.9, "step": 4})
    runs[2].live_points.append({"name": "eval.score", "value": 0.7, "step": 4})
    assert list(sweep.table["eval.score"].fillna(-1)) == [-1, 0.9, 0.7]  # still by val.loss
    sweep.rank_by = "eval.score"  # higher is better; a run without a score goes last
    assert list(sweep.table.name) == [runs[0].name, runs[2].name, runs[1].name]
    assert sweep.best is runs[0] and sweep.best.config.hyperparameters.learning_rate == 1e-3
    assert "eval score" in sweep._repr_mimebundle_()["text/html"]
    assert len(sweep.plot(metric="eval.score").get_lines()) == 2

    runs[2].status, runs[2].stopped_step = "stopped early", 2
    assert list(sweep.table.stopped_step.fillna(0)) == [0, 2, 0]
    assert "stopped early @ 2" in sweep.text()


def test_diff_names_the_keys_two_runs_differ_in() -> None:
    base = SFTConfig.from_toml(config_text())
    points = grid(base, {LR: [1e-3, 2e-3], "training.lora.r": [4]})
    sweep = SweepResult([SweepRun(p) for p in points])
    assert sweep.diff(0, points[1].name) == {LR: (1e-3, 2e-3)}
    assert sweep.diff(0, 0) == {}
    with pytest.raises(SynthLabError, match="no run 'nope'"):
        sweep.diff(0, "nope")


def test_legend_swatches_are_colors_browsers_know() -> None:
    from matplotlib.colors import to_hex

    tab10 = ["blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan"]
    assert [run_color(i) for i in range(10)] == [to_hex(f"tab:{name}") for name in tab10]
    runs = [_run(i, 1e-3 * (i + 1), [1.0 - i / 10]) for i in range(4)]
    page = render_html(runs, "sweep", "val.loss")
    assert "tab:" not in page and "style='color:#d62728'" in page
