"""The chunked cross-entropy: the same loss and gradients as the plain one, less memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from synth_lab.train.loss import (  # noqa: E402
    CE_CHUNK_POSITIONS,
    linear_cross_entropy,
    loss_head,
    supports_chunked_loss,
)

ROOT = Path(__file__).parent.parent


def plain(hidden, weight, targets):
    return torch.nn.functional.cross_entropy(hidden @ weight.T, targets, reduction="sum")


@pytest.mark.parametrize("chunk", [7, 20, CE_CHUNK_POSITIONS])
def test_chunked_loss_and_gradients_equal_the_plain_ones(chunk: int) -> None:
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(20, 16, generator=gen, requires_grad=True)
    weight = torch.randn(50, 16, generator=gen, requires_grad=True)
    targets = torch.randint(0, 50, (20,), generator=gen)
    expected = plain(hidden, weight, targets)
    want_h, want_w = torch.autograd.grad(expected * 3.0, (hidden, weight))
    got = linear_cross_entropy(hidden, weight, targets, chunk=chunk)
    got_h, got_w = torch.autograd.grad(got * 3.0, (hidden, weight))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.allclose(got_h, want_h, atol=1e-5) and torch.allclose(got_w, want_w, atol=1e-5)


def test_ignored_targets_add_nothing_as_in_the_plain_loss() -> None:
    gen = torch.Generator().manual_seed(2)
    hidden = torch.randn(6, 8, generator=gen, requires_grad=True)
    weight = torch.randn(30, 8, generator=gen, requires_grad=True)
    targets = torch.tensor([3, -100, 7, -100, 0, 29])
    expected = plain(hidden, weight, targets)
    want = torch.autograd.grad(expected, (hidden, weight))
    got = linear_cross_entropy(hidden, weight, targets, chunk=4)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert all(
        torch.allclose(a, b, atol=1e-5)
        for a, b in zip(torch.autograd.grad(got, (hidden, weight)), want, strict=True)
    )


def test_a_frozen_output_layer_gets_no_gradient_and_bf16_stays_close() -> None:
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(12, 16, generator=gen, requires_grad=True)
    weight = torch.randn(40, 16, generator=gen).to(torch.bfloat16)  # a frozen bf16 base
    targets = torch.randint(0, 40, (12,), generator=gen)
    got = linear_cross_entropy(hidden, weight, targets, chunk=5, dtype=torch.bfloat16)
    got.backward()
    assert weight.grad is None and hidden.grad is not None
    assert got.item() == pytest.approx(plain(hidden, weight.float(), targets).item(), rel=2e-2)


def test_inside_a_model_the_loss_and_every_gradient_match(tiny_model) -> None:
    model = tiny_model
    assert supports_chunked_loss(model)
    ids = torch.randint(0, model.config.vocab_size, (1, 24))
    keep = torch.arange(4, 23)
    targets = ids[0, 5:24]

    def grads(loss):
        model.zero_grad()
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}

    logits = model(input_ids=ids, logits_to_keep=keep).logits[0]
    want_loss, want = grads(torch.nn.functional.cross_entropy(logits, targets, reduction="sum"))
    with loss_head(model, targets, chunk=6):
        got_loss, got = grads(model(input_ids=ids, logits_to_keep=keep).logits)
    assert got_loss == pytest.approx(want_loss, rel=1e-5)
    assert all(torch.allclose(got[n], want[n], atol=1e-5) for n in want)
    # The head is restored: logits again.
    assert model(input_ids=ids, logits_to_keep=keep).logits[0].shape == logits.shape


@pytest.fixture
def tiny_model():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False,
    )  # fmt: skip
    return Qwen2ForCausalLM(cfg)


def test_the_benchmark_measures_a_lower_peak_for_the_chunked_loss(tmp_path: Path) -> None:
    out = tmp_path / "ce.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "chunked_ce.py"), "--smoke"]
    subprocess.run([*command, "--out", str(out)], check=True, timeout=300, cwd=ROOT)
    result = json.loads(out.read_text())
    assert result["chunk_positions"] == CE_CHUNK_POSITIONS
    assert result["loss_rel_diff"] < 1e-5
    # The plain loss holds the row's logits and their gradient: at least one more such array.
    assert result["chunked"]["peak_mb"] < result["plain"]["peak_mb"] - result["logits_mb"]
