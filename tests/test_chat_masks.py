"""The loss mask: exactly the assistant replies (and their end-of-turn token) are trained."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from conftest_data import multi_turn, qwen_tokenizer, tiny_tokenizer, tool_chat

from synth_lab.data.chat import (
    IGNORE_INDEX,
    TokenizerNotFoundError,
    encode_chat,
    encode_chats,
    normalize_messages,
    normalize_tools,
    token_lengths,
)
from synth_lab.errors import DatasetError, SynthLabError
from synth_lab.models import load_tokenizer

THINK = "<think>\n\n</think>\n\n"


def trained_runs(tokenizer: Any, enc: Any) -> list[str]:
    """Decoded runs of consecutive trained tokens."""
    runs: list[list[int]] = []
    previous = False
    for token, label in zip(enc.input_ids, enc.labels, strict=True):
        trained = label != IGNORE_INDEX
        if trained and not previous:
            runs.append([])
        if trained:
            assert label == token
            runs[-1].append(token)
        previous = trained
    return [tokenizer.decode(run) for run in runs]


def check_structure(tokenizer: Any, record: dict[str, Any], enc: Any) -> None:
    """Ids match the template's own tokenisation; turns tile the sequence; counts agree."""
    reference = tokenizer.apply_chat_template(
        normalize_messages(record), tools=normalize_tools(record), tokenize=True
    )["input_ids"]
    assert enc.input_ids == list(reference)
    roles = [m["role"] for m in record["messages"]]
    if record.get("tools") and roles[0] != "system":
        roles.insert(0, "system")  # the template's tools prompt, a turn of its own
    assert [t.role for t in enc.turns] == roles
    assert enc.turns[0].start == 0 and enc.turns[-1].end == enc.n_tokens
    for before, after in zip(enc.turns, enc.turns[1:], strict=False):
        assert before.end == after.start
    assert sum(t.n_trained for t in enc.turns) == enc.n_trained
    assert enc.n_trained == sum(label != IGNORE_INDEX for label in enc.labels)
    for turn in enc.turns:
        if turn.role != "assistant":
            assert turn.n_trained == 0


def test_chatml_single_turn() -> None:
    tok = tiny_tokenizer()
    record = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo!"}]
    }
    enc = encode_chat(tok, record)
    assert trained_runs(tok, enc) == ["Yo!<|im_end|>"]
    assert enc.exact and not enc.truncated and enc.n_trained_lost == 0
    check_structure(tok, record, enc)


def test_chatml_system_prompt_and_multi_turn() -> None:
    tok = tiny_tokenizer()
    enc = encode_chat(tok, multi_turn())
    assert trained_runs(tok, enc) == ["Hello! How can I help?<|im_end|>", "It is 4.<|im_end|>"]
    assert enc.exact
    # The generation prompt and the newline after end-of-turn belong to the prompt side.
    first = enc.turns[2]
    assert tok.decode(enc.input_ids[first.start : first.start + 3]) == "<|im_start|>assistant\n"
    assert enc.labels[first.end - 1] == IGNORE_INDEX
    check_structure(tok, multi_turn(), enc)


def test_chatml_tool_calls() -> None:
    tok = tiny_tokenizer()
    enc = encode_chat(tok, tool_chat())
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    assert trained_runs(tok, enc) == [call + "<|im_end|>", "It is 3 °C in Oslo.<|im_end|>"]
    assert "get_weather" in enc.text.split("<|im_end|>")[0]  # tools are in the system turn
    check_structure(tok, tool_chat(), enc)


def test_qwen_multi_turn_exact_text() -> None:
    tok = qwen_tokenizer()
    enc = encode_chat(tok, multi_turn(), template_kwargs={"enable_thinking": False})
    assert trained_runs(tok, enc) == ["Hello! How can I help?<|im_end|>", "It is 4.<|im_end|>"]
    # Qwen3 drops old turns' <think> blocks, so earlier prefixes are not prefixes of the whole.
    assert not enc.exact
    sizes = [
        len(tok.encode(r, add_special_tokens=False)) + 1
        for r in ("Hello! How can I help?", "It is 4.")
    ]
    assert [t.n_trained for t in enc.turns] == [0, 0, sizes[0], 0, sizes[1]]


def test_qwen_default_template_trains_the_empty_think_block_of_the_last_turn() -> None:
    # Without enable_thinking=False the template writes an empty think block into the final
    # assistant turn (not into the generation prompt), so the model must learn to emit it.
    tok = qwen_tokenizer()
    enc = encode_chat(tok, multi_turn())
    assert trained_runs(tok, enc) == [
        "Hello! How can I help?<|im_end|>",
        THINK + "It is 4.<|im_end|>",
    ]
    check_structure(tok, multi_turn(), enc)


def test_qwen_tool_call_turn() -> None:
    tok = qwen_tokenizer()
    enc = encode_chat(tok, tool_chat(), template_kwargs={"enable_thinking": False})
    runs = trained_runs(tok, enc)
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    assert runs[0] == call + "<|im_end|>"
    assert runs[1] == "It is 3 °C in Oslo.<|im_end|>"
    assert not enc.exact
    tool_turn = enc.turns[3]
    assert tool_turn.role == "tool" and tool_turn.n_trained == 0
    # the template's "# Tools" system prompt is counted as a system turn, not as the user's
    system, user = enc.turns[0], enc.turns[1]
    assert system.role == "system" and "get_weather" in tok.decode(enc.input_ids[: system.end])
    assert tok.decode(enc.input_ids[user.start : user.end]).startswith("<|im_start|>user")
    assert "<tool_response>" in tok.decode(enc.input_ids[tool_turn.start : tool_turn.end])


