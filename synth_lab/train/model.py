"""Load the model and tokenizer for a config: full finetune, LoRA or QLoRA; offline first.

``synth-lab/tiny-chat`` is built locally, ``synth-lab/smollm2-135m-instruct`` and GGUF files are
converted once (:func:`synth_lab.models.local_model_path`); a folder is
loaded as is; any other id must be in the Hugging Face cache, or downloadable when the hub is
reachable. Nothing here decides how processes share the model (see ``distributed.py``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synth_lab.errors import MissingDependencyError, TrainingError
from synth_lab.models import load_tokenizer

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass(frozen=True, slots=True)
class Precision:
    """How the forward pass runs: autocast dtype (``None``: fp32) and whether to scale fp16."""

    name: str  # "bf16", "fp16" or "fp32"
    autocast: torch.dtype | None
    use_scaler: bool
    reason: str

    def context(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.autocast)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX)."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def choose_precision(requested: str, device: torch.device) -> Precision:
    """Pick autocast by what the hardware does natively.

    GPUs: bf16 where supported (the default when nothing is asked), fp16 with loss scaling
    otherwise. CPUs: fp32, unless bf16 is asked for and the CPU has native bf16; emulated bf16
    would be slower and less accurate than fp32.
    """
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if requested == "fp16" or (requested == "bf16" and not bf16_ok):
            why = "requested" if requested == "fp16" else "bf16 requested, GPU lacks it"
            return Precision("fp16", torch.float16, True, why)
        if bf16_ok:
            return Precision("bf16", torch.bfloat16, False, "native on this GPU")
        return Precision("fp32", None, False, "GPU without bf16, none requested")
    if requested == "bf16" and device.type == "cpu" and cpu_has_native_bf16():
        return Precision("bf16", torch.bfloat16, False, "requested; native on this CPU")
    return Precision("fp32", None, False, f"{device.type}: fp32 is the native fast path")


def resolve_model_path(model_id: str) -> str:
    """A local folder for ``model_id``.

    Raises:
        TrainingError: If the model is not local and cannot be downloaded.
    """
    from synth_lab.models import local_model_path

    with quiet_progress():  # the first use builds or converts it, and saves it
        built = local_model_path(model_id)
    if built is not None:
        return str(built)
    local = Path(model_id).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise TrainingError(
                f"model folder {local} has no config.json",
                hint="point [job].model at a folder written by save_pretrained()",
            )
        return str(local)
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(model_id, local_files_only=True)
    except Exception as cached_exc:  # any failure means "not in the cache"
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        if not offline:
            try:
                return snapshot_download(model_id)
            except Exception:  # network errors come in many types
                pass
        raise TrainingError(
            f"model '{model_id}' is not in the local Hugging Face cache and could not be "
            "downloaded" + (" (HF_HUB_OFFLINE is set)" if offline else ""),
            hint="download it where there is network (huggingface-cli download "
            f"{model_id}), set [job].model to a local folder, or use synth-lab/tiny-chat",
        ) from cached_exc


def attention_implementation(device: torch.device, model_config: Any) -> str:
    """How packed conversations are kept apart.

    Flash attention 2 where installed (GPUs): ``cu_seqlens``. Otherwise one causal SDPA call
    per conversation (``attention.py``), except for sliding-window models, which get SDPA with
    a block-diagonal mask built from the restarting ``position_ids``.
    """
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    layer_types = getattr(model_config, "layer_types", None) or ()
    sliding = "sliding_attention" in layer_types or (
        getattr(model_config, "sliding_window", None)
        and getattr(model_config, "use_sliding_window", True)
        and not layer_types
    )
    if sliding:
        return "sdpa"
    from synth_lab.train.attention import register

    return register()


class _NoOptionalKernelWarning(logging.Filter):
    """bitsandbytes warns on import, on CPUs, that an optional kernel package is missing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kernels-community" not in record.getMessage()


