"""``synth-lab train``: dry run now; local and remote runs plug in here."""

from __future__ import annotations

import argparse
import sys

from synth_lab.cli.output import print_json
from synth_lab.errors import SynthLabError


def run_train(args: argparse.Namespace) -> int:
    from synth_lab.cli import EXIT_INVALID, EXIT_OK
    from synth_lab.report import format_problem

    config = args.config or args.config_pos
    if args.config and args.config_pos and args.config != args.config_pos:
        raise SynthLabError(
            "two configs given", hint="pass the config once, positionally or with --config"
        )
    if not config:
        raise SynthLabError("no config given", hint="synth-lab train --config sft.toml ...")
    if args.examples is not None and args.examples <= 0:
        from synth_lab.errors import DatasetError

        raise DatasetError(
            f"--examples must be a positive number, got {args.examples}",
            hint="--examples N keeps the first N records of the training file",
        )
    if not args.dry_run:
        raise SynthLabError(
            "submitting jobs is not available in this version",
            hint="use --dry-run to validate the config and data and see the exact payload",
        )

    from synth_lab.dryrun import dry_run

    run = dry_run(config, args.dataset, examples=args.examples)
    if not run.ok:
        for source, problem in run.errors:
            print(format_problem(source, problem), file=sys.stderr)
        if args.json:
            print_json(run.errors_dict())
        return EXIT_INVALID
    if args.json:
        print_json(run.to_dict())
    else:
        print(run.format_text())
    return EXIT_OK
