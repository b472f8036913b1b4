"""``estimate(config)``: the launch plan of a config, from shapes and arithmetic only."""

from __future__ import annotations

import os
from typing import Any

from synth_lab.config import SFTConfig, load_config
from synth_lab.plan import memory
from synth_lab.plan.gpus import gpu_named
from synth_lab.plan.memory import LOGITS_CHUNK, Setup
from synth_lab.plan.result import CATEGORIES, Plan
from synth_lab.plan.shapes import ModelShape, resolve_shape
from synth_lab.plan.timecost import DEFAULT_MFU, Tokens, flops_per_token, time_and_cost

DEFAULT_SEQUENCE = 2048  # the trainer's default when the config sets none
DEEPSPEED_DEFAULT_STAGE = 2  # what the trainer runs when use_deepspeed has no stage


def setup_from_config(
    config: SFTConfig,
    *,
    optimizer: str = "adamw",
    logits_chunk: int | None = LOGITS_CHUNK,
    supervised_fraction: float = 1.0,
    device: str = "cuda",
) -> Setup:
    """The memory-relevant facts of ``config`` as the trainer would run it."""
    par, hp = config.parallelism, config.hyperparameters
    world = config.world_size
    if par.use_deepspeed:
        stage = par.deepspeed_stage if par.deepspeed_stage is not None else DEEPSPEED_DEFAULT_STAGE
        sharding = f"zero{stage}" if stage else "none"
    elif par.fsdp and world > 1:
        strategy = par.fsdp_sharding_strategy or "full_shard"
        sharding = "none" if strategy == "no_shard" else strategy
    else:
        sharding = "none"
    # GPUs train in bf16 unless fp16 is asked for (choose_precision); CPUs in fp32.
    gpu_precision = "fp16" if config.precision == "fp16" else "bf16"
    precision = gpu_precision if device == "cuda" else "fp32"
    lora = config.lora
    target = lora.target_modules
    compute = config.compute
    extra = par.model_extra or {}
    return Setup(
        mode=config.train_mode,
        precision=precision,
        world_size=world,
        per_device_batch=min(config.per_device_batch, config.global_batch),
        sequence_length=hp.sequence_length or DEFAULT_SEQUENCE,
        sharding=sharding,
        gpus_per_node=(compute.gpus_per_node if compute and compute.gpus_per_node else world),
        checkpointing=bool(par.activation_checkpointing),
        lora_r=lora.r,
        lora_target=target if isinstance(target, str) else tuple(target),
        optimizer=optimizer,
        offload=bool(extra.get("cpu_offload")),
        logits_chunk=logits_chunk,
        supervised_fraction=supervised_fraction,
        device=device,
    )


def _tokens(
    config: SFTConfig, dataset: str | os.PathLike[str] | None, tokens: Any
) -> tuple[Tokens, float]:
    """Tokens per epoch and the supervised fraction (1.0, the safe side, when unknown)."""
    if isinstance(tokens, dict) and tokens.get("tokens"):
        frac = tokens.get("trained_tokens", tokens["tokens"]) / tokens["tokens"]
        name = tokens.get("tokenizer", "the model's tokenizer")
        return Tokens(int(tokens["tokens"]), None, f"counted with {name}"), frac
    if isinstance(tokens, Tokens):
        return tokens, 1.0
    if isinstance(tokens, int):
        return Tokens(tokens, None, "given"), 1.0
    path = dataset if dataset is not None else config.dataset_path
    if path is not None and os.path.isfile(path):
        from synth_lab.plan.timecost import tokens_from_characters

        return tokens_from_characters(path), 1.0
    return Tokens(None, None, "no dataset at hand: pass dataset= (--dataset) or tokens="), 1.0


