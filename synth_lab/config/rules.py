"""The spec's cross-field rules on a valid config: what contradicts itself, what is ignored,
and the older spellings real configs carry (accepted, with what to write instead)."""

from __future__ import annotations

from synth_lab.config import schema
from synth_lab.config.keys import Place, problem_at, suggest
from synth_lab.config.source import KeyPath
from synth_lab.errors import Problem
from synth_lab.metrics import VAL_LOSS


def consistency(model: schema.ConfigModel, place: Place) -> list[Problem]:
    """The spec's cross-field rules: errors unless noted."""
    out: list[Problem] = []

    def add(path: KeyPath, message: str, hint: str, severity: str = "error") -> None:
        code = "inconsistent" if severity == "error" else "suspicious"
        out.append(problem_at(place, path, message, hint, severity, code))

    hp, compute = model.hyperparameters, model.compute
    par = hp.parallelism
    gpu_count = compute.gpu_count if compute else None
    if hp.per_device_batch and hp.gradient_accumulation_steps and gpu_count and hp.global_batch:
        product = hp.per_device_batch * hp.gradient_accumulation_steps * gpu_count
        if product != hp.global_batch:
            add(
                ("hyperparameters", "global_batch"),
                f"global_batch = {hp.global_batch} but per_device_batch × "
                f"gradient_accumulation_steps × gpu_count = {hp.per_device_batch} × "
                f"{hp.gradient_accumulation_steps} × {gpu_count} = {product}",
                "make them agree, or drop global_batch (it is derived)",
            )
    if (
        compute
        and compute.gpus_per_node
        and compute.nodes
        and compute.gpu_count
        and compute.gpus_per_node * compute.nodes != compute.gpu_count
    ):
        add(
            ("compute", "gpu_count"),
            f"gpu_count = {compute.gpu_count} but gpus_per_node × nodes = "
            f"{compute.gpus_per_node} × {compute.nodes}",
            "gpu_count is the total across nodes",
        )
    if par and par.bf16 and par.fp16:
        add(("hyperparameters", "parallelism", "fp16"), "bf16 and fp16 are both true", "pick one")
    if par and par.use_deepspeed and par.fsdp:
        add(
            ("hyperparameters", "parallelism", "fsdp"),
            "use_deepspeed and fsdp are both true",
            "use one sharding backend: DeepSpeed or FSDP",
        )
    if par and par.deepspeed_stage is not None and not par.use_deepspeed:
        add(
            ("hyperparameters", "parallelism", "deepspeed_stage"),
            "deepspeed_stage is set but use_deepspeed is not true",
            "set use_deepspeed = true, or remove deepspeed_stage",
            "warning",
        )
    training = model.training
    mode = training.mode if training else None
    use_qlora = bool(training and training.use_qlora)
    if use_qlora and hp.train_kind == "fft":
        add(
            ("training", "use_qlora"),
            'use_qlora = true needs a LoRA run, but train_kind = "fft"',
            'set train_kind = "peft" under [hyperparameters]',
        )
    if use_qlora and mode == "full_finetune":
        add(
            ("training", "mode"),
            'use_qlora = true contradicts mode = "full_finetune"',
            'set mode = "qlora" (or "lora"), or use_qlora = false',
        )
    if mode in ("lora", "qlora") and hp.train_kind == "fft":
        add(
            ("hyperparameters", "train_kind"),
            f'mode = "{mode}" but train_kind = "fft"',
            'set train_kind = "peft"',
        )
    if mode in ("full_finetune", "fft") and hp.train_kind == "peft" and not use_qlora:
        add(
            ("training", "mode"),
            f'mode = "{mode}" but train_kind = "peft": train_kind wins, the job trains LoRA '
            "adapters",
            'set mode = "lora" for LoRA, or train_kind = "fft" for a full finetune',
            "warning",
        )
    if mode is not None and mode not in schema.KNOWN_MODES:
        guess = suggest(mode, schema.KNOWN_MODES)
        add(
            ("training", "mode"),
            f"unrecognised mode '{mode}' (it is documentation; the backend infers the mode)",
            f"did you mean '{guess}'?" if guess else f"known: {', '.join(schema.KNOWN_MODES)}",
            "warning",
        )
    if training and training.lora and hp.train_kind == "fft" and not use_qlora:
        add(
            ("training", "lora"),
            '[training.lora] is ignored: train_kind = "fft" is a full finetune',
            'set train_kind = "peft" to train LoRA adapters',
            "warning",
        )
    validation = training.validation if training else None
    if validation and validation.metric_for_best_model != VAL_LOSS:
        add(
            ("training", "validation", "metric_for_best_model"),
            f"metric '{validation.metric_for_best_model}' is not tracked by the local trainer",
            f'the local trainer reports "{VAL_LOSS}"',
            "warning",
        )
    job = model.job
    if job.data and job.data_path and job.data != job.data_path:
        add(
            ("job", "data_path"),
            "both data and data_path are set and differ; data wins",
            "keep one of them",
            "warning",
        )
    out.extend(_topology_mismatches(model, place))
    out.extend(_compatibility(model, place))
    return out


