"""The magics' arguments: the options several magics share, the typed form of
``%sft_train``'s, and a parser that answers a mistyped flag with a did-you-mean."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from IPython.core.magic_arguments import argument, parse_argstring

from synth_lab.errors import SynthLabError

DEFAULT_CONFIG_NAME = "sft_config"

config_option = argument(
    "--config", help=f"config variable name or TOML path (default: {DEFAULT_CONFIG_NAME})"
)
"""``--config``, for every magic that reads a config made with ``%%sft_config``."""

dataset_option = argument("--dataset", help="training JSONL (overrides [job].data)")
"""``--dataset``, for the magics that train."""


@dataclass(frozen=True)
class TrainArgs:
    """``%sft_train`` arguments, typed."""

    config: str | None
    dataset: str | None
    examples: int | None
    dry_run: bool
    tokens: bool
    local: bool
    remote: bool
    backend: str | None
    name: str | None
    output_dir: str | None
    max_steps: int | None
    resume: bool
    nproc: int | None
    attach: str | None
    wait: bool
    evaluate: str | None = None

    @classmethod
    def parse(cls, args: Any) -> TrainArgs:
        return cls(
            config=args.config,
            dataset=args.dataset,
            examples=args.examples,
            dry_run=args.dry_run,
            tokens=args.tokens,
            local=args.local,
            remote=args.remote,
            backend=args.backend,
            name=args.name,
            output_dir=args.output_dir,
            max_steps=args.max_steps,
            resume=args.resume,
            nproc=args.nproc,
            attach=args.attach,
            wait=not args.no_wait,
            evaluate=args.evaluate,
        )


def parse_line(magic: Any, line: str, prefix: str = "%") -> Any:
    """``parse_argstring`` with a did-you-mean for a mistyped flag instead of a bare usage line
    (``prefix`` is ``%%`` for a cell magic)."""
    from IPython.core.error import UsageError

    try:
        return parse_argstring(magic, line)
    except UsageError as exc:
        message = str(exc)
        if not message.startswith("unrecognized arguments:"):
            raise
        flags = [f for action in magic.parser._actions for f in action.option_strings if len(f) > 2]
        unknown = message.split(":", 1)[1].split()
        for word in unknown:
            if word.startswith("-"):
                guess = difflib.get_close_matches(word.split("=")[0], flags, n=1, cutoff=0.5)
                name = prefix + magic.__name__
                help_ = f"{name}? lists the options"
                raise SynthLabError(
                    f"{name}: unknown option '{word}'",
                    hint=f"did you mean '{guess[0]}'? ({help_})" if guess else help_,
                ) from None
        name = prefix + magic.__name__
        raise SynthLabError(
            f"{name}: unexpected argument(s) {' '.join(unknown)}",
            hint=f"{name}? lists the options; quote values that contain spaces",
        ) from None


def plain_help(func: Any) -> Any:
    """Drop the reST ``::`` that ``magic_arguments`` puts above the usage line (``%magic?``)."""
    if func.__doc__ and func.__doc__.startswith("::\n"):
        func.__doc__ = "Usage:" + func.__doc__[2:]
    return func
