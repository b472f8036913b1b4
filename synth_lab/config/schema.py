"""Pydantic models for every section and key of the SFT config (the synth-ai TOML format).

Each section is its own model with ``extra="forbid"``: a key that nothing reads is an error, not
silently dropped. Keys whose presence matters to the job payload default to ``None`` ("not
given"); the resolved values live as properties on :class:`synth_lab.config.SFTConfig`.
Every field has a ``description``: it feeds help texts, the JSON schema and the widget form.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

from synth_lab.metrics import VAL_LOSS

# TOML has real booleans: "yes", "true" or 1 where a bool belongs is a mistake, not a synonym.
Bool = Annotated[bool, Strict()]


class Section(BaseModel):
    """Base of every config section: immutable, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ForwardedSection(BaseModel):
    """A section forwarded verbatim to the backend: unknown keys are kept (and warned about)."""

    model_config = ConfigDict(extra="allow", frozen=True)


ALGORITHMS: tuple[tuple[str, str, str], ...] = (
    ("offline", "sft", "fft"),
    ("offline", "supervised_finetune", "fft"),
    ("offline", "sft", "lora"),
)


class AlgorithmSection(Section):
    type: str = Field(description="Algorithm family; `offline` for SFT.")
    method: str = Field(description="`sft` or `supervised_finetune`.")
    variety: str = Field(description="`fft` (full finetune) or `lora`.")


class JobSection(Section):
    model: str = Field(
        min_length=1, description="Base model: a Hugging Face id or a local path (required)."
    )
    data: str | None = Field(
        default=None,
        description="Training JSONL. `--dataset` overrides it; relative paths resolve from the "
        "current directory.",
    )
    data_path: str | None = Field(default=None, description="Alias of `data`.")
    poll_seconds: int | None = Field(
        default=None, gt=0, description="Seconds between status polls of a remote job."
    )


class ComputeSection(Section):
    gpu_type: str | None = Field(
        default=None,
        description="GPU model, e.g. `H100`, `A100`, `H200` (required for remote jobs).",
    )
    gpu_count: int | None = Field(default=None, gt=0, description="Total GPUs across all nodes.")
    nodes: int | None = Field(default=None, gt=0, description="Number of nodes.")
    gpus_per_node: int | None = Field(default=None, gt=0, description="GPUs on each node.")
    variant: str | None = Field(default=None, description="Informational, e.g. `H100-4x`.")
    topology: dict[str, Any] | None = Field(
        default=None, description="Informational cluster topology (not sent; see [data.topology])."
    )


class DataSection(Section):
    validation_path: str | None = Field(default=None, description="Validation JSONL.")
    topology: dict[str, Any] | None = Field(
        default=None,
        description="Informational cluster topology, forwarded verbatim (`container_count`, "
        "`gpus_per_node`, `total_gpus`, `nodes`, `variant`).",
    )


TOPOLOGY_KEYS: dict[str, type] = {
    "container_count": int,
    "gpus_per_node": int,
    "total_gpus": int,
    "nodes": int,
    "variant": str,
}


class ValidationSection(Section):
    enabled: Bool = Field(default=True, description="Run validation during training.")
    evaluation_strategy: Literal["steps", "epoch", "no"] = Field(
        default="steps", description="When to evaluate: every `eval_steps` steps (`steps`)."
    )
    eval_steps: int = Field(
        default=0, ge=0, description="Steps between evaluations (0: backend default)."
    )
    save_best_model_at_end: Bool = Field(
        default=True, description="Keep the best checkpoint (by the metric) as the final model."
    )
    metric_for_best_model: str = Field(
        default=VAL_LOSS, min_length=1, description="Metric that picks the best checkpoint."
    )
    greater_is_better: Bool = Field(
        default=False, description="Whether a larger metric is better (false for a loss)."
    )


def _all_linear(value: list[str] | str) -> list[str] | str:
    # Real configs write ["all-linear"]; peft only understands the bare string.
    return "all-linear" if value == ["all-linear"] else value


TargetModules = Annotated[list[str] | Literal["all-linear"], AfterValidator(_all_linear)]


