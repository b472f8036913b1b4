"""``synth-lab plan CONFIG``: will it fit, how long, how much; before a job starts.

Exit 0 whether or not it fits (the verdict is the output); 2 on a bad config, an unknown
model or GPU type. With ``--json`` stdout holds exactly the plan's object.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_plan_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``plan`` command to the ``synth-lab`` subparsers; returns its parser."""
    plan = subparsers.add_parser("plan", help="memory, time and cost of a config, per GPU")
    plan.add_argument("config", metavar="CONFIG", help="the TOML config")
    plan.add_argument("--dataset", help="training JSONL for the token count (default [job].data)")
    plan.add_argument("--gpu-type", help="overrides [compute].gpu_type (A10G … H200, MI300X)")
    plan.add_argument("--gpu-memory-gib", type=float, help="memory per GPU, overriding the table")
    plan.add_argument("--price", type=float, help="USD per GPU-hour, overriding the table")
    plan.add_argument("--mfu", type=float, help="assumed model FLOPs utilisation (default 0.4)")
    plan.add_argument("--model-config", help="folder with the model's config.json")
    plan.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return plan


def run_plan(args: argparse.Namespace) -> int:
    """Print the plan; returns the exit code."""
    from synth_lab.cli import EXIT_OK
    from synth_lab.cli.output import print_json
    from synth_lab.plan import estimate

    options: dict[str, Any] = {}
    if args.mfu is not None:
        options["mfu"] = args.mfu
    if args.gpu_memory_gib is not None:
        options["gpu_memory"] = int(args.gpu_memory_gib * (1 << 30))
    plan = estimate(
        args.config,
        args.dataset,
        gpu_type=args.gpu_type,
        price_per_gpu_hour=args.price,
        shape=args.model_config,
        **options,
    )
    if args.json:
        print_json(plan.to_dict())
    else:
        print(plan.format_text())
    return EXIT_OK
