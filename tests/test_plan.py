"""The launch planner: reference cases, exact shapes, suggestions, time/cost and where it shows.

No torch here: the planner works from shapes and arithmetic (``test_plan_honest.py`` checks
its static terms against the trainer's real tensors).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GOLDEN, chat, write_jsonl

from synth_lab.config import SFTConfig
from synth_lab.errors import ConfigError
from synth_lab.plan import Plan, estimate, resolve_shape
from synth_lab.plan.timecost import tokens_from_characters

SEED_32B = GOLDEN / "seed_qwen3_32b_fsdp_4xh100.toml"
LORA = {"training.mode": "lora", "hyperparameters.train_kind": "peft"}


def config(model: str, gpus: int, *, fsdp: bool = False, checkpointing: bool = False) -> str:
    par = f"fsdp = {str(fsdp).lower()}\nactivation_checkpointing = {str(checkpointing).lower()}"
    return (
        f'[job]\nmodel = "{model}"\n[compute]\ngpu_type = "H100"\ngpu_count = {gpus}\n'
        "[hyperparameters]\nper_device_batch = 1\nsequence_length = 4096\n"
        f"[hyperparameters.parallelism]\nbf16 = true\n{par}\n"
    )


# -- the reference cases ---------------------------------------------------------------------


def test_seed_32b_full_finetune_on_4_h100_with_fsdp_does_not_fit() -> None:
    plan = estimate(SEED_32B)
    assert plan.setup.sharding == "full_shard" and plan.setup.world_size == 4
    assert not plan.fits and plan.headroom < 0
    # Sharded fp32 weights, gradients and AdamW states alone: 16 B × 32.8 B params / 4 GPUs.
    static = sum(plan.per_gpu[c] for c in ("gradients", "optimizer")) + 4 * plan.shape.params // 4
    assert static == 16 * plan.shape.params // 4 > 130e9
    assert plan.best is not None and plan.best.fits


def test_32b_lora_on_4_h100_with_fsdp_and_checkpointing_fits() -> None:
    cfg = SFTConfig.from_file(SEED_32B).replace(LORA)
    assert cfg.parallelism.activation_checkpointing and cfg.parallelism.fsdp
    plan = estimate(cfg)
    assert plan.setup.mode == "lora" and plan.fits
    assert plan.suggestions == []


def test_0_6b_full_finetune_on_one_h100_fits() -> None:
    plan = estimate(config("Qwen/Qwen3-0.6B", 1))
    assert plan.fits and plan.setup.world_size == 1 and plan.setup.mode == "full_finetune"


def test_70b_full_finetune_on_8_h100_does_not_fit_even_sharded() -> None:
    plan = estimate(config("meta-llama/Llama-3.1-70B-Instruct", 8, fsdp=True, checkpointing=True))
    assert plan.setup.sharding == "full_shard" and not plan.fits


# -- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "params"),
    [  # totals as torch counts them (a tied head once), from the published checkpoints
        ("Qwen/Qwen3-0.6B", 596_049_920),
        ("Qwen/Qwen2.5-7B-Instruct", 7_615_616_512),
        ("meta-llama/Llama-3.2-1B-Instruct", 1_235_814_400),
        ("meta-llama/Llama-3.1-8B-Instruct", 8_030_261_248),
        ("meta-llama/Llama-3.1-70B-Instruct", 70_553_706_496),
        ("mistralai/Mistral-7B-Instruct-v0.3", 7_248_023_552),
        ("google/gemma-2-2b-it", 2_614_341_888),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", 134_515_008),
    ],
)
def test_parameter_counts_match_the_published_models(model: str, params: int) -> None:
    assert resolve_shape(model).params == params


def test_moe_counts_every_expert_but_a_token_uses_a_few() -> None:
    shape = resolve_shape("Qwen/Qwen3-30B-A3B")
    assert 30.4e9 < shape.params < 30.6e9 and 3.2e9 < shape.active_params < 3.4e9


def test_base_and_instruct_spellings_share_a_shape() -> None:
    assert (
        resolve_shape("Qwen/Qwen2.5-7B").params == resolve_shape("qwen/qwen2.5-7b-instruct").params
    )


def test_a_local_config_json_beats_the_table(tmp_path: Path) -> None:
    cfg = {
        "model_type": "llama", "hidden_size": 128, "intermediate_size": 256,
        "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 1000, "tie_word_embeddings": False,
    }  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    shape = resolve_shape(str(tmp_path))
    attn = 128 * 128 * 2 + 2 * 128 * 64
    assert shape.params == 2 * 1000 * 128 + 3 * (attn + 3 * 128 * 256 + 2 * 128) + 128
    assert shape.source == f"{tmp_path.name}/config.json"


def test_an_unknown_model_says_how_to_pass_a_folder() -> None:
    with pytest.raises(ConfigError) as exc:
        estimate('[job]\nmodel = "someone/mystery-7b"\n')
    assert "mystery-7b" in str(exc.value)
    assert "config.json" in exc.value.problems[0].hint


def test_an_unknown_gpu_type_is_a_config_error_unless_memory_is_given() -> None:
    with pytest.raises(ConfigError, match="TPU9"):
        estimate(config("Qwen/Qwen3-0.6B", 1), gpu_type="TPU9")
    plan = estimate(config("Qwen/Qwen3-0.6B", 1), gpu_type="TPU9", gpu_memory=16 << 30)
    assert plan.gpu.memory == 16 << 30


# -- terms, suggestions, time and cost ----------------------------------------------------------


def test_every_term_says_how_and_the_totals_add_up() -> None:
    plan = estimate(SEED_32B)
    assert all(t.how and t.bytes >= 0 for t in plan.terms)
    cats = ("weights", "gradients", "optimizer", "activations", "other")
    assert (
        plan.per_gpu["total"]
        == sum(plan.per_gpu[c] for c in cats)
        == sum(t.bytes for t in plan.terms)
    )


SMALL_GPU_8B = (
    '[job]\nmodel = "Qwen/Qwen3-8B"\n[compute]\ngpu_type = "A10G"\ngpu_count = 1\n'
    "[hyperparameters]\nper_device_batch = 2\ngradient_accumulation_steps = 4\n"
)


@pytest.mark.parametrize("source", [SEED_32B, SMALL_GPU_8B], ids=["seed-32b", "8b-on-a10g"])
def test_suggestions_are_valid_overrides_and_their_totals_are_real(source: object) -> None:
    base = SFTConfig.from_file(source) if isinstance(source, Path) else SFTConfig.from_toml(source)
    plan = estimate(base)
    assert any(s.fits for s in plan.suggestions)
    for s in plan.suggestions:
        again = estimate(base.replace(s.overrides), suggest=False)
        assert (again.per_gpu["total"], again.fits) == (s.per_gpu_total, s.fits)
        assert again.config.global_batch == base.global_batch


def test_checkpointing_and_smaller_micro_batches_shrink_activations() -> None:
    text = config("Qwen/Qwen3-8B", 1).replace("per_device_batch = 1", "per_device_batch = 4")
    plan = estimate(text, gpu_type="A100-40GB")
    assert not plan.fits
    kinds = {k for s in plan.suggestions for k in s.overrides}
    assert "hyperparameters.parallelism.activation_checkpointing" in kinds
    with_ckpt = estimate(SFTConfig.from_toml(text).replace(
        {"hyperparameters.parallelism.activation_checkpointing": True}
    ))  # fmt: skip
    assert with_ckpt.per_gpu["activations"] < plan.per_gpu["activations"] / 4


def test_logits_chunk_bounds_the_loss_buffer() -> None:
    chunked = estimate(SEED_32B, logits_chunk=1024)
    whole = estimate(SEED_32B, logits_chunk=None, tokens={"tokens": 1000, "trained_tokens": 500})
    one, all_ = (next(t for t in p.terms if t.name == "logits and loss") for p in (chunked, whole))
    assert one.bytes == 1024 * 151936 * 14
    assert all_.bytes == 2048 * 151936 * 14  # half of the 4096 positions are supervised
    assert "all 2,048 supervised positions" in all_.how


def test_time_and_cost_from_a_dataset_estimated_from_characters(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "t.jsonl", [chat("x" * 400, "y" * 400)] * 50)
    plan = estimate(SEED_32B, data)
    t, c = plan.time, plan.cost
    assert "characters" in t["tokens_how"] and t["tokens"] == round(50 * (800 + 32) / 4)
    assert t["flops"] == t["tokens"] * t["flops_per_token"]
    assert t["hours"] == pytest.approx(t["flops"] / (4 * 989e12 * 0.4) / 3600)
    assert c["usd"] == pytest.approx(t["hours"] * 4 * c["price_per_gpu_hour"])
    cheaper = estimate(SEED_32B, data, price_per_gpu_hour=1.0, mfu=0.5)
    assert cheaper.cost["usd"] < c["usd"] and cheaper.time["assumed_mfu"] == 0.5


def test_estimate_imports_no_torch() -> None:
    code = (
        f"from synth_lab.plan import estimate\nestimate({str(SEED_32B)!r})\nimport sys\n"
        "print(sorted(m for m in ('torch', 'transformers', 'pandas', 'peft') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_display_is_html_and_text_and_escapes() -> None:
    plan = estimate(config("Qwen/Qwen3-0.6B", 1))
    bundle = plan._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert "Fits" in bundle["text/plain"] and "<script" not in bundle["text/html"]
    evil = estimate(SEED_32B, gpu_type="<b>x</b>", gpu_memory=1 << 40)
    assert "<b>x</b>" not in evil.html() and "&lt;b&gt;x&lt;/b&gt;" in evil.html()
    # JupyterLab typesets $...$ in HTML output as math: the cost's dollars are entities.
    costed = estimate(config("Qwen/Qwen3-0.6B", 1), tokens=1_000_000)._repr_mimebundle_()
    assert "$" in costed["text/plain"] and "$" not in costed["text/html"]
    assert "&#36;" in costed["text/html"]


# -- where it shows ------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synth_lab.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_plan_json_is_exactly_the_plan_object() -> None:
    out = run_cli("plan", str(SEED_32B), "--json")
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    assert {
        "model",
        "per_gpu",
        "gpu_memory",
        "fits",
        "headroom",
        "suggestions",
        "time",
        "cost",
    } <= set(obj)
    assert {"id", "params"} <= set(obj["model"]) and obj["fits"] is False
    assert set(obj["per_gpu"]) == {
        "weights",
        "gradients",
        "optimizer",
        "activations",
        "other",
        "total",
    }
    assert all(type(v) is int for v in obj["per_gpu"].values())
    assert type(obj["gpu_memory"]) is int and type(obj["headroom"]) is int
    s = obj["suggestions"][0]
    assert (
        set(s) == {"overrides", "per_gpu_total", "fits", "why"} and type(s["per_gpu_total"]) is int
    )
    assert {"tokens", "flops", "assumed_mfu", "hours"} <= set(obj["time"])
    assert {"usd", "price_per_gpu_hour"} <= set(obj["cost"])


def test_cli_plan_exit_codes(tmp_path: Path) -> None:
    small = tmp_path / "small.toml"
    small.write_text(config("Qwen/Qwen3-0.6B", 1))
    fits = run_cli("plan", str(small), "--gpu-type", "H200")
    assert fits.returncode == 0 and "Fits:" in fits.stdout and "H200" in fits.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[job]\nmodel = "Qwen/Qwen3-0.6B"\n[hyperparameters]\nn_epochs = 0\n')
    assert run_cli("plan", str(bad)).returncode == 2
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[job]\nmodel = "someone/mystery-7b"\n')
    out = run_cli("plan", str(unknown), "--json")
    assert out.returncode == 2 and "mystery-7b" in out.stderr
    assert json.loads(out.stdout)["errors"]


def test_dry_run_shows_the_plan_loudly_when_it_does_not_fit(train_jsonl: Path) -> None:
    from synth_lab.job.dryrun import dry_run
    from synth_lab.job.report import dry_run_html

    run = dry_run(SEED_32B, train_jsonl)
    assert isinstance(run.plan, Plan) and not run.plan.fits
    text = run.format_text()
    assert "!!! DOES NOT FIT" in text and "over by" in text and "Best fix" in text
    assert run.to_dict()["plan"]["fits"] is False
    assert "Launch plan" in dry_run_html(run) and "DOES NOT FIT" in dry_run_html(run)
    other = dry_run(SEED_32B.read_text().replace("Qwen/Qwen3-32B", "someone/mystery"), train_jsonl)
    assert other.plan is None and "mystery" in (other.plan_error or "")
    assert other.to_dict()["plan"] is None and "not available" in other.format_text()


def test_magic_returns_the_plan(shell, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(config("Qwen/Qwen3-0.6B", 1))
    plan = shell.run_line_magic("sft_plan", f"--config {path} --gpu-type L4 --name p")
    assert isinstance(plan, Plan) and plan.gpu.name == "L4" and shell.user_ns["p"] is plan


def test_config_editor_panel_follows_edits() -> None:
    pytest.importorskip("ipywidgets")
    from synth_lab.widgets import ConfigEditor

    editor = ConfigEditor(SFTConfig.from_file(SEED_32B))
    assert editor.plan_panel.plan is not None and not editor.plan_panel.plan.fits
    assert "DOES NOT FIT" in editor.plan_panel.view.value
    editor.set("training.mode", "lora")
    editor.set("hyperparameters.train_kind", "peft")
    assert editor.config.train_mode == "lora"
    assert editor.plan_panel.plan.fits and "Fits" in editor.plan_panel.view.value
    editor.set("job.model", "someone/mystery")
    assert editor.plan_panel.plan is None and "mystery" in editor.plan_panel.view.value


def test_dry_run_times_only_the_examples_it_uses(tmp_path: Path) -> None:
    from synth_lab.job.dryrun import dry_run

    data = write_jsonl(tmp_path / "t.jsonl", [chat("x" * 400, "y" * 400)] * 40)
    whole, first = dry_run(SEED_32B, data), dry_run(SEED_32B, data, examples=10)
    assert whole.plan.time["tokens"] == 4 * first.plan.time["tokens"] > 0
    # Counted in the validation pass; the same figure as reading the file for it.
    assert whole.plan.time["tokens"] == tokens_from_characters(data).per_epoch


@pytest.mark.parametrize(
    ("parallelism", "params", "grads", "optim"),
    [
        ("use_deepspeed = true\ndeepspeed_stage = 1", 1, 1, 8),
        ("use_deepspeed = true\ndeepspeed_stage = 2", 1, 8, 8),
        ("use_deepspeed = true\ndeepspeed_stage = 3", 8, 8, 8),
        ('fsdp = true\nfsdp_sharding_strategy = "shard_grad_op"', 1, 8, 8),
        ('fsdp = true\nfsdp_sharding_strategy = "full_shard"', 8, 8, 8),
        ("fsdp = false", 1, 1, 1),
    ],
)
def test_sharding_divides_what_it_shards(
    parallelism: str, params: int, grads: int, optim: int
) -> None:
    text = config("Qwen/Qwen3-8B", 8).replace("fsdp = false", parallelism)
    plan = estimate(text)
    terms = {t.name: t.bytes for t in plan.terms}
    n = plan.shape.params
    assert terms["fp32 weights"] == 4 * n // params
    assert terms["gradients"] == 4 * n // grads
    assert terms["optimizer states"] == 8 * n // optim
    assert ("DDP buckets" in terms) == (parallelism == "fsdp = false")


def test_8bit_adamw_and_cpu_offload() -> None:
    eight = estimate(SEED_32B, optimizer="adamw_8bit")
    assert eight.per_gpu["optimizer"] == 2 * eight.shape.params // 4
    offload = estimate(
        SFTConfig.from_file(SEED_32B).replace({"hyperparameters.parallelism.cpu_offload": True})
    )
    assert offload.per_gpu["optimizer"] == offload.per_gpu["gradients"] == 0 and offload.fits


def test_fused_projections_count_once_per_lora_pair() -> None:
    phi = resolve_shape("microsoft/Phi-3-mini-4k-instruct")
    assert 3.82e9 < phi.params < 3.83e9  # 3,821,079,552 in the published checkpoint
    assert phi.lora_params(8, "all-linear") == 32 * 8 * (
        3072 + 9216 + 3072 + 3072 + 3072 + 16384 + 8192 + 3072
    )


def test_qlora_under_fsdp_keeps_the_4bit_weights_whole_on_every_gpu() -> None:
    # The trainer leaves 4-bit weights out of FSDP's sharding (their quantization state is
    # not a tensor FSDP can split); only the other frozen parameters are divided.
    qlora = {**LORA, "training.mode": "qlora", "training.use_qlora": True}
    base = SFTConfig.from_toml(config("Qwen/Qwen3-8B", 1, fsdp=True)).replace(qlora)
    sharded = SFTConfig.from_toml(config("Qwen/Qwen3-8B", 8, fsdp=True)).replace(qlora)
    one, eight = ({t.name: t for t in estimate(c).terms} for c in (base, sharded))
    shape = estimate(base).shape
    lin = shape.layers * sum(a * b for _, a, b in shape.projections())
    rest = 4 * (shape.params - lin)  # embeddings, norms, head: fp32, sharded
    assert one["frozen base"].bytes - eight["frozen base"].bytes == rest - rest // 8
    assert "on every GPU" in eight["frozen base"].how
    assert eight["LoRA adapters"].bytes == one["LoRA adapters"].bytes // 8