def _quiet_bitsandbytes() -> None:
    # Before peft/transformers import bitsandbytes: the warning is not actionable for users.
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    if not any(isinstance(f, _NoOptionalKernelWarning) for f in logger.filters):
        logger.addFilter(_NoOptionalKernelWarning())


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """No per-file progress bars while loading or saving weights (they flood notebooks)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_model(
    config: Any,
    *,
    device: torch.device,
    precision: Precision,
    adapter_from: str | os.PathLike[str] | None = None,
    weights_from: str | os.PathLike[str] | None = None,
    trainable: bool = True,
    empty: bool = False,
) -> tuple[Any, Any]:
    """The model (on ``device``) and tokenizer for ``config``'s model and training mode.

    Args:
        config: The :class:`~synth_lab.config.SFTConfig`.
        device: Where the model lives.
        precision: Chosen autocast; frozen LoRA base weights use its dtype to save memory.
        adapter_from: A folder with a saved adapter to continue (LoRA, QLoRA).
        weights_from: A folder with full weights to start from instead of the base model.
        trainable: Set up for training (LoRA layers trainable, checkpointing as configured).
        empty: Build the model on the meta device, without weights (FSDP ranks other than 0:
            they receive their shards from rank 0 after sharding).

    Raises:
        MissingDependencyError: QLoRA without bitsandbytes, LoRA without peft.
        TrainingError: If the model cannot be found or loaded.
    """
    _quiet_bitsandbytes()
    from transformers import AutoModelForCausalLM

    mode = config.train_mode
    base_path = resolve_model_path(config.job.model)
    source = str(weights_from) if weights_from else base_path
    tokenizer = load_tokenizer(source, for_training=True)
    from transformers import AutoConfig

    attention = attention_implementation(device, AutoConfig.from_pretrained(source))
    kwargs: dict[str, Any] = {"attn_implementation": attention}
    if mode == "qlora":
        if importlib.util.find_spec("bitsandbytes") is None:
            raise MissingDependencyError("bitsandbytes", "QLoRA (4-bit) training", extra="qlora")
        from transformers import BitsAndBytesConfig

        compute = precision.autocast or torch.float32
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
            bnb_4bit_quant_storage=compute,
        )
        kwargs["device_map"] = {"": device.index if device.type == "cuda" else "cpu"}
        kwargs["dtype"] = compute
    elif mode == "lora" and precision.autocast is not None:
        kwargs["dtype"] = precision.autocast  # the base is frozen: no fp32 master copy needed
    else:
        kwargs["dtype"] = torch.float32  # trained weights stay fp32; autocast does the rest
    try:
        if empty:
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(
                    AutoConfig.from_pretrained(source),
                    attn_implementation=attention,
                    dtype=kwargs["dtype"],
                )
        else:
            with quiet_progress():
                model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        raise TrainingError(
            f"could not load model '{config.job.model}' from {source}: {exc}",
            hint="check that the folder holds a causal language model (config.json + weights)",
        ) from exc
    if mode != "qlora" and not empty:
        model.to(device)
    checkpointing = bool(config.parallelism.activation_checkpointing) and trainable
    if mode == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif checkpointing:
        kwargs = {"use_reentrant": False}  # the reentrant variant breaks with frozen inputs
        if hasattr(model, "activation_checkpointing_enable"):  # the old name warns in 5.x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if mode in ("lora", "qlora"):
        model = _with_lora(model, config, adapter_from, trainable)
    elif not trainable:
        model.eval()
    return model, tokenizer


@contextlib.contextmanager
def _peft_deprecation_quiet() -> Iterator[None]:
    """Hide the FutureWarning peft triggers by reading transformers' deprecated
    ``is_gradient_checkpointing`` when it wraps a model: nothing the user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


def _with_lora(model: Any, config: Any, adapter_from: Any, trainable: bool) -> Any:
    try:
        from peft import LoraConfig, PeftModel, get_peft_model
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise MissingDependencyError("peft", "LoRA training", extra="train") from exc
    if adapter_from is not None:
        with quiet_progress(), _peft_deprecation_quiet():
            return PeftModel.from_pretrained(model, str(adapter_from), is_trainable=trainable)
    lora = config.lora
    target = lora.target_modules
    peft_config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target if isinstance(target, str) else list(target),
        task_type="CAUSAL_LM",
        bias="none",
    )
    try:
        with _peft_deprecation_quiet():
            return get_peft_model(model, peft_config)
    except ValueError as exc:
        raise TrainingError(
            f"LoRA could not be applied: {exc}",
            hint='check [training.lora].target_modules (module names, or "all-linear")',
        ) from exc


def is_adapter_folder(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / ADAPTER_FILES[0]).is_file()


def count_parameters(model: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (4-bit weights count their real elements)."""
    trainable = total = 0
    for p in model.parameters():
        n = p.numel() * (2 if p.__class__.__name__ == "Params4bit" else 1)
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total


def token_loss_sum(model: Any, batch: Any, precision: Precision, device: torch.device) -> Any:
    """Sum of the cross-entropy over the supervised tokens of one packed row.

    Only supervised positions reach the output layer (``logits_to_keep``), which skips most of
    the vocabulary projection in chat data where prompts are long; and where the model allows
    it, the loss is computed in chunks inside the output layer (``loss.py``), so the logits of
    a large vocabulary never exist for the whole row at once.
    """
    from synth_lab.train.distributed import unwrap
    from synth_lab.train.loss import loss_head, supports_chunked_loss

    bare = unwrap(model)
    chunked = supports_chunked_loss(bare)
    head = loss_head(bare, batch.targets) if chunked else contextlib.nullcontext()
    keep = batch.keep
    extra = {}
    if getattr(bare.config, "_attn_implementation", None) == "synth_lab_varlen":
        extra["synth_lab_bounds"] = batch.bounds  # once per row, not once per layer
    with precision.context(device), head:
        out = model(
            input_ids=batch.input_ids,
            position_ids=batch.position_ids,
            logits_to_keep=keep,
            use_cache=False,
            # Conversation boundaries, for flash attention and synth_lab_varlen.
            cu_seq_lens_q=batch.cu_seqlens,
            cu_seq_lens_k=batch.cu_seqlens,
            max_length_q=batch.max_seqlen,
            max_length_k=batch.max_seqlen,
            **extra,
        )
    if chunked:
        loss = out.logits  # the chunked head returned the summed loss
    else:
        logits = out.logits[0].float()
        loss = torch.nn.functional.cross_entropy(logits, batch.targets, reduction="sum")
    if batch.n_trained == 0:
        loss = loss * 0.0  # a placeholder row: keep the graph (collectives), add nothing
    return loss
