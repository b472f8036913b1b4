"""Model shapes without weights: a ``config.json`` (local folder or Hugging Face cache) or a
built-in table of common open models, and exact parameter counts from the shape.

The table's values are copied from each model's public ``config.json``. Counting follows the
Hugging Face implementations: embeddings, an output head unless tied, per layer the attention
projections (GQA: fewer key/value heads; biases where the family has them; per-head q/k norms
for Qwen3 and Gemma 3), the MLP (gated: three matrices; MoE: every expert plus the router) and
the RMSNorm scales.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synth_lab.errors import ConfigError, Problem
from synth_lab.models.tiny import TINY_CHAT_ID


@dataclass(frozen=True)
class ModelShape:
    """What memory and FLOPs depend on. Build from a table row or a ``config.json``."""

    id: str
    family: str  # the ``model_type``: qwen3, qwen2, llama, mistral, gemma2, gemma3_text, phi3, ...
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    qkv_bias: bool = False
    qk_norm: bool = False
    norms_per_layer: int = 2
    experts: int = 0  # MoE: routed experts per layer (0: dense MLP)
    experts_per_token: int = 0
    expert_intermediate: int = 0
    source: str = "built-in table"

    # -- exact parameter counts -------------------------------------------------------------------

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def head_params(self) -> int:
        """The output projection; 0 when it shares the embedding matrix."""
        return 0 if self.tied else self.vocab * self.hidden

    @property
    def attention_params(self) -> int:
        """One layer's q, k, v, o projections (+ biases, + q/k norms)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        n = self.hidden * q + 2 * self.hidden * kv + q * self.hidden
        if self.qkv_bias:
            n += q + 2 * kv
        if self.qk_norm:
            n += 2 * self.head_dim
        return n

    @property
    def mlp_params(self) -> int:
        """One layer's MLP: gate, up, down (every expert and the router for MoE)."""
        if self.experts:
            return self.experts * 3 * self.hidden * self.expert_intermediate + (
                self.hidden * self.experts
            )
        return 3 * self.hidden * self.intermediate

    @property
    def layer_params(self) -> int:
        return self.attention_params + self.mlp_params + self.norms_per_layer * self.hidden

    @property
    def params(self) -> int:
        """All parameters, counted once (a tied head is not counted twice)."""
        body = self.layers * self.layer_params + self.hidden  # + the final norm
        return self.embedding_params + self.head_params + body

    @property
    def active_params(self) -> int:
        """Parameters one token passes through (MoE: only the routed experts)."""
        if not self.experts:
            return self.params
        unused = (self.experts - self.experts_per_token) * 3 * self.hidden
        return self.params - self.layers * unused * self.expert_intermediate

    def projections(self) -> list[tuple[str, int, int]]:
        """One layer's linear projections as ``(name, in, out)`` (MoE: one row per expert's)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        h = self.hidden
        rows = [("q_proj", h, q), ("k_proj", h, kv), ("v_proj", h, kv), ("o_proj", q, h)]
        i = self.expert_intermediate if self.experts else self.intermediate
        mlp = [("gate_proj", h, i), ("up_proj", h, i), ("down_proj", i, h)]
        if self.family == "phi3":  # fused projections: one LoRA pair and one 4-bit weight each
            rows = [("qkv_proj", h, q + 2 * kv), ("o_proj", q, h)]
            mlp = [("gate_up_proj", h, 2 * i), ("down_proj", i, h)]
        return rows + mlp * (self.experts or 1)

    def lora_params(self, r: int, target: str | list[str] | tuple[str, ...]) -> int:
        """Trainable adapter parameters: ``r × (in + out)`` for every targeted projection."""
        names = [target] if isinstance(target, str) and target != "all-linear" else target
        per_layer = sum(
            r * (a + b)
            for name, a, b in self.projections()
            if target == "all-linear" or name in names
        )
        return self.layers * per_layer

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["params"] = self.params
        out["active_params"] = self.active_params
        return out


def _row(family: str, h: int, i: int, n: int, a: int, kv: int, v: int, tied: bool, **kw: Any):
    return dict(
        family=family, hidden=h, intermediate=i, layers=n, heads=a, kv_heads=kv, vocab=v,
        tied=tied, head_dim=kw.pop("head_dim", h // a), **kw,
    )  # fmt: skip


_Q3 = {"head_dim": 128, "qk_norm": True}
_Q2 = {"qkv_bias": True}
_G2 = {"norms_per_layer": 4}
_G3 = {"norms_per_layer": 4, "qk_norm": True}
_G2W, _G3W = {**_G2, "head_dim": 256}, {**_G3, "head_dim": 256}  # head_dim ≠ hidden / heads
_G2N, _G3N = {**_G2, "head_dim": 128}, {**_G3, "head_dim": 128}

# Values from each model's public config.json (hidden, intermediate, layers, heads, kv heads,
# vocabulary, tied embeddings). Gemma 3 4B+ count the text model only (no vision tower).
# fmt: off
BUILTIN: dict[str, dict[str, Any]] = {
    "synth-lab/tiny-chat": _row("qwen3", 64, 256, 2, 4, 2, 530, True, head_dim=16, qk_norm=True),
    "Qwen/Qwen3-0.6B": _row("qwen3", 1024, 3072, 28, 16, 8, 151936, True, **_Q3),
    "Qwen/Qwen3-1.7B": _row("qwen3", 2048, 6144, 28, 16, 8, 151936, True, **_Q3),
    "Qwen/Qwen3-4B": _row("qwen3", 2560, 9728, 36, 32, 8, 151936, True, **_Q3),
    "Qwen/Qwen3-8B": _row("qwen3", 4096, 12288, 36, 32, 8, 151936, False, **_Q3),
    "Qwen/Qwen3-14B": _row("qwen3", 5120, 17408, 40, 40, 8, 151936, False, **_Q3),
    "Qwen/Qwen3-32B": _row("qwen3", 5120, 25600, 64, 64, 8, 151936, False, **_Q3),
    "Qwen/Qwen3-30B-A3B": _row(
        "qwen3_moe", 2048, 6144, 48, 32, 4, 151936, False, experts=128, experts_per_token=8,
        expert_intermediate=768, **_Q3,
    ),
    "Qwen/Qwen2.5-0.5B-Instruct": _row("qwen2", 896, 4864, 24, 14, 2, 151936, True, **_Q2),
    "Qwen/Qwen2.5-1.5B-Instruct": _row("qwen2", 1536, 8960, 28, 12, 2, 151936, True, **_Q2),
    "Qwen/Qwen2.5-3B-Instruct": _row("qwen2", 2048, 11008, 36, 16, 2, 151936, True, **_Q2),
    "Qwen/Qwen2.5-7B-Instruct": _row("qwen2", 3584, 18944, 28, 28, 4, 152064, False, **_Q2),
    "Qwen/Qwen2.5-14B-Instruct": _row("qwen2", 5120, 13824, 48, 40, 8, 152064, False, **_Q2),
    "Qwen/Qwen2.5-32B-Instruct": _row("qwen2", 5120, 27648, 64, 40, 8, 152064, False, **_Q2),
    "Qwen/Qwen2.5-72B-Instruct": _row("qwen2", 8192, 29568, 80, 64, 8, 152064, False, **_Q2),
    "meta-llama/Llama-3.2-1B-Instruct": _row("llama", 2048, 8192, 16, 32, 8, 128256, True),
    "meta-llama/Llama-3.2-3B-Instruct": _row("llama", 3072, 8192, 28, 24, 8, 128256, True),
    "meta-llama/Llama-3.1-8B-Instruct": _row("llama", 4096, 14336, 32, 32, 8, 128256, False),
    "meta-llama/Llama-3.1-70B-Instruct": _row("llama", 8192, 28672, 80, 64, 8, 128256, False),
    "meta-llama/Llama-3.3-70B-Instruct": _row("llama", 8192, 28672, 80, 64, 8, 128256, False),
    "mistralai/Mistral-7B-Instruct-v0.3": _row("mistral", 4096, 14336, 32, 32, 8, 32768, False),
    "google/gemma-2-2b-it": _row("gemma2", 2304, 9216, 26, 8, 4, 256000, True, **_G2W),
    "google/gemma-2-9b-it": _row("gemma2", 3584, 14336, 42, 16, 8, 256000, True, **_G2W),
    "google/gemma-2-27b-it": _row("gemma2", 4608, 36864, 46, 32, 16, 256000, True, **_G2N),
    "google/gemma-3-1b-it": _row("gemma3_text", 1152, 6912, 26, 4, 1, 262144, True, **_G3W),
    "google/gemma-3-4b-it": _row("gemma3_text", 2560, 10240, 34, 8, 4, 262208, True, **_G3W),
    "google/gemma-3-12b-it": _row("gemma3_text", 3840, 15360, 48, 16, 8, 262208, True, **_G3W),
    "google/gemma-3-27b-it": _row("gemma3_text", 5376, 21504, 62, 32, 16, 262208, True, **_G3N),
    "HuggingFaceTB/SmolLM2-135M-Instruct": _row("llama", 576, 1536, 30, 9, 3, 49152, True),
    "HuggingFaceTB/SmolLM2-360M-Instruct": _row("llama", 960, 2560, 32, 15, 5, 49152, True),
    "HuggingFaceTB/SmolLM2-1.7B-Instruct": _row("llama", 2048, 8192, 24, 32, 32, 49152, True),
    "microsoft/Phi-3-mini-4k-instruct": _row("phi3", 3072, 8192, 32, 32, 32, 32064, False),
    "microsoft/Phi-3-medium-4k-instruct": _row("phi3", 5120, 17920, 40, 40, 10, 32064, False),
    "microsoft/phi-4": _row("phi3", 5120, 17920, 40, 40, 10, 100352, False),
    "microsoft/Phi-4-mini-instruct": _row("phi3", 3072, 8192, 32, 24, 8, 200064, True),
}
# fmt: on

# Base and instruct variants share a shape: accept both spellings.
_ALIASES = {
    k.removesuffix("-Instruct").removesuffix("-instruct").removesuffix("-it").lower(): k
    for k in BUILTIN
}


def _builtin(model_id: str) -> ModelShape | None:
    key = model_id if model_id in BUILTIN else None
    if key is None:
        bare = model_id.lower()
        key = next((k for k in BUILTIN if k.lower() == bare), None) or _ALIASES.get(
            bare.removesuffix("-instruct").removesuffix("-it")
        )
    return ModelShape(id=model_id, **BUILTIN[key]) if key else None


def _tiny_chat_config() -> Path | None:
    """The embedded model's ``config.json`` once it has been built (the table has it otherwise)."""
    from synth_lab.models.tiny import _BUILD_NAME, cache_root

    found = cache_root() / _BUILD_NAME / "config.json"
    return found if found.is_file() else None


