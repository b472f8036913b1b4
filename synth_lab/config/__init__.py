"""The SFT config: the synth-ai TOML format, validated strictly.

>>> from synth_lab.config import SFTConfig
>>> cfg = SFTConfig.from_file("sft.toml")              # doctest: +SKIP
>>> cfg.replace({"hyperparameters.learning_rate": 1e-5})  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from synth_lab.config.model import SFTConfig
from synth_lab.errors import ConfigError, Problem

__all__ = ["ConfigError", "Problem", "SFTConfig", "load_config"]


def load_config(source: str | os.PathLike[str] | SFTConfig) -> SFTConfig:
    """An :class:`SFTConfig` from a path, TOML text, or an existing config.

    A ``str`` containing a newline or ``=`` is TOML text; any other ``str`` is a path.
    """
    if isinstance(source, SFTConfig):
        return source
    if isinstance(source, str) and ("\n" in source or "=" in source):
        return SFTConfig.from_toml(source)
    return SFTConfig.from_file(Path(source))
