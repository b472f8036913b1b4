"""Turn raw TOML data into a validated model, collecting every problem before raising once.

Three layers, all collected into one list of :class:`~synth_lab.errors.Problem`:
pydantic's type/range/enum/unknown-key errors (made readable, with did-you-mean), the
cross-field consistency rules of the spec, and warnings for forwarded sections.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from synth_lab.config import schema
from synth_lab.config.source import KeyPath, Position, locate
from synth_lab.errors import Problem
from synth_lab.metrics import VAL_LOSS

Place = Callable[[KeyPath], "Position | tuple[None, None]"]


def validate(
    data: dict[str, Any],
    positions: dict[KeyPath, Position],
    model_cls: type[schema.ConfigModel] = schema.ConfigModel,
) -> tuple[schema.ConfigModel | None, list[Problem]]:
    """Validate ``data``; return the model (``None`` if invalid) and every problem found."""

    def place(path: KeyPath) -> Position | tuple[None, None]:
        return locate(positions, path)

    try:
        model = model_cls.model_validate(data)
    except ValidationError as exc:
        problems = _from_pydantic(exc, data, place) + _forwarded_warnings(data, place)
        return None, sorted(problems, key=_order)
    problems = consistency(model, place) + _forwarded_warnings(data, place)
    return model, sorted(problems, key=_order)


def _order(problem: Problem) -> tuple[int, int]:
    return (problem.line or 1 << 30, problem.col or 0)


def suggest(word: str, options: typing.Iterable[str]) -> str | None:
    """The closest option to ``word`` (a typo fix), or ``None``."""
    matches = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return matches[0] if matches else None


def section_model(path: KeyPath) -> type[BaseModel] | None:
    """The pydantic model that describes the table at ``path`` (``()`` is the document)."""
    model: type[BaseModel] = schema.ConfigModel
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return None
        nested = _model_in(field.annotation)
        if nested is None:
            return None
        model = nested
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _table_name(path: KeyPath) -> str:
    return f"[{'.'.join(path)}]" if path else "the top level"


def _existing_prefix(data: Any, loc: tuple[Any, ...]) -> KeyPath:
    path: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(str(part))
            node = node[part]
        else:
            break
    return tuple(path)


def _from_pydantic(exc: ValidationError, data: dict[str, Any], place: Place) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[KeyPath] = set()
    for err in exc.errors(include_url=False):
        kind = err["type"]
        loc = tuple(err["loc"])
        path = tuple(str(p) for p in loc) if kind == "missing" else _existing_prefix(data, loc)
        if path in seen:  # a union reports one error per member; one is enough
            continue
        seen.add(path)
        line, col = place(path)
        message, hint, code = _describe(kind, path, err, data)
        problems.append(Problem(".".join(path), line, col, message, hint, code=code))
    return problems


def _describe(kind: str, path: KeyPath, err: Any, data: dict[str, Any]) -> tuple[str, str, str]:
    key, parent = (path[-1] if path else ""), path[:-1]
    value = err.get("input")
    if kind == "extra_forbidden":
        model = section_model(parent)
        options = [f.alias or n for n, f in model.model_fields.items()] if model else []
        is_table = isinstance(value, dict)
        what = f"unknown section [{'.'.join(path)}]" if is_table else f"unknown key '{key}'"
        if not is_table or parent:
            what += f" in {_table_name(parent)}" if not is_table else ""
        guess = suggest(key, options)
        if guess:
            shown = f"[{'.'.join((*parent, guess))}]" if is_table else f"'{guess}'"
            return what, f"did you mean {shown}?", "unknown_key"
        return (
            what,
            f"remove it; {_table_name(parent)} accepts: {', '.join(options)}",
            "unknown_key",
        )
    if kind == "missing":
        if path == ("job",):
            return "missing the [job] table", 'add [job] with model = "<model id>"', "missing_key"
        hint = 'set it, e.g. model = "Qwen/Qwen3-4B"' if path == ("job", "model") else "add it"
        return f"missing required key '{key}' in {_table_name(parent)}", hint, "missing_key"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return (
            f"{_table_name(path)} must be a table, got {type(value).__name__}",
            f"write it as a [{'.'.join(path)}] section",
            "wrong_type",
        )
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = [o.strip().strip("'\"") for o in expected.replace(" or ", ",").split(",")]
        guess = suggest(str(value), [o for o in options if o])
        hint = f"did you mean '{guess}'?" if guess else f"use one of {expected}"
        return f"'{key}' must be one of {expected}; got {value!r}", hint, "invalid_choice"
    if path[-2:] == ("lora", "target_modules"):
        return (
            f"'target_modules' must be a list of module names or \"all-linear\"; got {value!r}",
            'e.g. target_modules = ["q_proj", "v_proj"]',
            "wrong_type",
        )
    message = str(err.get("msg", "invalid value"))
    message = message.replace("Input should be", "must be").replace("Input ", "")
    return f"'{key}' {message}; got {value!r}", _range_hint(kind, err), _code(kind)


def _range_hint(kind: str, err: Any) -> str:
    ctx = err.get("ctx") or {}
    if kind == "greater_than":
        return f"use a number > {ctx.get('gt')}"
    if kind in ("less_than_equal", "greater_than_equal"):
        return "use a number in the allowed range"
    if kind.startswith("int"):
        return "use a whole number without quotes"
    if kind.startswith("float"):
        return "use a number without quotes"
    if kind.startswith("bool"):
        return "use true or false"
    if kind.startswith("string"):
        return 'use a quoted string, e.g. "H100"'
    return ""


def _code(kind: str) -> str:
    if kind.startswith(("greater", "less")):
        return "out_of_range"
    return "wrong_type"


def _forwarded_warnings(data: dict[str, Any], place: Place) -> list[Problem]:
    """Unknown keys in forwarded-verbatim sections are sent as-is; warn in case they are typos."""
    problems: list[Problem] = []
    par = data.get("hyperparameters", {})
    par = par.get("parallelism") if isinstance(par, dict) else None
    if isinstance(par, dict):
        known = schema.ParallelismSection.model_fields
        for key in par:
            if key not in known:
                problems.append(_forwarded(("hyperparameters", "parallelism", key), known, place))
    topo = data.get("data", {})
    topo = topo.get("topology") if isinstance(topo, dict) else None
    if isinstance(topo, dict):
        for key, value in topo.items():
            path = ("data", "topology", key)
            expected = schema.TOPOLOGY_KEYS.get(key)
            if expected is None:
                problems.append(_forwarded(path, schema.TOPOLOGY_KEYS, place))
            elif not isinstance(value, expected) or isinstance(value, bool):
                line, col = place(path)
                problems.append(
                    Problem(
                        ".".join(path),
                        line,
                        col,
                        f"'{key}' should be {expected.__name__}; got {value!r}",
                        "it is informational and forwarded as written",
                        "warning",
                        "wrong_type",
                    )
                )
    return problems


def _forwarded(path: KeyPath, known: typing.Iterable[str], place: Place) -> Problem:
    line, col = place(path)
    guess = suggest(path[-1], known)
    hint = f"did you mean '{guess}'?" if guess else "forwarded verbatim to the backend"
    message = f"unrecognised key '{path[-1]}' in {_table_name(path[:-1])} (sent as written)"
    return Problem(".".join(path), line, col, message, hint, "warning", "unknown_key")


def consistency(model: schema.ConfigModel, place: Place) -> list[Problem]:
    """The spec's cross-field rules: errors unless noted."""
    out: list[Problem] = []

    def add(path: KeyPath, message: str, hint: str, severity: str = "error") -> None:
        line, col = place(path)
        code = "inconsistent" if severity == "error" else "suspicious"
        out.append(Problem(".".join(path), line, col, message, hint, severity, code))  # type: ignore[arg-type]

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
        line, col = place(path)
        out.append(Problem(".".join(path), line, col, message, hint, severity, code))  # type: ignore[arg-type]

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
            line, col = place(("data", "topology", key))
            out.append(
                Problem(
                    f"data.topology.{key}",
                    line,
                    col,
                    f"[data.topology].{key} = {topo[key]!r} disagrees with "
                    f"[compute].{compute_key} = {expected!r}",
                    "topology is informational; make it match [compute]",
                    "warning",
                    "suspicious",
                )
            )
    return out
