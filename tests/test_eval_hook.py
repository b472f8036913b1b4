"""The evaluation hook on the tiny model: ``eval.score`` in the run's metrics, in sweeps, and the
errors that stop a run before it trains. (Scorers on a real model: ``test_real_model.py``.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_train_support import config_text, records, shared_cache

pytest.importorskip("torch")

from synth_lab.errors import TrainingError
from synth_lab.train import run
from synth_lab.train.compare import Comparison
from synth_lab.train.evaluate import Evaluation, contains, exact_match, regex, resolve_scorer


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with shared_cache(tmp_path_factory) as path:
        yield path


def test_named_scorers() -> None:
    assert exact_match(" Paris. ", "Paris.") == 1.0 and exact_match("Paris", "Rome") == 0.0
    assert contains("It is PARIS, of course", "paris") == 1.0
    assert contains("Rome", "Paris") == 0.0
    assert resolve_scorer("regex:^Arr!")("Arr! yes", "") == 1.0
    assert resolve_scorer(re.compile(r"\d+"))("no digits", "") == 0.0
    assert regex("matey")("ahoy matey", "") == 1.0
    with pytest.raises(TrainingError, match="unknown evaluation scorer"):
        resolve_scorer("fuzzy")
    with pytest.raises(TrainingError, match="invalid regular expression"):
        resolve_scorer("regex:(")


def test_the_hook_records_eval_score(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def scorer(reply: str, reference: str) -> float:
        seen.append((reply, reference))
        return 0.25

    val = records(3, seed=5)
    out = tmp_path / "run"
    evaluation = Evaluation(scorer, max_new_tokens=4)
    result = run(config_text(), records(8), output_dir=out, max_steps=1, live=False,
                 validation_dataset=val, evaluation=evaluation)  # fmt: skip
    assert result.eval_score == 0.25
    assert result.to_dict()["eval_score"] == 0.25 and "eval.score 0.250" in repr(result)
    # One generation per record, scored against its last assistant turn.
    assert [ref for _, ref in seen] == [r["messages"][-1]["content"] for r in val]
    assert len(result.summary["eval"]["rows"]) == 3
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [p["value"] for p in lines if p["name"] == "eval.score"] == [0.25]


def test_bad_evaluation_fails_before_training(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="unknown evaluation scorer"):
        run(config_text(), records(4), output_dir=tmp_path / "a", max_steps=1, live=False,
            validation_dataset=records(2), evaluation="nearly")  # fmt: skip
    with pytest.raises(TrainingError, match="evaluation needs validation data"):
        run(config_text(), records(4), output_dir=tmp_path / "b", max_steps=1, live=False,
            evaluation="exact")  # fmt: skip
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_sweep_scores_every_run(tmp_path: Path) -> None:
    from synth_lab.sweep import run_sweep

    def sweep_with(scorer: Any, **kwargs: Any) -> Any:
        return run_sweep(
            config_text(),
            {"hyperparameters.learning_rate": [1e-3, 2e-3]},
            records(8),
            max_steps=1,
            output_dir=tmp_path / "sweep",
            validation_dataset=records(2, seed=3),
            evaluation=Evaluation(scorer, max_new_tokens=4),
            live=False,
            **kwargs,
        )

    sweep = sweep_with(lambda reply, ref: float(isinstance(reply, str)))
    assert [r.status for r in sweep.runs] == ["succeeded", "succeeded"]
    assert [r.result.eval_score for r in sweep.runs] == [1.0, 1.0]

    # Rerunning the finished sweep (a notebook run twice) reads every run back from disk:
    # scores, generations and the model folder, with nothing trained or generated again.
    scorer_calls: list[str] = []
    again = sweep_with(lambda reply, ref: scorer_calls.append(reply) or 0.0, resume=True)
    assert scorer_calls == []
    for old, new in zip(sweep.runs, again.runs, strict=True):
        assert new.result.eval_score == old.result.eval_score == 1.0
        assert new.result.summary["eval"] == json.loads(json.dumps(old.result.summary["eval"]))
        assert new.result.final_dir == old.result.final_dir


def test_comparison_marks_changed_words_and_escapes() -> None:
    comparison = Comparison(["<b>q</b>", "same"], ["Ahoy there", "x"], ["Arr! there", "x"])
    assert comparison.changed == [True, False]
    bundle = comparison._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    html = bundle["text/html"]
    assert "&lt;b&gt;q&lt;/b&gt;" in html and "<b>q</b>" not in html
    assert "<del>Ahoy</del> there" in html and "<ins>Arr!</ins> there" in html
    assert "1 of 2 replies changed" in html
    assert comparison.to_dict()["rows"][1] == {
        "prompt": "same", "base": "x", "finetuned": "x", "changed": False
    }  # fmt: skip


def test_evaluate_from_the_cli_and_the_magics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shell: Any
) -> None:
    from conftest import write_jsonl

    from synth_lab.cli import main

    val = write_jsonl(tmp_path / "val.jsonl", records(2, seed=3))
    train = write_jsonl(tmp_path / "train.jsonl", records(8))
    cfg = tmp_path / "c.toml"
    cfg.write_text(config_text(extra=f'[data]\nvalidation_path = "{val}"'))

    out = tmp_path / "cli"
    code = main(["train", str(cfg), "--local", "--dataset", str(train), "--max-steps", "1",
                 "--output-dir", str(out), "--evaluate", "contains", "--json"])  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and 0.0 <= result["eval_score"] <= 1.0
    assert json.loads((out / "eval.json").read_text())["records"] == 2
    # Only a local run generates: elsewhere the flag is an error, before anything runs.
    code = main(["train", str(cfg), "--dataset", str(train), "--evaluate", "exact"])
    assert code == 1 and "--evaluate scores local runs only" in capsys.readouterr().err

    trained = shell.run_line_magic(
        "sft_train",
        f"--local --config {cfg} --dataset {train} --max-steps 1 "
        f"--output-dir {tmp_path / 'magic'} --evaluate exact",
    )
    assert trained.eval_score is not None
    sweep = shell.run_line_magic(
        "sft_sweep",
        f"--config {cfg} --dataset {train} --max-steps 1 --output-dir {tmp_path / 'sweep'} "
        '--grid "hyperparameters.learning_rate=1e-3" --evaluate contains',
    )
    assert sweep.runs[0].result.eval_score is not None
    assert "eval.score" in sweep.table.columns
