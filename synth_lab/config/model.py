"""``SFTConfig``: a validated, immutable SFT config that remembers its TOML text."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr

from synth_lab._files import atomic_write_text
from synth_lab.config import checks, schema
from synth_lab.config.card import config_html, config_text
from synth_lab.config.source import dumps_toml, edit_toml, key_positions, locate, parse_toml
from synth_lab.errors import ConfigError, Problem

DEFAULT_ZERO_STAGE = 2  # DeepSpeed stage when use_deepspeed is set without one


class SFTConfig(schema.ConfigModel):
    """A validated SFT config (the synth-ai TOML format), immutable.

    Build one with :meth:`from_toml`, :meth:`from_file` or :meth:`from_dict`; derive variants
    with :meth:`replace`. Sections are attributes (``config.hyperparameters.learning_rate``);
    resolved values (defaults applied, derived numbers) are properties.
    """

    _source: str = PrivateAttr(default="")
    _path: Path | None = PrivateAttr(default=None)
    _warnings: tuple[Problem, ...] = PrivateAttr(default=())
    _first_line: int = PrivateAttr(default=1)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_toml(
        cls, text: str, *, path: str | os.PathLike[str] | None = None, first_line: int = 1
    ) -> SFTConfig:
        """Parse and validate TOML text; raise :class:`ConfigError` listing every problem.

        ``first_line`` is the line number of the text's first line where the user sees it (2
        in a ``%%sft_config`` cell, whose magic is line 1), so every reported line matches.
        """
        offset = first_line - 1
        try:
            data = parse_toml(text)
        except ConfigError as exc:
            raise _shifted(exc, offset, text) from None
        positions = {k: (line + offset, col) for k, (line, col) in key_positions(text).items()}
        config, problems = checks.validate(data, positions, cls)
        if not isinstance(config, cls) or any(p.severity == "error" for p in problems):
            where = f" in {path}" if path else ""
            errors = sum(p.severity == "error" for p in problems)
            raise ConfigError(
                f"Invalid SFT config{where}: {errors} problem(s)",
                problems,
                source="\n" * offset + text,
            )
        config._source = text
        config._path = Path(path) if path is not None else None
        config._warnings = tuple(problems)
        config._first_line = first_line
        return config

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SFTConfig:
        """Load a TOML file."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                f"Config file not found: {file}",
                [Problem(str(file), None, None, "file not found", "check the path", code="io")],
                hint="paths are relative to the current directory",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"Cannot read config file {file}",
                [Problem(str(file), None, None, str(exc), "pass a UTF-8 TOML file", code="io")],
            ) from None
        return cls.from_toml(text, path=file)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SFTConfig:
        """Validate plain data (as a parsed TOML document would be)."""
        return cls.from_toml(dumps_toml(data))

    def replace(self, updates: dict[str, Any] | None = None, **kwargs: Any) -> SFTConfig:
        """A new validated config with dotted-path updates applied; comments are kept.

        ``config.replace({"hyperparameters.learning_rate": 1e-5})``; keyword arguments use
        ``__`` for dots (``hyperparameters__learning_rate=1e-5``). ``None`` removes a key.
        """
        merged = dict(updates or {})
        merged.update({k.replace("__", "."): v for k, v in kwargs.items()})
        return type(self).from_toml(edit_toml(self.to_toml(), merged), path=self._path)

    def __eq__(self, other: object) -> bool:
        """Configs are equal when their settings are, wherever they came from."""
        if not isinstance(other, SFTConfig):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    # -- output ---------------------------------------------------------------------------------

    def to_toml(self) -> str:
        """The TOML text, with the user's comments and key order."""
        return self._source or dumps_toml(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the keys as written, with values coerced to their types."""
        return self.model_dump(exclude_none=True, exclude_unset=True, by_alias=True)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the TOML atomically (a temporary file renamed into place)."""
        return atomic_write_text(path, self.to_toml())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """The config card: text for terminals, HTML for notebooks."""
        return {"text/plain": config_text(self), "text/html": config_html(self)}

    @property
    def path(self) -> Path | None:
        """The file this config was loaded from, if any."""
        return self._path

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """Problems that did not stop validation (severity ``warning``)."""
        return self._warnings

    def position(self, dotted: str) -> tuple[int | None, int | None]:
        """``(line, col)`` of a key in the TOML text (as the user numbers it: see
        :meth:`from_toml`'s ``first_line``)."""
        line, col = locate(key_positions(self.to_toml()), tuple(dotted.split(".")))
        return (line + self._first_line - 1, col) if line is not None else (line, col)

    # -- resolved values --------------------------------------------------------------------------

    @property
    def dataset_path(self) -> str | None:
        return self.job.data or self.job.data_path

    @property
    def validation_path(self) -> str | None:
        return self.data.validation_path if self.data else None

    @property
    def world_size(self) -> int:
        """GPUs (processes) the job runs on."""
        c = self.compute
        if c and c.gpu_count:
            return c.gpu_count
        if c and c.nodes and c.gpus_per_node:
            return c.nodes * c.gpus_per_node
        return 1

    @property
    def global_batch(self) -> int:
        """Sequences per optimizer step."""
        hp = self.hyperparameters
        if hp.global_batch:
            return hp.global_batch
        if hp.per_device_batch:
            return hp.per_device_batch * (hp.gradient_accumulation_steps or 1) * self.world_size
        if hp.batch_size:
            return hp.batch_size
        return (hp.gradient_accumulation_steps or 1) * self.world_size

    @property
    def per_device_batch(self) -> int:
        hp = self.hyperparameters
        if hp.per_device_batch:
            return hp.per_device_batch
        accum = hp.gradient_accumulation_steps or 1
        return max(1, self.global_batch // (accum * self.world_size))

    @property
    def gradient_accumulation_steps(self) -> int:
        hp = self.hyperparameters
        if hp.gradient_accumulation_steps:
            return hp.gradient_accumulation_steps
        return max(1, self.global_batch // (self.per_device_batch * self.world_size))

    @property
    def train_mode(self) -> str:
        """``"qlora"``, ``"lora"`` or ``"full_finetune"``."""
        t = self.training
        if t and (t.use_qlora or t.mode == "qlora"):
            return "qlora"
        if self.hyperparameters.train_kind == "peft" or (t and t.mode in ("lora", "peft")):
            return "lora"
        if self.lora_written() and self.hyperparameters.train_kind is None:
            return "lora"
        return "full_finetune"

    def lora_written(self) -> dict[str, Any]:
        """The LoRA keys the config sets, by their ``[training.lora]`` names.

        ``[training.lora]`` wins over the older spellings real configs still use: a top-level
        ``[lora]``, ``[hyperparameters.lora]`` and ``hyperparameters.lora_rank`` and friends.
        """
        hp = self.hyperparameters
        written = {
            schema.LORA_ALIASES[key]: value
            for key, value in hp.model_dump(include=set(schema.LORA_ALIASES)).items()
            if value is not None
        }
        for section in (hp.lora, self.lora_table, self.training.lora if self.training else None):
            if section is not None:
                written.update(section.model_dump(exclude_unset=True))
        return written

    @property
    def lora(self) -> schema.LoraSection:
        """LoRA settings with defaults (r=16, alpha=32, dropout=0.05, all linear layers)."""
        return schema.LoraSection(**self.lora_written())

    @property
    def validation(self) -> schema.ValidationSection:
        """Validation settings with defaults applied."""
        return (self.training.validation if self.training else None) or schema.ValidationSection()

    @property
    def parallelism(self) -> schema.ParallelismSection:
        return self.hyperparameters.parallelism or schema.ParallelismSection()

    @property
    def precision(self) -> str:
        """``"bf16"``, ``"fp16"`` or ``"fp32"`` as configured."""
        par = self.parallelism
        return "bf16" if par.bf16 else "fp16" if par.fp16 else "fp32"

    @property
    def strategy(self) -> str:
        """How the model is spread over devices, in words."""
        par = self.parallelism
        if par.use_deepspeed:
            stage = par.deepspeed_stage if par.deepspeed_stage is not None else DEFAULT_ZERO_STAGE
            return f"DeepSpeed ZeRO-{stage}"
        if par.fsdp:
            return f"FSDP ({par.fsdp_sharding_strategy or 'full_shard'})"
        return "DDP" if self.world_size > 1 else "single device"

    # -- remote readiness -------------------------------------------------------------------------

    def remote_problems(self) -> list[Problem]:
        """What the hosted backend would reject that local training does not need."""
        problems: list[Problem] = []
        line, col = self.position("compute")
        if not (self.compute and self.compute.gpu_type):
            problems.append(
                Problem(
                    "compute.gpu_type",
                    line,
                    col,
                    "[compute].gpu_type is required for remote jobs (backend: missing_gpu_type)",
                    'set gpu_type = "H100" (or A100, H200 …) under [compute]',
                    code="missing_gpu_type",
                )
            )
        if not (self.compute and self.compute.gpu_count):
            problems.append(
                Problem(
                    "compute.gpu_count",
                    line,
                    col,
                    "[compute].gpu_count is required for remote jobs",
                    "set gpu_count = 1 (the total number of GPUs) under [compute]",
                    code="missing_gpu_count",
                )
            )
        return problems

    def check_remote(self) -> None:
        """Raise :class:`ConfigError` if the hosted backend would reject this config."""
        problems = self.remote_problems()
        if problems:
            raise ConfigError("The config is not ready for a remote job", problems)


def _shifted(exc: ConfigError, offset: int, text: str) -> ConfigError:
    """``exc`` with its line numbers moved down by ``offset`` lines."""
    if not offset:
        return exc
    problems = [
        p if p.line is None else dataclasses.replace(p, line=p.line + offset) for p in exc.problems
    ]
    return ConfigError(exc.title, problems, hint=exc.hint, source="\n" * offset + text)
