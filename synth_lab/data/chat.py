"""Chat records to token ids and a loss mask, through the tokenizer's own chat template.

This module is shared by the dataset tools and the trainer, so it stays free of torch: ids and
labels are plain lists of ints, with :data:`IGNORE_INDEX` (-100) where no loss is taken.

How the mask is found. The conversation is rendered prefix by prefix with the chat template:
``render(messages[:k])`` for every ``k``, and ``render(messages[:i], add_generation_prompt=True)``
before every assistant message ``i``. The full render is tokenised once (with character
offsets). When every prefix render is a text prefix of the full render (true for ChatML and
most templates), message ``i`` owns the characters between consecutive prefix lengths, and an
assistant message trains the tokens after its generation prompt up to and including the last
special token it adds (the end-of-turn token, ``<|im_end|>`` for ChatML). What the template
writes after that token (a newline) and the generation prompt (``<|im_start|>assistant\\n``)
stay untrained: at inference time the prompt is given and generation stops at end-of-turn.
The content is never searched for: only the template's own renders are compared.

When a later render changes earlier text (Qwen3 drops the ``<think>`` block of old assistant
turns, so ``render(messages[:2])`` is not a prefix of the full render), the boundaries that
still agree are used as is and each other assistant turn is located at the token level:
it starts where the generation-prompt render stops agreeing with the full render, and ends at
the same end-of-turn token (counted the same number of times) that ends it in its own prefix
render. :attr:`EncodedChat.exact` is false for such records. Qwen3's template also writes an
empty ``<think>`` block into the final assistant turn; it is trained like the rest of the turn
(the model must produce it), unless ``template_kwargs={"enable_thinking": False}`` moves it
into the generation prompt. Control-token text inside the
content (a literal ``<|im_end|>``) is tokenised as the control token, as
``apply_chat_template`` does by default; it can shift a fallback turn's end.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from synth_lab.data.messages import (
    content_text,
    normalize_messages,
    normalize_tools,
    render_chat,
    try_render_messages,
)
from synth_lab.errors import DatasetError
from synth_lab.models import TokenizerNotFoundError, resolve_tokenizer

IGNORE_INDEX = -100
"""Label value of positions that take no loss (the convention of ``torch.nn.CrossEntropyLoss``)."""


class TurnSpan(NamedTuple):
    """Token span ``[start, end)`` of one message in the full (untruncated) sequence."""

    role: str
    start: int
    end: int
    n_trained: int


@dataclass(slots=True)
class EncodedChat:
    """One conversation as token ids and labels.

    Attributes:
        input_ids: Token ids, cut to ``max_length`` when one was given.
        labels: Same length as ``input_ids``; the id where the token is trained, else -100.
        n_tokens: Length of the whole conversation, before truncation.
        n_trained: Supervised tokens in the whole conversation, before truncation.
        truncated: Whether ``max_length`` cut the sequence.
        n_trained_lost: Supervised tokens cut off by truncation.
        turns: One span per message, in full-sequence token positions.
        text: The full rendered conversation.
        offsets: Character span of each full-sequence token in ``text``.
        exact: False when a non-prefix template forced the token-level fallback.
    """

    input_ids: list[int]
    labels: list[int]
    n_tokens: int
    n_trained: int
    truncated: bool
    n_trained_lost: int
    turns: list[TurnSpan]
    text: str = ""
    offsets: list[tuple[int, int]] = field(default_factory=list, repr=False)
    exact: bool = True


def special_token_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of the tokenizer's special tokens (end-of-turn candidates)."""
    ids = set(getattr(tokenizer, "all_special_ids", ()) or ())
    for token_id, token in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(token, "special", False):
            ids.add(token_id)
    return frozenset(ids)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class _Encoder:
    """Computes masks for one tokenizer; holds what is shared across records."""

    def __init__(self, tokenizer: Any, template_kwargs: Mapping[str, Any] | None) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise DatasetError(
                "the tokenizer has no chat template",
                hint="use a chat (instruct) tokenizer, or set tokenizer.chat_template",
            )
        self.tokenizer = tokenizer
        self.kwargs = dict(template_kwargs or {})
        self.specials = special_token_ids(tokenizer)

    def _ids(self, text: str) -> tuple[list[int], list[int]]:
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [start for start, _ in enc["offset_mapping"]]

    def encode(
        self,
        record: Mapping[str, Any],
        text: str,
        ids: list[int],
        offsets: list[tuple[int, int]],
        max_length: int | None,
    ) -> EncodedChat:
        messages = normalize_messages(record)
        tools = normalize_tools(record)
        n = len(messages)
        renders = [
            try_render_messages(self.tokenizer, messages[:k], tools, self.kwargs)
            for k in range(1, n)
        ]
        renders.append(text)
        gens = {
            i: try_render_messages(
                self.tokenizer, messages[:i], tools, self.kwargs, generation_prompt=True
            )
            for i, m in enumerate(messages)
            if m["role"] == "assistant"
        }
        starts = [start for start, _ in offsets]

        def tok_at(char: int) -> int:
            return bisect.bisect_left(starts, char)

        # bounds[k]: first token of message k (bounds[n] == len(ids)); None where unknown.
        bounds: list[int | None] = [0]
        bounds += [
            tok_at(len(r)) if r is not None and text.startswith(r) else None for r in renders
        ]
        bounds[n] = len(ids)
        exact = all(b is not None for b in bounds) and all(
            g is not None and text.startswith(g) and len(renders[i]) >= len(g)
            for i, g in gens.items()
        )
        labels = [IGNORE_INDEX] * len(ids)
        for i, gen in gens.items():
            if exact:
                span = self._exact_span(ids, tok_at(len(gen)), bounds[i + 1])  # type: ignore[arg-type]
            else:
                span = self._fallback_span(text, ids, starts, gen, renders[i])
            if span is None:
                continue
            first, last, turn_end = span
            labels[first : last + 1] = ids[first : last + 1]
            if bounds[i + 1] is None and turn_end is not None:
                bounds[i + 1] = turn_end
        # Unknown boundaries: no wider than their neighbours allow, never decreasing.
        for k in range(1, n + 1):
            if bounds[k] is None or bounds[k] < bounds[k - 1]:  # type: ignore[operator]
                bounds[k] = bounds[k - 1]
        turns = [
            TurnSpan(
                m["role"],
                bounds[k],  # type: ignore[arg-type]
                bounds[k + 1],  # type: ignore[arg-type]
                sum(label != IGNORE_INDEX for label in labels[bounds[k] : bounds[k + 1]]),
            )
            for k, m in enumerate(messages)
        ]
        tools_end = self._tools_prompt_end(messages, tools, text, tok_at)
        if tools_end and turns and tools_end <= turns[0].end:
            # The template's own system prompt listing the tools is not the first message's.
            first = turns[0]
            trained = sum(label != IGNORE_INDEX for label in labels[tools_end : first.end])
            turns[0] = TurnSpan(first.role, tools_end, first.end, trained)
            turns.insert(0, TurnSpan("system", 0, tools_end, 0))
        n_trained = sum(label != IGNORE_INDEX for label in labels)
        kept = len(ids) if max_length is None else min(len(ids), max_length)
        lost = sum(label != IGNORE_INDEX for label in labels[kept:])
        return EncodedChat(
            input_ids=ids[:kept],
            labels=labels[:kept],
            n_tokens=len(ids),
            n_trained=n_trained,
            truncated=kept < len(ids),
            n_trained_lost=lost,
            turns=turns,
            text=text,
            offsets=offsets,
            exact=exact,
        )

    def _tools_prompt_end(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        text: str,
        tok_at: Any,
    ) -> int:
        """First token after the system block a template writes for ``tools`` when the
        conversation has no system message of its own (0 when there is none)."""
        if not tools or not messages or messages[0]["role"] == "system":
            return 0
        with_tools = try_render_messages(self.tokenizer, messages[:1], tools, self.kwargs)
        without = try_render_messages(self.tokenizer, messages[:1], None, self.kwargs)
        if not with_tools or not without or not with_tools.endswith(without):
            return 0
        prefix = len(with_tools) - len(without)
        return tok_at(prefix) if prefix and text.startswith(with_tools[:prefix]) else 0

    def _exact_span(self, ids: list[int], first: int, stop: int) -> tuple[int, int, None] | None:
        """Trained tokens ``[first, last]``: up to the last special token the turn adds."""
        if first >= stop:
            return None
        last = stop - 1
        for j in range(stop - 1, first - 1, -1):
            if ids[j] in self.specials:
                last = j
                break
        return first, last, None

    def _fallback_span(
        self,
        text: str,
        ids: list[int],
        starts: list[int],
        gen: str | None,
        own: str | None,
    ) -> tuple[int, int, int] | None:
        """Locate one assistant turn at the token level when the renders are not prefixes."""
        if gen is None or own is None:
            return None
        gen_ids, _ = self._ids(gen)
        own_ids, own_starts = self._ids(own)
        if text.startswith(gen):
            first = bisect.bisect_left(starts, len(gen))
        else:
            first = _common_prefix(gen_ids, ids)
        if own.startswith(gen):
            seg = own_ids[bisect.bisect_left(own_starts, len(gen)) :]
        else:
            seg = own_ids[_common_prefix(gen_ids, own_ids) :]
        ends = [j for j, t in enumerate(seg) if t in self.specials]
        if not ends:
            # No end-of-turn token to count: assume the turn keeps its length from its own render.
            last = min(first + len(seg), len(ids)) - 1
            return (first, last, last + 1) if last >= first else None
        eot, nth = seg[ends[-1]], seg[: ends[-1] + 1].count(seg[ends[-1]])
        tail = len(seg) - ends[-1] - 1  # what the template writes after end-of-turn
        seen = 0
        for j in range(first, len(ids)):
            if ids[j] == eot:
                seen += 1
                if seen == nth:
                    return first, j, min(j + 1 + tail, len(ids))
        return None