def test_non_prefix_generation_prompt_falls_back_to_tokens() -> None:
    # DeepSeek-R1 style: the generation prompt opens a think block that history turns lack.
    tok = copy.deepcopy(tiny_tokenizer())
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
    )
    enc = encode_chat(tok, multi_turn())
    assert not enc.exact
    assert trained_runs(tok, enc) == ["Hello! How can I help?<|im_end|>", "It is 4.<|im_end|>"]


def test_template_without_special_tokens_trains_the_reply_only() -> None:
    tok = copy.deepcopy(tiny_tokenizer())
    tok.chat_template = (
        "{% for m in messages %}{{ m.role | capitalize }}: {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}Assistant:{% endif %}"
    )
    record = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    }
    runs = trained_runs(tok, encode_chat(tok, record))
    assert [r.strip() for r in runs] == ["Yo"]


def test_truncation_counts() -> None:
    tok = tiny_tokenizer()
    full = encode_chat(tok, multi_turn())
    last = full.turns[-1]
    cut = last.start + 6  # inside the last reply
    enc = encode_chat(tok, multi_turn(), max_length=cut)
    assert enc.truncated and len(enc.input_ids) == len(enc.labels) == cut
    assert enc.n_tokens == full.n_tokens and enc.n_trained == full.n_trained
    kept = sum(label != IGNORE_INDEX for label in enc.labels)
    assert enc.n_trained_lost == full.n_trained - kept
    assert 0 < enc.n_trained_lost < last.n_trained
    assert enc.input_ids == full.input_ids[:cut] and enc.labels == full.labels[:cut]
    roomy = encode_chat(tok, multi_turn(), max_length=full.n_tokens)
    assert not roomy.truncated and roomy.n_trained_lost == 0


def test_token_lengths_match_encodings() -> None:
    tok = tiny_tokenizer()
    records = [multi_turn(), tool_chat()] * 3
    encoded = encode_chats(tok, records)
    assert token_lengths(tok, records, batch_size=4) == [e.n_tokens for e in encoded if e]


def test_rejected_records() -> None:
    tok = tiny_tokenizer()
    bad = {"messages": "not a list"}
    with pytest.raises(DatasetError, match="record 1"):
        token_lengths(tok, [multi_turn(), bad])
    assert encode_chats(tok, [bad, multi_turn()], skip_errors=True)[0] is None
    plain = copy.deepcopy(tok)
    plain.chat_template = None
    with pytest.raises(DatasetError, match="no chat template"):
        encode_chat(plain, multi_turn())


def test_normalize_messages_and_tools() -> None:
    record = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {
                "role": "assistant",
                "content": None,
                "reasoning": "think",
                "tool_calls": [{"name": "f", "arguments": '{"x": 1}', "id": 7}],
            },
            {
                "role": "tool",
                "content": {"type": "text", "text": "ok"},
                "tool_call_id": 7,
                "name": "f",
            },
            {"role": "user", "content": {"type": "image_url", "image_url": {"url": "https://x"}}},
        ],
        "tools": [{"name": "f", "parameters": {"type": "object"}}],
    }
    user, assistant, tool, image = normalize_messages(record)
    assert image == {"role": "user", "content": ""}
    assert user == {"role": "user", "content": "a\nb"}
    assert assistant["content"] == "" and assistant["reasoning_content"] == "think"
    assert assistant["tool_calls"] == [
        {"type": "function", "function": {"name": "f", "arguments": {"x": 1}}, "id": "7"}
    ]
    assert tool == {"role": "tool", "content": "ok", "tool_call_id": "7", "name": "f"}
    assert normalize_tools(record) == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]


def test_load_tokenizer_offline() -> None:
    with pytest.raises(TokenizerNotFoundError, match="not found locally") as info:
        load_tokenizer("no-such-org/no-such-model")
    assert isinstance(info.value, SynthLabError) and "synth-lab/tiny-chat" in info.value.hint
    tiny = load_tokenizer("synth-lab/tiny-chat")
    assert tiny.eos_token == "<|im_end|>" and tiny.chat_template
    qwen_tokenizer()  # skips when the package is missing
    assert load_tokenizer("qwen").eos_token == "<|im_end|>"


def test_one_load_tokenizer_serves_data_and_training(tmp_path) -> None:
    from synth_lab.data import load_tokenizer as from_data
    from synth_lab.errors import TrainingError

    assert from_data is load_tokenizer
    from synth_lab.models import build_tiny_tokenizer

    plain = build_tiny_tokenizer()  # a fresh one: the shared tiny_tokenizer() stays as it is
    plain.pad_token = None
    plain.chat_template = None
    plain.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path)  # counting tokens needs no template
    assert loaded.pad_token == loaded.eos_token == "<|im_end|>"
    with pytest.raises(TrainingError, match="has no chat template") as info:
        load_tokenizer(tmp_path, for_training=True)
    assert "chat_template" in info.value.hint
