"""The config model: loading, every class of bad config, replace, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GOLDEN, SEEDS

from synth_lab.config import ConfigError, SFTConfig, load_config

MINIMAL = '[job]\nmodel = "Qwen/Qwen3-0.6B"\n'


def problems_of(text: str) -> list:
    with pytest.raises(ConfigError) as info:
        SFTConfig.from_toml(text)
    return info.value.problems


def only_error(text: str):
    errors = [p for p in problems_of(text) if p.severity == "error"]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_configs_load_without_problems(seed: str) -> None:
    config = SFTConfig.from_file(GOLDEN / f"{seed}.toml")
    assert config.job.model.startswith("Qwen/")
    assert config.warnings == ()
    assert config.world_size == 4


def test_derived_values_of_the_minimal_seed() -> None:
    config = SFTConfig.from_file(GOLDEN / "seed_minimal_fft_qwen3_4b.toml")
    assert config.global_batch == 2 * 64 * 4
    assert config.per_device_batch == 2
    assert config.gradient_accumulation_steps == 64
    assert config.precision == "bf16"
    assert config.strategy == "DeepSpeed ZeRO-3"
    assert config.train_mode == "full_finetune"
    assert config.validation.eval_steps == 20


def test_minimal_config_defaults() -> None:
    config = SFTConfig.from_toml(MINIMAL)
    assert config.hyperparameters.n_epochs == 1
    assert config.world_size == 1
    assert config.global_batch == 1
    assert config.strategy == "single device"
    assert config.lora.r == 16 and config.lora.alpha == 32 and config.lora.dropout == 0.05
    assert config.lora.target_modules == "all-linear"


def test_unknown_key_has_location_and_did_you_mean() -> None:
    problem = only_error(MINIMAL + "[hyperparameters]\nn_epochs = 1\nlearning_rat = 1e-5\n")
    assert problem.path == "hyperparameters.learning_rat"
    assert (problem.line, problem.col) == (5, 1)
    assert "learning_rate" in problem.hint
    assert problem.code == "unknown_key"


def test_unknown_section_suggests_the_right_one() -> None:
    problem = only_error(MINIMAL + '\n[compte]\ngpu_type = "H100"\n')
    assert problem.path == "compte"
    assert problem.line == 4
    assert "[compute]" in problem.hint


def test_unknown_nested_key_in_validation_table() -> None:
    problem = only_error(MINIMAL + "[training.validation]\neval_step = 5\n")
    assert problem.path == "training.validation.eval_step"
    assert "eval_steps" in problem.hint


def test_invalid_toml_reports_line_col_and_arithmetic_hint() -> None:
    problem = only_error(MINIMAL + "[hyperparameters]\nsequence_length = 2048*2\n")
    assert problem.code == "invalid_toml"
    assert problem.line == 4
    assert problem.col == 23
    assert "arithmetic" in problem.hint


def test_duplicate_table_is_invalid_toml() -> None:
    problem = only_error(MINIMAL + "[compute]\ngpu_count = 1\n[compute]\nnodes = 1\n")
    assert problem.code == "invalid_toml" and problem.line == 5


@pytest.mark.parametrize(
    ("snippet", "path", "code"),
    [
        ("[hyperparameters]\nn_epochs = 0", "hyperparameters.n_epochs", "out_of_range"),
        (
            "[hyperparameters]\nlearning_rate = -1.0",
            "hyperparameters.learning_rate",
            "out_of_range",
        ),
        ("[hyperparameters]\nwarmup_ratio = 1.5", "hyperparameters.warmup_ratio", "out_of_range"),
        (
            '[hyperparameters]\nper_device_batch = "two"',
            "hyperparameters.per_device_batch",
            "wrong_type",
        ),
        ('[hyperparameters]\ntrain_kind = "pft"', "hyperparameters.train_kind", "invalid_choice"),
        (
            "[hyperparameters.parallelism]\ndeepspeed_stage = 4",
            "hyperparameters.parallelism.deepspeed_stage",
            "out_of_range",
        ),
        (
            '[hyperparameters.parallelism]\nfsdp_sharding_strategy = "full"',
            "hyperparameters.parallelism.fsdp_sharding_strategy",
            "invalid_choice",
        ),
        ("[compute]\ngpu_count = 0", "compute.gpu_count", "out_of_range"),
        ('[training]\nuse_qlora = "maybe"', "training.use_qlora", "wrong_type"),
        (
            '[hyperparameters.parallelism]\nbf16 = "yes"',
            "hyperparameters.parallelism.bf16",
            "wrong_type",
        ),
        ('[training]\nuse_qlora = "true"', "training.use_qlora", "wrong_type"),
        ("[training.validation]\nenabled = 1", "training.validation.enabled", "wrong_type"),
        ("[training.lora]\ntarget_modules = 3", "training.lora.target_modules", "wrong_type"),
        (
            '[training.validation]\nevaluation_strategy = "step"',
            "training.validation.evaluation_strategy",
            "invalid_choice",
        ),
    ],
)
def test_bad_values_are_located(snippet: str, path: str, code: str) -> None:
    problem = only_error(MINIMAL + snippet + "\n")
    assert problem.path == path
    assert problem.code == code
    assert problem.line == MINIMAL.count("\n") + 2
    assert problem.hint


def test_missing_model_points_at_the_job_table() -> None:
    problem = only_error('[job]\ndata = "x.jsonl"\n')
    assert problem.path == "job.model"
    assert problem.line == 1
    assert "model" in problem.hint


def test_missing_job_table() -> None:
    problem = only_error("[hyperparameters]\nn_epochs = 1\n")
    assert problem.path == "job"
    assert problem.line is None


def test_section_that_is_not_a_table() -> None:
    problem = only_error('training = "lora"\n' + MINIMAL)
    assert problem.code == "wrong_type"
    assert problem.path == "training" and problem.line == 1


def test_all_problems_are_collected_at_once() -> None:
    text = (
        '[job]\nmodel = "m"\n[compte]\nx = 1\n[hyperparameters]\nlearning_rat = 1\n'
        'n_epochs = 0\ntrain_kind = "x"\n'
    )
    problems = problems_of(text)
    assert [p.path for p in problems] == [
        "compte",
        "hyperparameters.learning_rat",
        "hyperparameters.n_epochs",
        "hyperparameters.train_kind",
    ]
    assert str(problems_of(text)[0].line) in str(ConfigError("t", problems))


@pytest.mark.parametrize(
    ("snippet", "path"),
    [
        (
            "[compute]\ngpu_count = 4\n[hyperparameters]\nper_device_batch = 2\n"
            "gradient_accumulation_steps = 4\nglobal_batch = 64",
            "hyperparameters.global_batch",
        ),
        ("[compute]\ngpu_count = 4\nnodes = 2\ngpus_per_node = 4", "compute.gpu_count"),
        (
            "[hyperparameters.parallelism]\nbf16 = true\nfp16 = true",
            "hyperparameters.parallelism.fp16",
        ),
        (
            "[hyperparameters.parallelism]\nuse_deepspeed = true\nfsdp = true",
            "hyperparameters.parallelism.fsdp",
        ),
        (
            '[training]\nuse_qlora = true\n[hyperparameters]\ntrain_kind = "fft"',
            "training.use_qlora",
        ),
        (
            '[training]\nmode = "lora"\n[hyperparameters]\ntrain_kind = "fft"',
            "hyperparameters.train_kind",
        ),
    ],
)
def test_consistency_rules(snippet: str, path: str) -> None:
    problem = only_error(MINIMAL + snippet + "\n")
    assert problem.path == path
    assert problem.code == "inconsistent"
    assert problem.line is not None


def test_topology_disagreement_is_only_a_warning() -> None:
    config = SFTConfig.from_toml(
        MINIMAL + "[compute]\ngpu_count = 4\nnodes = 1\n[data.topology]\ntotal_gpus = 8\n"
    )
    (warning,) = config.warnings
    assert warning.severity == "warning"
    assert warning.path == "data.topology.total_gpus"
    assert warning.line == 7


def test_unknown_parallelism_key_is_forwarded_with_a_warning() -> None:
    config = SFTConfig.from_toml(MINIMAL + "[hyperparameters.parallelism]\nzero_confg = 1\n")
    (warning,) = config.warnings
    assert warning.code == "unknown_key" and warning.severity == "warning"
    assert config.hyperparameters.parallelism is not None
    assert config.hyperparameters.parallelism.model_dump()["zero_confg"] == 1


def test_tags_and_weight_decay_are_accepted() -> None:
    config = SFTConfig.from_toml(
        MINIMAL + '[tags]\nteam = "nlp"\n[hyperparameters]\nweight_decay = 0.1\n'
    )
    assert config.tags == {"team": "nlp"}
    assert config.hyperparameters.weight_decay == 0.1


def test_lora_and_qlora_modes() -> None:
    lora = SFTConfig.from_toml(
        MINIMAL + '[hyperparameters]\ntrain_kind = "peft"\n[training.lora]\nr = 8\n'
    )
    assert lora.train_mode == "lora" and lora.lora.r == 8 and lora.lora.alpha == 32
    qlora = SFTConfig.from_toml(MINIMAL + "[training]\nuse_qlora = true\n")
    assert qlora.train_mode == "qlora"


def test_gpu_type_is_needed_for_remote_only() -> None:
    config = SFTConfig.from_toml(MINIMAL)
    codes = [p.code for p in config.remote_problems()]
    assert "missing_gpu_type" in codes
    with pytest.raises(ConfigError, match="gpu_type"):
        config.check_remote()
    ready = SFTConfig.from_toml(MINIMAL + '[compute]\ngpu_type = "H100"\ngpu_count = 1\n')
    assert ready.remote_problems() == []


def test_replace_returns_a_new_validated_config_and_keeps_comments() -> None:
    config = SFTConfig.from_file(GOLDEN / "seed_minimal_fft_qwen3_4b.toml")
    changed = config.replace({"hyperparameters.learning_rate": 1e-5})
    assert changed.hyperparameters.learning_rate == 1e-5
    assert config.hyperparameters.learning_rate == 8e-6
    assert "# required by backend" in changed.to_toml()
    keyword = config.replace(hyperparameters__n_epochs=3, training__lora__r=4)
    assert keyword.hyperparameters.n_epochs == 3 and keyword.lora.r == 4
    removed = config.replace({"data.topology": None})
    assert removed.data is None or removed.data.topology is None
    assert "container_count" not in removed.to_toml()


def test_replace_validates() -> None:
    config = SFTConfig.from_toml(MINIMAL)
    with pytest.raises(ConfigError) as info:
        config.replace({"hyperparameters.learning_rate": -1.0})
    assert info.value.problems[0].path == "hyperparameters.learning_rate"


def test_config_is_immutable() -> None:
    config = SFTConfig.from_toml(MINIMAL)
    with pytest.raises(Exception, match="frozen"):
        config.hyperparameters.n_epochs = 5  # type: ignore[misc]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    config = SFTConfig.from_file(GOLDEN / "seed_qwen3_32b_fsdp_4xh100.toml")
    target = config.save(tmp_path / "sub" / "cfg.toml")
    assert target.read_text() == (GOLDEN / "seed_qwen3_32b_fsdp_4xh100.toml").read_text()
    assert SFTConfig.from_file(target) == config
    assert not [p for p in target.parent.iterdir() if p.name != "cfg.toml"]


def test_from_dict_and_load_config() -> None:
    config = SFTConfig.from_dict({"job": {"model": "m"}, "hyperparameters": {"n_epochs": 2}})
    assert config.hyperparameters.n_epochs == 2
    assert "n_epochs = 2" in config.to_toml()
    assert load_config(MINIMAL).job.model == "Qwen/Qwen3-0.6B"
    assert load_config(config) is config


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        SFTConfig.from_file(tmp_path / "nope.toml")


def test_keys_inside_inline_tables_are_located() -> None:
    problem = only_error(MINIMAL + "[training]\nlora = { r = 8, alpah = 16 }\n")
    assert problem.path == "training.lora.alpah"
    assert (problem.line, problem.col) == (4, 17)
    assert "alpha" in problem.hint


# -- shapes real configs use (older spellings the reference client still accepts) -------------


def test_world_size_is_accepted_and_checked() -> None:
    config = SFTConfig.from_toml(
        MINIMAL + "[compute]\ngpu_count = 2\n[hyperparameters]\nworld_size = 2\n"
    )
    assert config.warnings == ()
    mismatch = SFTConfig.from_toml(
        MINIMAL + "[compute]\ngpu_count = 2\n[hyperparameters]\nworld_size = 8\n"
    )
    (warning,) = mismatch.warnings
    assert warning.path == "hyperparameters.world_size" and warning.line == 6


def test_old_lora_spellings_resolve_to_training_lora() -> None:
    config = SFTConfig.from_toml(
        MINIMAL + "[hyperparameters]\nlora_rank = 8\nlora_alpha = 16\nlora_dropout = 0.1\n"
        'lora_target_modules = ["all-linear"]\n'
    )
    assert config.train_mode == "lora"
    assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (8, 16, 0.1)
    assert config.lora.target_modules == "all-linear"
    assert {w.code for w in config.warnings} == {"alias"}
    assert [w.line for w in config.warnings] == [4, 5, 6, 7]


def test_training_lora_wins_over_the_deprecated_table() -> None:
    config = SFTConfig.from_toml(MINIMAL + "[lora]\nr = 4\nalpha = 8\n[training.lora]\nr = 32\n")
    assert (config.lora.r, config.lora.alpha) == (32, 8)
    assert [w.path for w in config.warnings] == ["lora"]
    assert config.to_dict()["lora"] == {"r": 4, "alpha": 8}


def test_list_all_linear_becomes_the_string_peft_understands() -> None:
    config = SFTConfig.from_toml(MINIMAL + '[training.lora]\ntarget_modules = ["all-linear"]\n')
    assert config.lora.target_modules == "all-linear"


def test_type_sft_is_accepted_other_kinds_are_not() -> None:
    assert SFTConfig.from_toml('type = "sft"\n' + MINIMAL).type == "sft"
    problem = only_error('type = "rl"\n' + MINIMAL)
    assert problem.path == "type" and problem.line == 1


@pytest.mark.parametrize(
    ("algorithm", "ok"),
    [
        (("offline", "sft", "fft"), True),
        (("offline", "supervised_finetune", "fft"), True),
        (("Offline ", "SFT", "lora"), True),
        (("offline", "sft", "qlora"), False),
        (("online", "policy_gradient", "gspo"), False),
    ],
)
def test_algorithm_must_be_an_sft_one(algorithm: tuple[str, str, str], ok: bool) -> None:
    kind, method, variety = algorithm
    text = f'[algorithm]\ntype = "{kind}"\nmethod = "{method}"\nvariety = "{variety}"\n' + MINIMAL
    if ok:
        assert SFTConfig.from_toml(text).algorithm is not None
    else:
        assert only_error(text).path == "algorithm"


def test_compute_topology_and_policy_are_accepted() -> None:
    config = SFTConfig.from_toml(
        MINIMAL + "[compute]\ngpu_count = 1\n[compute.topology]\nnodes = 1\n[policy]\nx = 1\n"
    )
    assert config.compute is not None and config.compute.topology == {"nodes": 1}
    assert [w.path for w in config.warnings] == ["policy"]


def test_full_finetune_mode_with_peft_train_kind_warns_which_wins() -> None:
    config = SFTConfig.from_toml(
        MINIMAL + '[training]\nmode = "full_finetune"\n[hyperparameters]\ntrain_kind = "peft"\n'
    )
    assert config.train_mode == "lora"
    [warning] = [w for w in config.warnings if w.path == "training.mode"]
    assert warning.severity == "warning"
    assert "train_kind wins" in warning.message and "LoRA" in warning.message


def test_the_card_shows_what_a_default_resolves_to() -> None:
    card = SFTConfig.from_toml(MINIMAL)._repr_mimebundle_()
    for text in (card["text/plain"], card["text/html"]):
        assert "2e-05 (default)" in text  # the full-finetune learning rate
        assert "warmup ratio 0 (default)" in text
        assert "2048 (default)" in text
    lora = SFTConfig.from_toml(MINIMAL + '[hyperparameters]\ntrain_kind = "peft"\n')
    assert "0.0002 (default)" in lora._repr_mimebundle_()["text/plain"]