def encode_chats(
    tokenizer: Any,
    records: Iterable[Mapping[str, Any]],
    *,
    max_length: int | None = None,
    template_kwargs: Mapping[str, Any] | None = None,
    skip_errors: bool = False,
) -> list[EncodedChat | None]:
    """:func:`encode_chat` for many records, tokenising the full renders in one batch.

    Args:
        skip_errors: Put ``None`` for a record the template rejects instead of raising.
    """
    encoder = _Encoder(tokenizer, template_kwargs)
    records = list(records)
    texts: list[str | None] = []
    for index, record in enumerate(records):
        try:
            texts.append(render_chat(tokenizer, record, template_kwargs=encoder.kwargs))
        except DatasetError as exc:
            if not skip_errors:
                raise DatasetError(f"record {index}: {exc.message}", hint=exc.hint) from exc
            texts.append(None)
    good = [t for t in texts if t is not None]
    enc = tokenizer(good, add_special_tokens=False, return_offsets_mapping=True) if good else None
    out: list[EncodedChat | None] = []
    j = 0
    for record, text in zip(records, texts, strict=True):
        if text is None:
            out.append(None)
            continue
        assert enc is not None
        ids, offsets = list(enc["input_ids"][j]), [tuple(o) for o in enc["offset_mapping"][j]]
        j += 1
        out.append(encoder.encode(record, text, ids, offsets, max_length))  # type: ignore[arg-type]
    return out


