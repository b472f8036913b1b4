"""``synth-lab train``: dry run, local training, or a remote job (the default)."""

from __future__ import annotations

import argparse
import sys

from synth_lab.cli.output import print_json
from synth_lab.errors import SynthLabError
from synth_lab.status import Status


def run_train(args: argparse.Namespace) -> int:
    from synth_lab.cli import EXIT_INVALID, EXIT_OK
    from synth_lab.job.report import format_problem

    config = args.config or args.config_pos
    if args.config and args.config_pos and args.config != args.config_pos:
        raise SynthLabError(
            "two configs given", hint="pass the config once, positionally or with --config"
        )
    if args.attach and not args.dry_run:
        from synth_lab.cli.remote import run_remote

        return run_remote(args)
    if not config:
        raise SynthLabError("no config given", hint="synth-lab train --config sft.toml ...")
    if args.examples is not None:
        from synth_lab.data.examples import check_examples

        check_examples(args.examples)
    if args.local and args.remote:
        raise SynthLabError("--local and --remote exclude each other", hint="pick one")
    if args.evaluate and (args.dry_run or not args.local):
        raise SynthLabError("--evaluate scores local runs only", hint="add --local")
    if args.local and not args.dry_run:
        return run_local(args, config)
    if not args.dry_run:
        from synth_lab.cli.remote import run_remote

        return run_remote(args)

    from synth_lab.job.dryrun import dry_run

    run = dry_run(config, args.dataset, examples=args.examples, local=args.local)
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


def run_local(args: argparse.Namespace, config: str) -> int:
    """``synth-lab train --local``: train on this machine; progress on stderr."""
    from pathlib import Path

    from synth_lab.cli import EXIT_OK
    from synth_lab.train import TextLogger, run

    output_dir = args.output_dir or str(Path("runs") / Path(config).stem)
    result = run(
        config,
        args.dataset,
        output_dir=output_dir,
        max_steps=args.max_steps,
        resume=args.resume,
        nproc=args.nproc,
        logger=TextLogger(sys.stderr),
        live=False,
        examples=args.examples,
        evaluation=args.evaluate,
    )
    if result.summary.get("rank", 0) != 0:
        pass  # one rank of a torchrun/srun job: rank 0 reports for all
    elif args.json:
        print_json(result.to_dict())
    else:
        print(repr(result))
        if result.final_dir:
            print(f"model: {result.final_dir}")
    return EXIT_OK if result.status is Status.SUCCEEDED else 130