class LoraSection(Section):
    r: int = Field(default=16, gt=0, description="LoRA rank.")
    alpha: int | float = Field(default=32, gt=0, description="LoRA scaling alpha.")
    dropout: float = Field(default=0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: TargetModules = Field(
        default="all-linear", description='Module names to adapt, or `"all-linear"`.'
    )


KNOWN_MODES = ("full_finetune", "lora", "qlora", "sft_offline", "peft", "fft")


class TrainingSection(Section):
    mode: str | None = Field(
        default=None,
        description="`full_finetune`, `lora`, `qlora`, `sft_offline` … (documentation; the "
        "backend infers it).",
    )
    use_qlora: Bool | None = Field(
        default=None, description="Train LoRA adapters on a 4-bit (NF4) quantised base model."
    )
    validation: ValidationSection | None = Field(
        default=None, description="Validation during training."
    )
    lora: LoraSection | None = Field(default=None, description="LoRA adapter settings.")


class ParallelismSection(ForwardedSection):
    use_deepspeed: Bool | None = Field(default=None, description="Use DeepSpeed ZeRO.")
    deepspeed_stage: int | None = Field(default=None, ge=0, le=3, description="ZeRO stage 0–3.")
    fsdp: Bool | None = Field(default=None, description="Use PyTorch FSDP.")
    fsdp_sharding_strategy: (
        Literal["full_shard", "shard_grad_op", "no_shard", "hybrid_shard"] | None
    ) = Field(default=None, description="FSDP sharding strategy.")
    fsdp_auto_wrap_policy: str | None = Field(
        default=None, description="FSDP auto-wrap policy, e.g. `transformer_block`."
    )
    fsdp_use_orig_params: Bool | None = Field(
        default=None, description="FSDP `use_orig_params` (needed for LoRA under FSDP)."
    )
    activation_checkpointing: Bool | None = Field(
        default=None, description="Recompute activations in the backward pass to save memory."
    )
    tensor_parallel_size: int | None = Field(default=None, gt=0, description="Tensor parallel.")
    pipeline_parallel_size: int | None = Field(default=None, gt=0, description="Pipeline parallel.")
    bf16: Bool | None = Field(default=None, description="bfloat16 mixed precision.")
    fp16: Bool | None = Field(default=None, description="float16 mixed precision.")


class HyperparametersSection(Section):
    n_epochs: int = Field(default=1, gt=0, description="Passes over the training data.")
    batch_size: int | None = Field(
        default=None,
        gt=0,
        description="Batch size (used as the global batch when neither "
        "`global_batch` nor `per_device_batch` is given).",
    )
    global_batch: int | None = Field(
        default=None, gt=0, description="Sequences per optimizer step."
    )
    per_device_batch: int | None = Field(
        default=None, gt=0, description="Sequences per device per micro-step."
    )
    gradient_accumulation_steps: int | None = Field(
        default=None, gt=0, description="Micro-steps accumulated per optimizer step."
    )
    sequence_length: int | None = Field(
        default=None, gt=0, description="Maximum tokens per sequence (longer records are cut)."
    )
    learning_rate: float | None = Field(default=None, gt=0, description="Peak learning rate.")
    warmup_ratio: float | None = Field(
        default=None, ge=0, le=1, description="Share of steps spent warming up the learning rate."
    )
    train_kind: Literal["fft", "peft"] | None = Field(
        default=None, description="`fft` (full finetune) or `peft` (LoRA adapters)."
    )
    weight_decay: float | None = Field(
        default=None, ge=0, description="AdamW weight decay (local trainer only)."
    )
    parallelism: ParallelismSection | None = Field(
        default=None, description="Distributed and precision settings, forwarded verbatim."
    )
    world_size: int | None = Field(
        default=None, gt=0, description="Informational; the world size comes from [compute]."
    )
    lora: LoraSection | None = Field(default=None, description="Alias of [training.lora].")
    lora_rank: int | None = Field(default=None, gt=0, description="Alias of [training.lora].r.")
    lora_alpha: int | float | None = Field(
        default=None, gt=0, description="Alias of [training.lora].alpha."
    )
    lora_dropout: float | None = Field(
        default=None, ge=0, lt=1, description="Alias of [training.lora].dropout."
    )
    lora_target_modules: TargetModules | None = Field(
        default=None, description="Alias of [training.lora].target_modules."
    )


class ConfigModel(Section):
    """The whole TOML document."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    algorithm: AlgorithmSection | None = Field(default=None, description="Algorithm selector.")
    job: JobSection = Field(description="Model and data.")
    compute: ComputeSection | None = Field(default=None, description="Cluster shape.")
    data: DataSection | None = Field(default=None, description="Validation data and topology.")
    training: TrainingSection | None = Field(default=None, description="Training mode.")
    hyperparameters: HyperparametersSection = Field(
        default_factory=HyperparametersSection, description="Optimisation settings."
    )
    tags: dict[str, Any] | None = Field(
        default=None, description="Free-form labels (not sent to the backend)."
    )
    type: str | None = Field(default=None, description='Job type; `"sft"` (informational).')
    lora_table: LoraSection | None = Field(
        default=None, alias="lora", description="Deprecated alias of [training.lora]."
    )
    policy: dict[str, Any] | None = Field(
        default=None, description="Accepted for compatibility; not used by SFT jobs."
    )


# What the local trainer uses for keys the config leaves out (the card shows them).
DEFAULT_LEARNING_RATE: dict[str, float] = {"full_finetune": 2e-5, "lora": 2e-4, "qlora": 2e-4}
DEFAULT_SEQUENCE_LENGTH = 2048  # or the model's own limit when that is smaller

# Where LoRA settings may be written, most authoritative first, and the name each key has there.
LORA_ALIASES: dict[str, str] = {
    "lora_rank": "r",
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "lora_target_modules": "target_modules",
}