def _compatibility(model: schema.ConfigModel, place: Place) -> list[Problem]:
    """Keys real configs carry from older formats: accepted, with what to write instead."""
    out: list[Problem] = []

    def add(path: KeyPath, message: str, hint: str, severity: str, code: str) -> None:
        out.append(problem_at(place, path, message, hint, severity, code))

    algorithm = model.algorithm
    if algorithm is not None:
        combo = tuple(
            v.strip().lower() for v in (algorithm.type, algorithm.method, algorithm.variety)
        )
        if combo not in schema.ALGORITHMS:
            known = ", ".join("/".join(a) for a in schema.ALGORITHMS)
            add(
                ("algorithm",),
                f"[algorithm] {'/'.join(combo)} is not an SFT algorithm",
                f"use one of {known}, or remove [algorithm]",
                "error",
                "invalid_choice",
            )
    if model.type is not None and model.type.strip().lower() != "sft":
        add(
            ("type",),
            f"type = {model.type!r}: this is not an SFT config",
            'SFT configs have type = "sft" (or no type)',
            "error",
            "invalid_choice",
        )
    hp = model.hyperparameters
    for key, name in schema.LORA_ALIASES.items():
        if getattr(hp, key) is not None:
            add(
                ("hyperparameters", key),
                f"'{key}' is an old spelling of [training.lora].{name}",
                f"write {name} under [training.lora]; the remote backend ignores '{key}'",
                "warning",
                "alias",
            )
    if hp.lora is not None:
        add(
            ("hyperparameters", "lora"),
            "[hyperparameters.lora] is an old spelling of [training.lora]",
            "rename the table to [training.lora]",
            "warning",
            "alias",
        )
    if model.lora_table is not None:
        add(
            ("lora",),
            "[lora] is a deprecated spelling of [training.lora]",
            "rename the table to [training.lora]",
            "warning",
            "alias",
        )
    if model.policy is not None:
        add(("policy",), "[policy] is not used by SFT jobs", "remove it", "warning", "unused")
    compute = model.compute
    gpus = compute.gpu_count if compute else None
    if hp.world_size is not None and gpus is not None and hp.world_size != gpus:
        add(
            ("hyperparameters", "world_size"),
            f"world_size = {hp.world_size} disagrees with [compute].gpu_count = {gpus}",
            "the world size comes from [compute]; remove world_size",
            "warning",
            "suspicious",
        )
    return out


def _topology_mismatches(model: schema.ConfigModel, place: Place) -> list[Problem]:
    topo = (model.data.topology if model.data else None) or {}
    compute = model.compute
    if not compute:
        return []
    pairs = {
        "total_gpus": compute.gpu_count,
        "nodes": compute.nodes,
        "gpus_per_node": compute.gpus_per_node,
        "variant": compute.variant,
    }
    out = []
    for key, expected in pairs.items():
        if expected is not None and key in topo and topo[key] != expected:
            compute_key = "gpu_count" if key == "total_gpus" else key
            out.append(
                problem_at(
                    place,
                    ("data", "topology", key),
                    f"[data.topology].{key} = {topo[key]!r} disagrees with "
                    f"[compute].{compute_key} = {expected!r}",
                    "topology is informational; make it match [compute]",
                    "warning",
                    "suspicious",
                )
            )
    return out