def _hf_cache_config(model_id: str) -> Path | None:
    """``config.json`` of ``model_id`` in the Hugging Face cache, without importing the hub."""
    home = os.environ.get("HF_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache", "huggingface"
    )
    hub = Path(os.environ.get("HF_HUB_CACHE") or os.path.join(home, "hub"))
    snapshots = hub / f"models--{model_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def shape_from_config(data: dict[str, Any], model_id: str, source: str) -> ModelShape:
    """A shape from the dict of a ``config.json`` (multimodal configs: their ``text_config``)."""
    cfg = data.get("text_config") or data
    family = str(cfg.get("model_type") or data.get("model_type") or "unknown")
    try:
        hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        experts = int(cfg.get("num_experts") or cfg.get("num_local_experts") or 0)
        return ModelShape(
            id=model_id,
            family=family,
            hidden=hidden,
            intermediate=int(cfg["intermediate_size"]),
            layers=int(cfg["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            vocab=int(cfg["vocab_size"]),
            tied=bool(cfg.get("tie_word_embeddings", data.get("tie_word_embeddings", True))),
            qkv_bias=bool(cfg.get("attention_bias", family == "qwen2")),
            qk_norm=family.startswith(("qwen3", "gemma3")),
            norms_per_layer=4 if family.startswith(("gemma2", "gemma3")) else 2,
            experts=experts,
            experts_per_token=int(cfg.get("num_experts_per_tok") or 0),
            expert_intermediate=int(cfg.get("moe_intermediate_size") or cfg["intermediate_size"]),
            source=source,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the model shape from {source}: missing or bad {exc}",
            [
                Problem(
                    "job.model", None, None, f"config.json lacks {exc}", "pass a causal LM folder"
                )
            ],
        ) from None


def resolve_shape(
    model_id: str, shape: ModelShape | str | os.PathLike[str] | None = None
) -> ModelShape:
    """The shape of ``model_id``: ``shape`` if given (a shape or a folder), then a local folder,
    the Hugging Face cache, and the built-in table, in that order.

    Raises:
        ConfigError: The model is none of these; the message says how to pass a folder.
    """
    if isinstance(shape, ModelShape):
        return shape
    for candidate in (shape, model_id):
        if candidate is None:
            continue
        folder = Path(candidate).expanduser()
        if (folder / "config.json").is_file():
            data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            return shape_from_config(data, model_id, f"{folder.name}/config.json")
    cached = _tiny_chat_config() if model_id == TINY_CHAT_ID else _hf_cache_config(model_id)
    if cached is not None:
        data = json.loads(cached.read_text(encoding="utf-8"))
        return shape_from_config(data, model_id, f"cached {cached.parent.name[:8]}…/config.json")
    found = _builtin(model_id)
    if found is not None:
        return found
    raise ConfigError(
        f"unknown model {model_id!r}: no config.json found and not in the built-in table",
        [
            Problem(
                "job.model",
                None,
                None,
                f"the planner does not know the shape of {model_id!r}",
                "pass the folder that holds its config.json (estimate(..., shape=FOLDER), "
                "synth-lab plan --model-config FOLDER) or set [job].model to that folder",
                code="unknown_model",
            )
        ],
    )
