"""Variable-length attention for packed rows without flash-attention (CPUs, GPUs without it).

With SDPA, transformers keeps packed conversations apart with a dense block-diagonal mask over
the whole row: memory and compute grow with the square of the *row* length, although only the
diagonal blocks matter. Here each conversation attends causally to itself, one SDPA call per
conversation, so the cost grows with the sum of the squares of the conversation lengths (for
16 chats of ~200 tokens in a row: about 10× less attention work) and no mask is built.

Registered with transformers as ``"synth_lab_varlen"``. Anything that is not a packed,
unpadded training row (generation with a KV cache, padded batches) goes to the stock SDPA path.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import torch
import torch.nn.functional as F

NAME = "synth_lab_varlen"
KERNEL_DEVICES = ("cuda",)  # where PyTorch's varlen flash kernel exists
_registered = False
_cuda_varlen_ok = True
_reported: set[str] = set()
log = logging.getLogger(__name__)


def _fallback(reason: str) -> None:
    """Say once per process (and reason) that the fast kernel is not used, never silently."""
    if reason not in _reported:
        _reported.add(reason)
        log.warning("varlen attention: %s; using one SDPA call per conversation", reason)


def _boundaries(kwargs: dict[str, Any], length: int) -> list[int] | None:
    """Conversation starts and the row end: the trainer's host copy (``synth_lab_bounds``,
    computed once per row), else ``cu_seq_lens_q`` or restarting positions (a device sync)."""
    bounds = kwargs.get("synth_lab_bounds")
    if bounds and bounds[-1] == length:
        return list(bounds)
    cu = kwargs.get("cu_seq_lens_q")
    if cu is not None:
        return [int(x) for x in cu.tolist()]
    positions = kwargs.get("position_ids")
    if positions is None or positions.shape[0] != 1:
        return None
    starts = (positions[0, 1:] != positions[0, :-1] + 1).nonzero().squeeze(1) + 1
    return [0, *starts.tolist(), length]


def varlen_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal attention within each packed conversation: ``[1, H, L, D]`` in, ``[1, L, H, D]``
    out, like every transformers attention function."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    length = query.shape[2]
    packed = attention_mask is None and query.shape[0] == 1 and key.shape[2] == length
    bounds = _boundaries(kwargs, length) if packed else None
    if bounds is None or kwargs.get("sliding_window"):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout, scaling, **kwargs
        )
    gqa = query.shape[1] != key.shape[1]
    p = dropout if module.training else 0.0
    device = query.device.type
    if torch.is_autocast_enabled(device):
        # Under autocast q/k come from fp32 projections (norms, rotary) while v is already in
        # the compute dtype: one dtype for all three, or the fused kernels refuse them.
        dtype = torch.get_autocast_dtype(device)
        query, key, value = query.to(dtype), key.to(dtype), value.to(dtype)
    if device in KERNEL_DEVICES:
        if query.dtype not in (torch.float16, torch.bfloat16):
            _fallback(f"{query.dtype} inputs (the kernel needs fp16/bf16: train in bf16)")
        elif p != 0.0:
            _fallback("attention dropout (the kernel has none)")
        else:
            cu = kwargs.get("cu_seq_lens_q")
            out = _cuda_varlen(query, key, value, cu, bounds, scaling, gqa)
            if out is not None:
                return out, None
    sizes = [end - start for start, end in itertools.pairwise(bounds)]
    # split, not slicing: the backward of one split is one concatenation, while every slice
    # would write its gradient into a zero-filled copy of the whole row.
    outputs = [
        F.scaled_dot_product_attention(
            q, k, v, dropout_p=p, is_causal=True, scale=scaling, enable_gqa=gqa
        )
        for q, k, v in zip(
            query.split(sizes, dim=2),
            key.split(sizes, dim=2),
            value.split(sizes, dim=2),
            strict=True,
        )
    ]
    out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
    return out.transpose(1, 2).contiguous(), None


def _cuda_varlen(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    cu: torch.Tensor | None,
    bounds: list[int],
    scaling: float | None,
    gqa: bool,
) -> torch.Tensor | None:
    """PyTorch's own flash varlen kernel on GPUs (one call for the whole row), if it works here."""
    global _cuda_varlen_ok
    if not _cuda_varlen_ok:
        return None
    try:
        from torch.nn.attention.varlen import varlen_attn

        if cu is None or cu.device != query.device:
            cu = torch.tensor(bounds, dtype=torch.int32, device=query.device)
        longest = max(b - a for a, b in itertools.pairwise(bounds))
        out = varlen_attn(
            query[0].transpose(0, 1),  # [L, H, D]
            key[0].transpose(0, 1),
            value[0].transpose(0, 1),
            cu.to(torch.int32),
            cu.to(torch.int32),
            longest,
            longest,
            scale=scaling,
            window_size=(-1, 0),  # causal
            enable_gqa=gqa,
        )
    except (ImportError, RuntimeError, NotImplementedError, TypeError) as exc:
        _cuda_varlen_ok = False  # an older torch or GPU: use the per-conversation loop
        _fallback(f"the varlen kernel is not available here ({type(exc).__name__}: {exc})")
        return None
    return out.unsqueeze(0)  # [1, L, H, D]


def varlen_mask(*args: Any, **kwargs: Any) -> torch.Tensor | None:
    """No mask for an unpadded row seen whole (the attention is causal per conversation);
    the SDPA mask otherwise (padding, a KV cache)."""
    from transformers.masking_utils import sdpa_mask

    whole = kwargs.get("q_length") == kwargs.get("kv_length") and not kwargs.get("q_offset")
    if kwargs.get("attention_mask") is None and whole and not kwargs.get("kv_offset"):
        return None
    return sdpa_mask(*args, **kwargs)


def register() -> str:
    """Make ``attn_implementation="synth_lab_varlen"`` known to transformers; returns the name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(NAME, varlen_attention)
        AttentionMaskInterface.register(NAME, varlen_mask)
        _registered = True
    return NAME
