"""Encoding, padding-free packing and step planning of the trainer (no training loop here)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import pytest
from test_train_support import records, shared_cache

torch = pytest.importorskip("torch")

from synth_lab.config import load_config  # noqa: E402
from synth_lab.data.chat import IGNORE_INDEX  # noqa: E402
from synth_lab.errors import DatasetError  # noqa: E402
from synth_lab.train.data import (  # noqa: E402
    StepPlan,
    balance,
    encode_examples,
    example_from_ids,
    load_records,
    pack,
    pack_rows,
)
from synth_lab.train.loop import cosine_with_warmup  # noqa: E402
from synth_lab.train.model import (  # noqa: E402
    choose_precision,
    cpu_has_native_bf16,
    load_model,
    token_loss_sum,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    with shared_cache(tmp_path_factory):
        config = load_config('[job]\nmodel = "synth-lab/tiny-chat"\n')
        cpu = torch.device("cpu")
        precision = choose_precision("fp32", cpu)
        model, tokenizer = load_model(config, device=cpu, precision=precision)
        model.eval()
        yield model, tokenizer, precision


def test_packed_loss_is_the_token_weighted_mean_of_each_conversation(tiny: tuple) -> None:
    model, tokenizer, precision = tiny
    examples, _ = encode_examples(tokenizer, records(5, seed=3), 64)
    cpu = torch.device("cpu")
    with torch.no_grad():
        alone = [float(token_loss_sum(model, pack([e]), precision, cpu)) for e in examples]
        packed = pack(examples)
        together = float(token_loss_sum(model, packed, precision, cpu))
    n_trained = [e.n_trained for e in examples]
    assert packed.input_ids.shape == (1, sum(e.n_tokens for e in examples))  # no padding
    assert together / sum(n_trained) == pytest.approx(sum(alone) / sum(n_trained), rel=1e-5)
    assert together == pytest.approx(sum(alone), rel=1e-5)

    # Without restarting positions the conversations would see each other: a different loss.
    with torch.no_grad():
        leaky = model(
            input_ids=packed.input_ids,
            logits_to_keep=packed.keep,
            use_cache=False,
        ).logits[0]
    leaked = float(torch.nn.functional.cross_entropy(leaky, packed.targets, reduction="sum"))
    assert abs(leaked - together) > 1e-3 * together


def test_targets_are_shifted_within_each_conversation(tiny: tuple) -> None:
    _, tokenizer, _ = tiny
    examples, stats = encode_examples(tokenizer, records(4, seed=1), 64)
    assert stats.kept == 4
    for e in examples:
        assert e.targets[-1] == IGNORE_INDEX  # the last token predicts nothing
        trained = (e.targets != IGNORE_INDEX).nonzero().squeeze(1)
        # A target is always the next token of the same conversation.
        assert torch.equal(e.targets[trained], e.input_ids[trained + 1])
        assert e.n_trained == trained.numel() > 0
    packed = pack(examples)
    starts = packed.cu_seqlens[:-1].long()
    assert torch.all(packed.position_ids[0, starts] == 0)
    assert packed.cu_seqlens[-1] == packed.n_tokens
    assert packed.max_seqlen == max(e.n_tokens for e in examples)


def test_truncation_keeps_sequence_length_and_drops_untrainable_records(tiny: tuple) -> None:
    _, tokenizer, _ = tiny
    long = records(3, seed=2, max_words=3)
    long[0]["messages"][0]["content"] = "word " * 200  # the reply falls beyond 40 tokens
    examples, stats = encode_examples(tokenizer, long, 40)
    assert all(e.n_tokens <= 40 for e in examples)
    assert stats.dropped_no_targets == 1 and stats.kept == 2 and stats.truncated >= 1


def test_example_from_ids_and_placeholder_row() -> None:
    e = example_from_ids([5, 6, 7, 8], [IGNORE_INDEX, IGNORE_INDEX, 7, 8])
    assert e.targets.tolist() == [IGNORE_INDEX, 7, 8, IGNORE_INDEX]
    assert e.n_trained == 2
    empty = pack([])
    assert empty.n_tokens == 0 and empty.n_trained == 0 and empty.input_ids.shape == (1, 1)
    rows = pack_rows([e, e, e], max_tokens=9)
    assert [r.n_tokens for r in rows] == [8, 4]


def test_balance_spreads_tokens_and_is_deterministic() -> None:
    lengths = [50, 10, 40, 30, 20, 20, 5]
    bins = balance(lengths, 3)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    loads = [sum(lengths[i] for i in b) for b in bins]
    assert max(loads) - min(loads) <= 10
    assert balance(lengths, 3) == bins


@pytest.mark.parametrize("world,accum", [(1, 4), (2, 2), (4, 1)])
def test_step_plan_covers_each_example_once_per_epoch(world: int, accum: int) -> None:
    n = 21
    lengths = [10 + (i * 7) % 13 for i in range(n)]
    trained = [n_ // 2 for n_ in lengths]
    plan = StepPlan(
        lengths,
        trained,
        global_batch=8,
        world_size=world,
        accumulation=accum,
        n_epochs=2,
        seed=0,
    )
    assert plan.steps_per_epoch == math.ceil(n / 8) and plan.total_steps == 6
    for epoch in range(2):
        seen: list[int] = []
        for step in range(epoch * 3, epoch * 3 + 3):
            per_rank = [plan.micro_batches(step, r) for r in range(world)]
            assert all(len(bins) == accum for bins, _, _ in per_rank)
            step_items = [i for bins, _, _ in per_rank for b in bins for i in b]
            assert sorted(step_items) == sorted(plan.step_examples(step))
            assert per_rank[0][1] == sum(trained[i] for i in step_items)  # same count on all
            seen += step_items
        assert sorted(seen) == list(range(n))
    # Another epoch, another order; the same seed, the same order.
    assert plan.step_examples(0) != plan.step_examples(3)
    again = StepPlan(
        lengths, trained, global_batch=8, world_size=1, accumulation=1, n_epochs=2, seed=0
    )
    assert again.step_examples(4) == plan.step_examples(4)


def test_max_steps_overrides_epochs_and_wraps_the_data() -> None:
    plan = StepPlan(
        [5] * 10,
        [2] * 10,
        global_batch=4,
        world_size=1,
        accumulation=1,
        n_epochs=1,
        seed=1,
        max_steps=7,
    )
    assert plan.total_steps == 7
    assert len(plan.step_examples(6)) == 4  # epoch 2, first batch
    assert plan.position(6) == {"epoch": 2, "offset": 0, "step": 6}


def test_cosine_schedule_with_linear_warmup() -> None:
    f = cosine_with_warmup(warmup=4, total=20)
    assert [f(s) for s in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert f(12) == pytest.approx(0.5)
    assert f(20) == pytest.approx(0.0)
    decay = [f(s) for s in range(4, 21)]
    assert all(a >= b for a, b in itertools.pairwise(decay))


def test_precision_follows_the_hardware() -> None:
    cpu = torch.device("cpu")
    assert choose_precision("fp32", cpu).autocast is None
    assert choose_precision("fp16", cpu).name == "fp32"  # no fp16 autocast on CPUs
    bf16 = choose_precision("bf16", cpu)
    assert bf16.name == ("bf16" if cpu_has_native_bf16() else "fp32")


def test_load_records_rejects_bad_data(tmp_path) -> None:
    with pytest.raises(DatasetError, match="no records"):
        load_records([])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": "not a list"}\n{"messages": [{"role": "user", "content": "x"}]}\n')
    with pytest.raises(DatasetError, match="invalid record") as info:
        load_records(bad)
    assert "\n  1 messages: messages must be a list" in str(info.value)
    assert "data lint" in info.value.hint
    with pytest.raises(DatasetError):
        load_records(42)


def test_varlen_attention_matches_sdpa_with_a_block_mask(tiny: tuple) -> None:
    """The per-conversation attention gives what SDPA gives with transformers' packed mask."""
    from synth_lab.train.attention import NAME

    model, tokenizer, precision = tiny
    assert model.config._attn_implementation == NAME
    examples, _ = encode_examples(tokenizer, records(4, seed=8), 64)
    packed, cpu = pack(examples), torch.device("cpu")
    with torch.no_grad():
        varlen = token_loss_sum(model, packed, precision, cpu)
        model.set_attn_implementation("sdpa")
        try:
            masked = token_loss_sum(model, packed, precision, cpu)
        finally:
            model.set_attn_implementation(NAME)
    assert float(varlen) == pytest.approx(float(masked), rel=1e-5)
    # Gradients flow through the split conversations.
    model.zero_grad()
    token_loss_sum(model, packed, precision, cpu).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.zero_grad()
