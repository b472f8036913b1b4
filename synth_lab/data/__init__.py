"""Chat JSONL datasets: validation, ``--examples`` subsets, tokenisation and loss masks, the
``Dataset`` kit.

Attributes resolve lazily so that ``synth_lab.data.validate`` (used by ``--dry-run``) never pulls
in pandas or transformers.
"""

from __future__ import annotations

from synth_lab._lazy import lazy_attributes

_EXPORTS = {
    "Dataset": "synth_lab.data.dataset",
    "lint_file": "synth_lab.data.validate",
    "lint_records": "synth_lab.data.validate",
    "iter_problems": "synth_lab.data.validate",
    "first_examples": "synth_lab.data.examples",
    "encode_chat": "synth_lab.data.chat",
    "load_tokenizer": "synth_lab.models",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
