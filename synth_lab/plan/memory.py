"""Per-GPU memory terms of one training step, each with the arithmetic that produced it.

The static terms (weights, gradients, optimizer states) follow what the trainer allocates:
full finetunes keep fp32 weights and compute under bf16 autocast; LoRA freezes the base in the
compute dtype (fp32 on CPUs) and trains fp32 adapters; QLoRA stores the targeted linear
weights as 4-bit NF4 with double-quantized constants and, as ``prepare_model_for_kbit_training``
does, upcasts everything else (embeddings, head, norms, biases) to fp32. AdamW keeps two fp32
moments per trained parameter. Sharding divides what it shards by the group it shards over.
"""

from __future__ import annotations

from dataclasses import dataclass

from synth_lab.plan.shapes import ModelShape

GIB = 1 << 30
CUDA_CONTEXT = 1 * GIB  # CUDA context, cuBLAS/cuDNN workspaces, allocator slack
NCCL_BUFFERS = GIB // 2  # NCCL communicators and their staging buffers, when distributed
ALLOCATOR_RESERVE = 0.05  # fragmentation of the caching allocator, as a share of the rest
LOGITS_CHUNK = 1024  # positions whose logits the chunked cross-entropy holds at once
NF4_BLOCK, NF4_BLOCK2 = 64, 256  # bitsandbytes: 64 weights per absmax, 256 absmaxes per fp32 one
NF4_FIXED = 16 * 4 + 4 + 256 * 4  # per weight: the NF4 code, an offset, the 8-bit absmax code


@dataclass(frozen=True)
class Setup:
    """How one job runs, in the terms memory depends on (derived from a config)."""

    mode: str  # "full_finetune", "lora", "qlora"
    precision: str  # "bf16", "fp16", "fp32": what the compute runs in
    world_size: int
    per_device_batch: int
    sequence_length: int
    sharding: str = "none"  # "none", "full_shard", "shard_grad_op", "hybrid_shard", "zero1/2/3"
    gpus_per_node: int = 1
    checkpointing: bool = False
    lora_r: int = 16
    lora_target: str | tuple[str, ...] = "all-linear"
    optimizer: str = "adamw"  # or "adamw_8bit"
    offload: bool = False
    logits_chunk: int | None = LOGITS_CHUNK
    supervised_fraction: float = 1.0
    device: str = "cuda"

    @property
    def compute_bytes(self) -> int:
        return 4 if self.precision == "fp32" else 2

    @property
    def shard_group(self) -> int:
        return self.gpus_per_node if self.sharding == "hybrid_shard" else self.world_size

    def divides(self, what: str) -> int:
        """By how many GPUs ``what`` (params, grads, optim) is split."""
        levels = {
            "full_shard": {"params", "grads", "optim"},
            "hybrid_shard": {"params", "grads", "optim"},
            "zero3": {"params", "grads", "optim"},
            "shard_grad_op": {"grads", "optim"},
            "zero2": {"grads", "optim"},
            "zero1": {"optim"},
        }
        return self.shard_group if what in levels.get(self.sharding, set()) else 1


@dataclass(frozen=True)
class Term:
    """One memory term: a category, its bytes per GPU, and how it was derived."""

    name: str
    category: str  # weights, gradients, optimizer, activations, other
    bytes: int
    how: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "category": self.category, "bytes": self.bytes, "how": self.how}


