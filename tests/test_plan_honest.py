"""The planner's static terms against the trainer's real tensors after one optimizer step.

For the embedded tiny model and a larger config-built model (Qwen2 shape: q/k/v biases, an
untied head), in full finetune, LoRA and QLoRA: the bytes of parameters (with 4-bit
quantization state), gradients and AdamW states counted from the tensors equal the estimate.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from synth_lab.config import SFTConfig
from synth_lab.plan import estimate

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

MODES = {
    "full_finetune": 'mode = "full_finetune"',
    "lora": 'mode = "lora"',
    "qlora": 'mode = "qlora"\nuse_qlora = true',
}


@pytest.fixture(scope="module")
def qwen2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-layer Qwen2 model (biases, untied head) saved with the tiny model's tokenizer."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    from synth_lab.models import tiny_chat_path

    tiny = tiny_chat_path()
    folder = tmp_path_factory.mktemp("qwen2-small")
    cfg = Qwen2Config(
        vocab_size=530,
        hidden_size=256,
        intermediate_size=704,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        tie_word_embeddings=False,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    for f in tiny.iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "special_tokens")):
            shutil.copy(f, folder / f.name)
    return folder


def _bytes(t: Any) -> int:
    return t.numel() * t.element_size()


def measured_after_one_step(config: SFTConfig) -> dict[str, int]:
    """Load as the trainer does, take one AdamW step, count the bytes of what stays alive."""
    from synth_lab.train.distributed import decay_parameter_names, param_groups
    from synth_lab.train.model import choose_precision, load_model

    device = torch.device("cpu")
    model, _ = load_model(config, device=device, precision=choose_precision("fp32", device))
    model.train()  # as the loop does (in eval mode bitsandbytes repacks 4-bit weights for CPUs)
    groups = param_groups(model, 0.0, decay_parameter_names(model))
    optimizer = torch.optim.AdamW(groups, lr=1e-3, fused=True)
    ids = torch.randint(0, 500, (1, 32))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    seen: set[int] = set()
    weights = 0
    for p in model.parameters():
        tensors = [p]
        state = getattr(p, "quant_state", None)
        if state is not None:  # 4-bit: absmax, code tables and the nested (8-bit absmax) state
            nested = vars(state)["state2"]
            tensors += [state.absmax, state.code, state.offset, nested.absmax, nested.code]
        for t in tensors:
            if t.untyped_storage().data_ptr() not in seen:
                seen.add(t.untyped_storage().data_ptr())
                weights += _bytes(t)
    grads = sum(_bytes(p.grad) for p in model.parameters() if p.grad is not None)
    moments = sum(  # the per-parameter step counter is a scalar, not a moment
        _bytes(v) for s in optimizer.state.values() for k, v in s.items() if k != "step"
    )
    return {"weights": weights, "gradients": grads, "optimizer": moments}


def estimated(config: SFTConfig, model_dir: Path | None) -> dict[str, int]:
    plan = estimate(config, device="cpu", shape=model_dir)
    static = [t for t in plan.terms if t.category in ("weights", "gradients", "optimizer")]
    return {
        c: sum(t.bytes for t in static if t.category == c)
        for c in ("weights", "gradients", "optimizer")
    }


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("model", ["tiny", "qwen2"])
def test_static_terms_equal_the_trainers_tensors(mode: str, model: str, qwen2_folder: Path) -> None:
    if mode == "qlora":
        pytest.importorskip("bitsandbytes")
    folder = qwen2_folder if model == "qwen2" else None
    name = str(folder) if folder else "synth-lab/tiny-chat"
    config = SFTConfig.from_toml(
        f'[job]\nmodel = "{name}"\n[training]\n{MODES[mode]}\n'
        "[hyperparameters]\nsequence_length = 32\nper_device_batch = 1\n"
    )
    measured = measured_after_one_step(config)
    assert measured["gradients"] > 0 and measured["optimizer"] == 2 * measured["gradients"]
    assert estimated(config, folder) == measured
