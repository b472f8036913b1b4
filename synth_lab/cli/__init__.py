"""The ``synth-lab`` command line: ``train`` (dry run, local, remote) and ``data lint``.

Exit codes: 0 success, 2 invalid config or data (problems on stderr), 1 anything else.
With ``--json`` stdout holds exactly one JSON object.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from synth_lab import __version__
from synth_lab.cli.launch import add_launch_parser, run_launch
from synth_lab.cli.plan import add_plan_parser
from synth_lab.cli.remote import add_remote_arguments
from synth_lab.cli.serve import add_serve_parser, run_serve
from synth_lab.errors import DatasetError, ProblemsError, SynthLabError

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synth-lab", description="Supervised finetuning, from notebooks and the shell."
    )
    parser.add_argument("--version", action="version", version=f"synth-lab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="check (--dry-run) or run an SFT job")
    train.add_argument("config_pos", nargs="?", metavar="CONFIG", help="the TOML config")
    train.add_argument("--config", dest="config", help="the TOML config")
    train.add_argument("--type", default="sft", choices=["sft"], help="job type (only sft)")
    train.add_argument("--dataset", help="training JSONL (overrides [job].data)")
    train.add_argument("--examples", type=int, help="use only the first N records")
    train.add_argument("--dry-run", action="store_true", help="validate and show; send nothing")
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    train.add_argument("--backend", help="learning API base URL")
    remote = train.add_argument_group("remote training (the default without --local)")
    remote.add_argument("--remote", action="store_true", help="submit to the learning API")
    add_remote_arguments(remote)
    local = train.add_argument_group("local training (--local)")
    local.add_argument("--local", action="store_true", help="train here instead of remotely")
    local.add_argument("--output-dir", help="run folder (default: runs/<config name>)")
    local.add_argument("--max-steps", type=int, help="stop after N optimizer steps")
    local.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    local.add_argument("--nproc", type=int, help="processes to train with (DDP/FSDP)")
    local.add_argument(
        "--evaluate",
        metavar="SCORER",
        help="score generations on the validation set at the end (exact, contains, "
        "regex:PATTERN): eval.score in the result",
    )

    add_serve_parser(sub)
    add_plan_parser(sub)
    add_launch_parser(sub)

    data = sub.add_parser("data", help="dataset tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    lint = data_sub.add_parser("lint", help="report every problem in a chat JSONL file")
    lint.add_argument("file")
    lint.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``synth-lab`` command."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            from synth_lab.cli.train import run_train

            return run_train(args)
        if args.command == "serve":
            return run_serve(args)
        if args.command == "plan":
            from synth_lab.cli.plan import run_plan

            return run_plan(args)
        if args.command == "launch":
            return run_launch(args)
        from synth_lab.cli.data import run_lint

        return run_lint(args)
    except SynthLabError as exc:
        return report_error(exc, as_json=getattr(args, "json", False))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def report_error(exc: SynthLabError, *, as_json: bool) -> int:
    """Print ``exc`` on stderr (and as ``{"errors": [...]}`` on stdout with ``--json``)."""
    from synth_lab.cli.output import print_json

    print(f"error: {exc}", file=sys.stderr)
    if as_json:
        from synth_lab.errors import Problem, as_problems

        problems = as_problems(getattr(exc, "problems", None) or ())
        if not problems:
            problems = [Problem("", None, None, exc.message, hint=exc.hint)]
        print_json({"errors": [p.to_dict() for p in problems]})
    return EXIT_INVALID if isinstance(exc, (ProblemsError, DatasetError)) else EXIT_FAILED