def nf4_constants(n: int) -> int:
    """Bytes of a 4-bit weight's quantization state (bitsandbytes NF4, double quantization)."""
    blocks = -(-n // NF4_BLOCK)
    return blocks + 4 * -(-blocks // NF4_BLOCK2) + NF4_FIXED


def trainable_params(shape: ModelShape, s: Setup) -> int:
    if s.mode == "full_finetune":
        return shape.params
    return shape.lora_params(s.lora_r, s.lora_target)


def static_terms(shape: ModelShape, s: Setup) -> list[Term]:
    """Weights, gradients and optimizer states per GPU."""
    n, t = shape.params, trainable_params(shape, s)
    dp, dg, do = s.divides("params"), s.divides("grads"), s.divides("optim")

    def split(d: int) -> str:
        return f" / {d} GPUs" if d > 1 else ""

    off = s.offload
    terms: list[Term] = []
    if s.mode == "full_finetune":
        on_gpu = 0 if off and dp > 1 else 4 * n // dp
        how = f"{n:,} params × 4 B"
        how += " (fp32 weights)" if s.precision == "fp32" else f" (fp32; autocast to {s.precision})"
        how += split(dp)
        terms.append(
            Term("fp32 weights", "weights", on_gpu, how + (" on the CPU" if not on_gpu else ""))
        )
        if s.precision != "fp32":
            if dp > 1:
                unit = shape.layer_params
                b = 2 * (4 + s.compute_bytes) * unit
                how = f"2 gathered blocks (prefetch) × {unit:,} params × (4 B fp32 + 2 B cast)"
            else:
                b = 2 * n
                how = f"{n:,} params × 2 B: autocast's cached {s.precision} copy of every weight"
            terms.append(Term(f"{s.precision} compute copies", "weights", b, how))
    else:
        if s.mode == "lora":
            base_b = s.compute_bytes if s.device == "cuda" else 4
            base = base_b * n // dp
            how = f"{n:,} frozen params × {base_b} B" + split(dp)
        else:
            sizes = [a * b for _, a, b in shape.projections()]
            lin = shape.layers * sum(sizes)
            consts = shape.layers * sum(nf4_constants(size) for size in sizes)
            rest = n - lin
            # The 4-bit weights are never sharded (their quantization state stays whole):
            # every GPU holds all of them; sharding divides the other parameters only.
            base = lin // 2 + consts + 4 * rest // dp
            how = (
                f"{lin:,} linear params × 0.5 B (NF4) + {consts:,} B quantization constants "
                + f"(per weight: 1 B absmax per {NF4_BLOCK}, 4 B per {NF4_BLOCK2} absmaxes, "
                f"{NF4_FIXED} B of code tables{', on every GPU' if dp > 1 else ''}) "
                + f"+ {rest:,} other params × 4 B (upcast to fp32 for k-bit training)"
                + split(dp)
            )
        terms.append(Term("frozen base", "weights", base, how))
        how = f"{t:,} adapter params (r={s.lora_r}) × 4 B fp32" + split(dp)
        terms.append(Term("LoRA adapters", "weights", 4 * t // dp, how))
    grads = 0 if off and dg > 1 and dp > 1 else 4 * t // dg
    how = f"{t:,} trained params × 4 B fp32" + split(dg) + (" on the CPU" if not grads else "")
    terms.append(Term("gradients", "gradients", grads, how))
    per = 2 if s.optimizer == "adamw_8bit" else 8
    what = "2 × 1 B (8-bit AdamW)" if per == 2 else "2 × 4 B (AdamW moments, fp32)"
    optim = 0 if off else per * t // do
    how = f"{t:,} trained params × {what}" + split(do) + (" — offloaded to the CPU" if off else "")
    terms.append(Term("optimizer states", "optimizer", optim, how))
    return terms


def layer_activation_bytes(shape: ModelShape, s: Setup) -> tuple[int, str]:
    """Bytes saved for the backward pass per token per decoder layer (no checkpointing)."""
    h, i = shape.hidden, shape.intermediate if not shape.experts else shape.expert_intermediate
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    b = s.compute_bytes
    casts = 1 if b == 4 else 3  # autocast casts the norm output once per q/k/v projection
    norms = 2 * (4 + (0 if b == 4 else b)) * h  # each RMSNorm keeps an fp32 copy (+ its cast)
    attn = b * (casts * h + 2 * (q + kv) + (q + 2 * kv) + 2 * q)
    if shape.qk_norm:
        attn += (4 + (0 if b == 4 else b)) * (q + kv)
    k_exp = shape.experts_per_token or 1
    mlp = b * ((casts - 1 or 1) * h + 4 * i * k_exp)
    total = norms + attn + mlp
    how = (
        f"per token per layer: norms 2×(4 B fp32 copy{'' if b == 4 else ' + cast'})×{h}, "
        f"attention {b} B × ({casts}×{h} inputs + projections, rotary q/k, SDPA q/k/v/out, "
        f"o_proj input), MLP {b} B × ({'2' if b != 4 else '1'}×{h} + 4×{i}"
        f"{f'×{k_exp} experts' if k_exp > 1 else ''})"
        f"{', q/k norms' if shape.qk_norm else ''} = {total:,} B"
    )
    return total, how


def activation_terms(shape: ModelShape, s: Setup) -> list[Term]:
    """Activations kept for the backward pass, and the logits/loss buffer."""
    tokens = s.per_device_batch * s.sequence_length
    per_layer, how = layer_activation_bytes(shape, s)
    resid = 4 if s.mode == "full_finetune" or s.device != "cuda" else s.compute_bytes
    if s.checkpointing:
        b = tokens * (shape.layers * resid * shape.hidden + per_layer)
        how = (
            f"{tokens:,} tokens × ({shape.layers} layer inputs × {resid} B × {shape.hidden} kept "
            f"+ one layer recomputed at a time); {how}"
        )
    else:
        b = tokens * shape.layers * per_layer
        micro = f"{s.per_device_batch} × {s.sequence_length}"
        how = f"{tokens:,} tokens ({micro}) × {shape.layers} layers; {how}"
    final = tokens * (4 + s.compute_bytes) * shape.hidden
    terms = [Term("activations", "activations", b + final, how + "; + final norm")]
    supervised = max(1, round(tokens * s.supervised_fraction))
    positions = min(supervised, s.logits_chunk) if s.logits_chunk else supervised
    per_pos = s.compute_bytes + (4 if s.compute_bytes != 4 else 0) + 4 + 4
    how = (
        f"{positions:,} positions × vocabulary {shape.vocab:,} × {per_pos} B (logits"
        f"{'' if s.compute_bytes == 4 else ', fp32 copy'}, log-softmax kept, its gradient); "
    )
    if s.logits_chunk:
        how += (
            f"chunked cross-entropy: logits of at most {s.logits_chunk} supervised positions "
            f"at once, as the trainer's chunked loss computes them (logits_chunk={s.logits_chunk})"
        )
    else:
        how += (
            f"all {supervised:,} supervised positions of a micro-batch at once "
            f"({s.supervised_fraction:.0%} of {tokens:,} tokens)"
        )
    terms.append(Term("logits and loss", "activations", positions * shape.vocab * per_pos, how))
    return terms


def other_terms(shape: ModelShape, s: Setup) -> list[Term]:
    """Communication buffers and the runtime's own memory."""
    if s.device != "cuda":
        return []
    terms = [Term("CUDA context", "other", CUDA_CONTEXT, "CUDA context, library workspaces: 1 GiB")]
    if s.world_size > 1:
        terms.append(Term("NCCL", "other", NCCL_BUFFERS, "communicators and buffers: 0.5 GiB"))
    if s.world_size > 1 and s.sharding == "none":
        t = trainable_params(shape, s)
        terms.append(Term("DDP buckets", "other", 4 * t, f"{t:,} × 4 B gradient buckets (DDP)"))
    return terms


def all_terms(shape: ModelShape, s: Setup) -> list[Term]:
    terms = static_terms(shape, s) + activation_terms(shape, s) + other_terms(shape, s)
    if s.device == "cuda":
        rest = sum(t.bytes for t in terms)
        how = (
            f"{ALLOCATOR_RESERVE:.0%} of the other terms: PyTorch's caching allocator keeps "
            "freed blocks that a new request of another size cannot reuse"
        )
        terms.append(Term("allocator reserve", "other", int(rest * ALLOCATOR_RESERVE), how))
    return terms