def estimate(
    config: SFTConfig | str | os.PathLike[str],
    dataset: str | os.PathLike[str] | None = None,
    *,
    tokens: dict[str, Any] | int | Tokens | None = None,
    gpu_type: str | None = None,
    gpu_memory: int | None = None,
    price_per_gpu_hour: float | None = None,
    mfu: float = DEFAULT_MFU,
    optimizer: str = "adamw",
    logits_chunk: int | None = LOGITS_CHUNK,
    shape: ModelShape | str | os.PathLike[str] | None = None,
    device: str = "cuda",
    suggest: bool = True,
) -> Plan:
    """Will ``config`` fit, how long will it take, what will it cost; before anything starts.

    Args:
        config: A config, a TOML path or TOML text.
        dataset: Training JSONL for the token count (default: ``[job].data``).
        tokens: Token counts from the dry run (``{"tokens", "trained_tokens"}``), a total
            per epoch, or a :class:`~synth_lab.plan.timecost.Tokens`; beats reading ``dataset``.
        gpu_type: Overrides ``[compute].gpu_type`` (default H100).
        gpu_memory: Bytes per GPU, overriding the table (or for a GPU it lacks).
        price_per_gpu_hour: USD, overriding the table's default.
        mfu: Assumed model FLOPs utilisation.
        optimizer: ``"adamw"`` (two fp32 moments) or ``"adamw_8bit"``.
        logits_chunk: Positions whose logits are held at once; ``None``: all supervised ones.
        shape: A :class:`ModelShape` or a folder with the model's ``config.json``.
        device: ``"cuda"`` (the plan's subject) or ``"cpu"`` (fp32, no CUDA terms).
        suggest: Look for config changes that fit when this one does not.

    Returns:
        A :class:`Plan`: ``.fits``, ``.per_gpu``, ``.terms``, ``.suggestions``, ``.time``,
        ``.cost``; ``.to_dict()`` is the ``synth-lab plan --json`` object.

    Raises:
        ConfigError: The config is invalid, or the model or GPU type is unknown.
    """
    cfg = load_config(config)
    model_shape = resolve_shape(cfg.job.model, shape)
    tok, frac = _tokens(cfg, dataset, tokens)
    setup = setup_from_config(
        cfg, optimizer=optimizer, logits_chunk=logits_chunk, supervised_fraction=frac, device=device
    )
    gpu = gpu_named(
        gpu_type or (cfg.compute.gpu_type if cfg.compute else None),
        memory=gpu_memory,
        price=price_per_gpu_hour,
    )
    terms = memory.all_terms(model_shape, setup)
    per_gpu = {c: sum(t.bytes for t in terms if t.category == c) for c in CATEGORIES}
    per_gpu["total"] = sum(per_gpu.values())
    trainable = memory.trainable_params(model_shape, setup)
    context = setup.sequence_length
    if tok.per_epoch and tok.records:
        context = min(context, max(1, tok.per_epoch // tok.records))
    fpt, fpt_how = flops_per_token(model_shape, setup, trainable, context)
    time, cost = time_and_cost(
        tok,
        cfg.hyperparameters.n_epochs,
        fpt,
        fpt_how,
        gpus=setup.world_size,
        peak=gpu.peak_flops,
        mfu=mfu,
        price=gpu.price_per_hour,
    )
    plan = Plan(
        config=cfg,
        shape=model_shape,
        setup=setup,
        gpu=gpu,
        terms=terms,
        per_gpu=per_gpu,
        trainable_params=trainable,
        time=time,
        cost=cost,
    )
    if suggest and not plan.fits:
        from synth_lab.plan.suggest import suggestions

        options = dict(
            tokens=tokens, gpu_type=gpu_type, gpu_memory=gpu_memory, mfu=mfu,
            price_per_gpu_hour=price_per_gpu_hour, optimizer=optimizer,
            logits_chunk=logits_chunk, shape=model_shape, device=device, suggest=False,
        )  # fmt: skip
        plan = plan.with_suggestions(suggestions(cfg, dataset, options))
    return plan
