"""The varlen attention path: compute dtype before the kernel, no device sync per layer, and a
fallback that is logged once, never silent."""

from __future__ import annotations

import logging

import pytest

torch = pytest.importorskip("torch")

from synth_lab.train import attention  # noqa: E402


@pytest.fixture
def kernel_here(monkeypatch: pytest.MonkeyPatch) -> list:
    """Pretend this CPU has the varlen kernel; record what reaches it."""
    seen: list = []

    def record(query, key, value, cu, bounds, scaling, gqa):
        seen.append((query.dtype, key.dtype, value.dtype, list(bounds)))
        return None  # then the per-conversation loop computes the result

    monkeypatch.setattr(attention, "KERNEL_DEVICES", ("cpu",))
    monkeypatch.setattr(attention, "_cuda_varlen", record)
    monkeypatch.setattr(attention, "_reported", set())
    return seen


ROW = {"synth_lab_bounds": (0, 4, 10)}  # two packed conversations


def qkv(dtype_qk=torch.float32, dtype_v=torch.bfloat16, length=10):
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, 2, length, 8, generator=gen, dtype=dtype_qk)
    k = torch.randn(1, 2, length, 8, generator=gen, dtype=dtype_qk)
    v = torch.randn(1, 2, length, 8, generator=gen).to(dtype_v)
    return q, k, v


def test_q_and_k_reach_the_kernel_in_the_autocast_dtype(kernel_here: list) -> None:
    q, k, v = qkv()  # fp32 q/k from the norms and rotary, bf16 v: what autocast produces
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = attention.varlen_attention(
            torch.nn.Module().eval(), q, k, v, None, synth_lab_bounds=(0, 4, 10)
        )
    assert kernel_here == [(torch.bfloat16, torch.bfloat16, torch.bfloat16, [0, 4, 10])]
    assert out.shape == (1, 10, 2, 8) and out.dtype == torch.bfloat16


def test_a_fallback_is_logged_once(kernel_here: list, caplog: pytest.LogCaptureFixture) -> None:
    q, k, v = qkv(torch.float32, torch.float32)  # fp32 training on a GPU: no kernel
    with caplog.at_level(logging.WARNING, logger=attention.__name__):
        for _ in range(3):
            attention.varlen_attention(torch.nn.Module().eval(), q, k, v, None, **ROW)
    assert kernel_here == []
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "float32 inputs" in messages[0]


def test_a_failing_kernel_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(attention, "KERNEL_DEVICES", ("cpu",))
    monkeypatch.setattr(attention, "_cuda_varlen_ok", True)
    monkeypatch.setattr(attention, "_reported", set())
    q, k, v = qkv(torch.bfloat16, torch.bfloat16)
    with caplog.at_level(logging.WARNING, logger=attention.__name__):
        outs = [attention.varlen_attention(torch.nn.Module().eval(), q, k, v, None, **ROW)[0]]
        outs.append(attention.varlen_attention(torch.nn.Module().eval(), q, k, v, None, **ROW)[0])
    assert torch.equal(outs[0], outs[1])
    kernel = [r.getMessage() for r in caplog.records if "kernel" in r.getMessage()]
    assert len(kernel) <= 1  # once where the kernel fails here; never per call


def test_boundaries_are_read_once_per_row_not_per_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from synth_lab.train.data import pack
    from synth_lab.train.model import choose_precision, token_loss_sum

    cfg = Qwen2Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=2,
    )  # fmt: skip
    model = Qwen2ForCausalLM._from_config(cfg, attn_implementation=attention.register())
    examples = [_example(n) for n in (5, 9, 4)]
    batch = pack(examples)
    syncs = []
    real = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: syncs.append(1) or real(self))
    loss = token_loss_sum(model, batch, choose_precision("fp32", torch.device("cpu")), "cpu")
    assert torch.isfinite(loss) and syncs == []


def _example(n: int):
    from synth_lab.train.data import IGNORE_INDEX, Example

    ids = torch.arange(1, n + 1)
    targets = torch.cat([ids[1:], torch.tensor([IGNORE_INDEX])])
    return Example(ids, targets, n - 1)