def encode_chat(
    tokenizer: Any,
    record: Mapping[str, Any],
    *,
    max_length: int | None = None,
    template_kwargs: Mapping[str, Any] | None = None,
) -> EncodedChat:
    """Token ids and loss labels for one record (only assistant replies are trained).

    Args:
        tokenizer: A Hugging Face fast tokenizer with a chat template.
        record: A dataset record (``messages``, optional ``tools``).
        max_length: Keep at most this many tokens (right truncation); counts of what is
            lost are in the result.
        template_kwargs: Extra template variables, e.g. ``{"enable_thinking": False}``.

    Raises:
        DatasetError: If the tokenizer has no chat template or the template rejects the record.
    """
    result = encode_chats(
        tokenizer, [record], max_length=max_length, template_kwargs=template_kwargs
    )[0]
    assert result is not None
    return result


def token_lengths(
    tokenizer: Any,
    records: Iterable[Mapping[str, Any]],
    *,
    batch_size: int = 1024,
    template_kwargs: Mapping[str, Any] | None = None,
) -> list[int]:
    """Token count of each rendered record (fast: no masks, batch tokenisation).

    Raises:
        DatasetError: If the template rejects a record (its index is in the message).
    """
    lengths: list[int] = []
    batch: list[str] = []

    def flush() -> None:
        if batch:
            enc = tokenizer(
                batch, add_special_tokens=False, return_attention_mask=False, verbose=False
            )
            lengths.extend(len(ids) for ids in enc["input_ids"])
            batch.clear()

    for index, record in enumerate(records):
        try:
            batch.append(render_chat(tokenizer, record, template_kwargs=template_kwargs))
        except DatasetError as exc:
            raise DatasetError(f"record {index}: {exc.message}", hint=exc.hint) from exc
        if len(batch) >= batch_size:
            flush()
    flush()
    return lengths


__all__ = [
    "IGNORE_INDEX",
    "EncodedChat",
    "TokenizerNotFoundError",
    "TurnSpan",
    "content_text",
    "encode_chat",
    "encode_chats",
    "normalize_messages",
    "normalize_tools",
    "render_chat",
    "resolve_tokenizer",
    "special_token_ids",
    "token_lengths",
]
