"""Chat records to training batches: encode, pack without padding, and plan every step.

Encoding goes through the tokenizer's chat template with assistant-only labels
(:func:`synth_lab.data.chat.encode_chats`), cut to ``sequence_length``. Labels are shifted here,
per conversation (``targets[t]`` is the token that should follow position ``t``), so a packed row
never asks the last token of one conversation to predict the first token of the next.

A micro-batch is one row holding several whole conversations back to back, no padding. Its
``position_ids`` restart at 0 for every conversation: transformers turns that into a
block-diagonal causal mask (SDPA, eager) or ``cu_seqlens`` (flash attention), so packed
conversations never attend to each other. The loss of a packed row is therefore the sum of
each conversation's loss, which the tests check.

Which conversations go into which step is a pure function of ``(seed, step)``: a shuffled order
per epoch, ``global_batch`` conversations per step, spread over ``world_size × accumulation``
micro-batches balanced by token count. Every rank computes the same plan, so the supervised-token
count of a whole optimizer step is known without communication, and resuming at step ``k``
needs nothing but ``k``.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from synth_lab.data.chat import IGNORE_INDEX, encode_chats
from synth_lab.errors import DatasetError, format_problems

_CHUNK = 512  # records per tokenizer call: bounds memory, keeps batch tokenisation fast


@dataclass(frozen=True, slots=True)
class Example:
    """One encoded conversation: ids and next-token targets (``IGNORE_INDEX`` = no loss)."""

    input_ids: torch.Tensor
    targets: torch.Tensor
    n_trained: int

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.numel())


@dataclass(frozen=True, slots=True)
class EncodeStats:
    """What encoding a dataset kept and lost."""

    records: int
    kept: int
    truncated: int
    trained_tokens_lost: int
    dropped_no_targets: int


@dataclass(slots=True)
class PackedBatch:
    """Conversations concatenated into one row (batch dimension 1), no padding.

    Attributes:
        input_ids: ``[1, L]`` token ids.
        position_ids: ``[1, L]`` positions, restarting at 0 for each conversation.
        keep: Positions with a supervised target (passed as ``logits_to_keep``).
        targets: ``[len(keep)]`` the token each kept position should predict.
        cu_seqlens: ``[k + 1]`` conversation boundaries (int32), for varlen attention.
        max_seqlen: Longest conversation in the row.
        n_tokens: Real tokens in the row (``0`` for a placeholder).
        n_trained: Supervised tokens in the row.
        bounds: ``cu_seqlens`` as host integers, so attention needs no device sync per layer.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    keep: torch.Tensor
    targets: torch.Tensor
    cu_seqlens: torch.Tensor
    max_seqlen: int
    n_tokens: int
    n_trained: int
    bounds: tuple[int, ...] = ()

    def to(self, device: torch.device) -> PackedBatch:
        if device.type == "cpu":
            return self
        move = {"non_blocking": True}
        return PackedBatch(
            self.input_ids.to(device, **move),
            self.position_ids.to(device, **move),
            self.keep.to(device, **move),
            self.targets.to(device, **move),
            self.cu_seqlens.to(device, **move),
            self.max_seqlen,
            self.n_tokens,
            self.n_trained,
            self.bounds,
        )


def load_records(dataset: Any, *, what: str = "training") -> list[Mapping[str, Any]]:
    """Records from a path, a :class:`~synth_lab.data.dataset.Dataset` or a list of dicts.

    Raises:
        DatasetError: If the data is missing, empty, or has invalid records (the first few
            problems are listed; the hint points at ``synth-lab data lint``).
    """
    from synth_lab.data.dataset import Dataset

    if isinstance(dataset, (str, os.PathLike)):
        ds = Dataset.load(dataset)
    elif isinstance(dataset, Dataset):
        ds = dataset
    elif isinstance(dataset, Iterable) and not isinstance(dataset, (bytes, Mapping)):
        ds = Dataset.from_records(list(dataset))
    else:
        raise DatasetError(
            f"cannot use {type(dataset).__name__} as {what} data",
            hint="pass a JSONL path, a synth_lab Dataset, or a list of chat records",
        )
    if len(ds) == 0:
        raise DatasetError(
            f"the {what} dataset has no records", hint="File contains no SFT examples"
        )
    errors = [p for p in ds.problem_list() if p.severity == "error"]
    if errors:
        where = f" ({ds.path})" if ds.path else ""
        raise DatasetError(
            f"the {what} dataset{where} has {len(errors)} invalid record(s):\n"
            + format_problems(errors, limit=5),
            hint="run `synth-lab data lint FILE` to see every problem, or Dataset.drop_invalid()",
            problems=errors,
        )
    return list(ds)


def example_from_ids(input_ids: Sequence[int], labels: Sequence[int]) -> Example:
    """An :class:`Example` from unshifted labels (``labels[t]`` trains token ``t``)."""
    ids = torch.tensor(list(input_ids), dtype=torch.long)
    lab = torch.tensor(list(labels), dtype=torch.long)
    targets = torch.full_like(lab, IGNORE_INDEX)
    targets[:-1] = lab[1:]  # position t predicts token t+1; the last token predicts nothing
    return Example(ids, targets, int((targets != IGNORE_INDEX).sum()))


