"""Cross-entropy over the supervised positions without a whole row of logits.

With a 151k-token vocabulary the logits of one 4k-token row take 2.5 GB in fp32, and autograd
keeps them (and their softmax) until backward. Here the output projection and the loss are
computed ``CE_CHUNK_POSITIONS`` positions at a time, and the gradients of each chunk are
computed in the same pass (as fused-linear-cross-entropy kernels do): at most one chunk of
logits exists at any moment, and backward only scales the stored gradients.

It runs *inside* the model's forward, in place of the output layer's ``forward``, so FSDP's
gathered weights, DDP's hooks and peft wrappers see an ordinary forward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

IGNORE_INDEX = -100
CE_CHUNK_POSITIONS = 1024  # positions whose logits exist at once (fp32: chunk × vocab × 4 B)

# Models that post-process the logits after the output layer (soft-capping, scaling): the
# chunked head would skip that step, so they keep the plain path.
_LOGIT_POSTPROCESSING = ("final_logit_softcapping", "logit_scale", "logits_scaling")


class _LinearCrossEntropy(torch.autograd.Function):
    """``sum(cross_entropy(hidden @ weight.T, targets))``, chunk by chunk, gradients included."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        chunk: int,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        want_h, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.weight_dtype = weight.dtype
        w = weight.to(dtype)
        loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty_like(hidden) if want_h else None
        grad_w = (
            torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if want_w else None
        )
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start : start + chunk].to(dtype)
            t = targets[start : start + chunk]
            valid = (
                t != IGNORE_INDEX
            )  # a placeholder row's target adds nothing, as in F.cross_entropy
            t = t.clamp(min=0)
            logits = (h @ w.T).float()
            lse = torch.logsumexp(logits, dim=-1)
            loss += ((lse - logits.gather(1, t[:, None]).squeeze(1)) * valid).sum()
            # d loss / d logits = softmax - one_hot(target), in place over the chunk's logits.
            grad = logits.sub_(lse[:, None]).exp_()
            grad[torch.arange(t.shape[0], device=t.device), t] -= 1.0
            grad = (grad * valid[:, None]).to(dtype)
            if want_h:
                grad_h[start : start + chunk] = (grad @ w).to(hidden.dtype)
            if want_w:
                grad_w += (grad.T @ h).float()
        ctx.save_for_backward(grad_h if want_h else None, grad_w if want_w else None)
        return loss

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        grad_h, grad_w = ctx.saved_tensors
        dh = grad_h * grad_out.to(grad_h.dtype) if grad_h is not None else None
        dw = (grad_w * grad_out).to(ctx.weight_dtype) if grad_w is not None else None
        return dh, dw, None, None, None


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    chunk: int = CE_CHUNK_POSITIONS,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Summed cross-entropy of ``hidden @ weight.T`` against ``targets``, ``chunk`` rows at once.

    Args:
        hidden: ``[N, H]`` hidden states of the supervised positions.
        weight: ``[V, H]`` output projection.
        targets: ``[N]`` token ids.
        chunk: Positions per chunk.
        dtype: Matmul dtype (default: the autocast dtype if autocast is on, else the weight's);
            the softmax is always fp32.
    """
    if dtype is None:
        device = hidden.device.type
        on = torch.is_autocast_enabled(device)
        dtype = torch.get_autocast_dtype(device) if on else weight.dtype
    with torch.autocast(hidden.device.type, enabled=False):
        return _LinearCrossEntropy.apply(hidden, weight, targets, chunk, dtype)


def supports_chunked_loss(model: Any) -> bool:
    """Whether the model's logits are exactly its output layer's (a bias-free linear)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    config = getattr(model, "config", None)
    plain = not any(getattr(config, name, None) for name in _LOGIT_POSTPROCESSING)
    return isinstance(head, torch.nn.Linear) and head.bias is None and plain


@contextlib.contextmanager
def loss_head(model: Any, targets: torch.Tensor, chunk: int = CE_CHUNK_POSITIONS) -> Iterator[None]:
    """While active, the output layer returns the summed loss against ``targets`` (a scalar,
    as ``logits``) instead of the logits of the positions it is given."""
    head = model.get_output_embeddings()

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        flat = hidden.reshape(-1, hidden.shape[-1])
        return linear_cross_entropy(flat, head.weight, targets, chunk=chunk)

    head.forward = forward
    try:
        yield
    finally:
        del head.forward