def encode_examples(
    tokenizer: Any, records: Sequence[Mapping[str, Any]], max_length: int | None
) -> tuple[list[Example], EncodeStats]:
    """Encode records with assistant-only labels; drop those left with nothing to learn.

    Raises:
        DatasetError: If no record has a supervised token (nothing would be trained).
    """
    examples: list[Example] = []
    truncated = lost = dropped = 0
    for start in range(0, len(records), _CHUNK):
        chunk = records[start : start + _CHUNK]
        for enc in encode_chats(tokenizer, chunk, max_length=max_length):
            assert enc is not None  # encode_chats raises instead without skip_errors
            truncated += enc.truncated
            lost += enc.n_trained_lost
            example = example_from_ids(enc.input_ids, enc.labels)
            if example.n_trained == 0:
                dropped += 1
                continue
            examples.append(example)
    stats = EncodeStats(len(records), len(examples), truncated, lost, dropped)
    if not examples:
        raise DatasetError(
            f"none of the {len(records)} records has an assistant token to train on"
            + (f" within sequence_length={max_length}" if max_length else ""),
            hint="each record needs an assistant reply; raise sequence_length if they are cut off",
        )
    return examples, stats


def pack(examples: Sequence[Example]) -> PackedBatch:
    """Concatenate conversations into one padding-free row.

    An empty list gives a one-token placeholder with no targets: under DDP/FSDP every rank must
    run the same number of forward and backward passes, even when it has nothing left to learn.
    """
    if not examples:
        zero = torch.zeros(1, 1, dtype=torch.long)
        return PackedBatch(
            zero,
            zero.clone(),
            torch.zeros(1, dtype=torch.long),
            torch.full((1,), IGNORE_INDEX, dtype=torch.long),
            torch.tensor([0, 1], dtype=torch.int32),
            1,
            0,
            0,
            (0, 1),
        )
    input_ids = torch.cat([e.input_ids for e in examples])
    targets = torch.cat([e.targets for e in examples])
    lengths = [e.n_tokens for e in examples]
    position_ids = torch.cat([torch.arange(n) for n in lengths])
    keep = (targets != IGNORE_INDEX).nonzero().squeeze(1)
    cu = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    cu[1:] = torch.tensor(lengths).cumsum(0)
    return PackedBatch(
        input_ids.unsqueeze(0),
        position_ids.unsqueeze(0),
        keep,
        targets[keep],
        cu,
        max(lengths),
        int(input_ids.numel()),
        int(keep.numel()),
        tuple(cu.tolist()),  # computed on the host, where the row is built
    )


def pack_rows(examples: Sequence[Example], max_tokens: int) -> list[PackedBatch]:
    """Pack conversations in order into rows of at most ``max_tokens`` (one if longer)."""
    rows: list[PackedBatch] = []
    current: list[Example] = []
    size = 0
    for example in examples:
        if current and size + example.n_tokens > max_tokens:
            rows.append(pack(current))
            current, size = [], 0
        current.append(example)
        size += example.n_tokens
    if current:
        rows.append(pack(current))
    return rows


def balance(lengths: Sequence[int], n_bins: int) -> list[list[int]]:
    """Spread items over ``n_bins`` so the token counts are close (longest first, greedy).

    Deterministic (ties go to the lower index), so every rank computes the same bins.
    """
    bins: list[list[int]] = [[] for _ in range(n_bins)]
    loads = [0] * n_bins
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        target = min(range(n_bins), key=lambda b: (loads[b], b))
        bins[target].append(i)
        loads[target] += lengths[i]
    return bins


class StepPlan:
    """Which conversations every optimizer step trains on, and where.

    Args:
        lengths: Token count of every encoded example.
        n_trained: Supervised-token count of every example.
        global_batch: Conversations per optimizer step.
        world_size: Processes.
        accumulation: Micro-batches per process per step.
        n_epochs: Passes over the data (sets the number of steps unless ``max_steps``).
        seed: Shuffling seed; epoch ``e`` uses its own order derived from it.
        max_steps: Stop after this many steps (past the last epoch the data repeats).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        n_trained: Sequence[int],
        *,
        global_batch: int,
        world_size: int,
        accumulation: int,
        n_epochs: int,
        seed: int,
        max_steps: int | None = None,
    ) -> None:
        self.lengths = list(lengths)
        self.n_trained = list(n_trained)
        self.global_batch = max(1, min(global_batch, len(self.lengths)))
        self.world_size = world_size
        self.accumulation = accumulation
        self.seed = seed
        self.steps_per_epoch = math.ceil(len(self.lengths) / self.global_batch)
        self.total_steps = max_steps if max_steps is not None else self.steps_per_epoch * n_epochs
        self._orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            order = list(range(len(self.lengths)))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            self._orders = {epoch: order}  # one epoch at a time is all a run needs
        return self._orders[epoch]

    def position(self, step: int) -> dict[str, int]:
        """Where step ``step`` (0-based) starts in the data: epoch and offset in it."""
        epoch, k = divmod(step, self.steps_per_epoch)
        return {"epoch": epoch, "offset": k * self.global_batch, "step": step}

    def epoch_at(self, step: int) -> float:
        """Fractional epoch after ``step`` steps."""
        return step / self.steps_per_epoch

    def step_examples(self, step: int) -> list[int]:
        """The example indices of step ``step`` (0-based), in the shuffled order."""
        pos = self.position(step)
        return self._order(pos["epoch"])[pos["offset"] : pos["offset"] + self.global_batch]

    def micro_batches(self, step: int, rank: int) -> tuple[list[list[int]], int, int]:
        """This rank's micro-batches for ``step``, plus the step's supervised and total tokens.

        Returns:
            ``(bins, n_trained, n_tokens)``: ``accumulation`` lists of example indices (some
            may be empty near the end of an epoch), and the counts over all ranks.
        """
        indices = self.step_examples(step)
        bins = balance([self.lengths[i] for i in indices], self.world_size * self.accumulation)
        mine = bins[rank * self.accumulation : (rank + 1) * self.accumulation]
        n_trained = sum(self.n_trained[i] for i in indices)
        n_tokens = sum(self.lengths[i] for i in indices)
        return [[indices[j] for j in b] for b in mine], n_trained, n_tokens
