"""``synth-lab data lint``: every problem in a chat JSONL file, streamed."""

from __future__ import annotations

import argparse
import sys

import orjson


def run_lint(args: argparse.Namespace) -> int:
    """Print problems as they are found, so memory stays flat whatever the file size."""
    from synth_lab.cli import EXIT_INVALID, EXIT_OK
    from synth_lab.data.validate import LintStream

    stream = LintStream(args.file)
    errors = 0
    if args.json:
        out = sys.stdout
        out.write('{"problems": [')
        for n, problem in enumerate(stream):
            errors += problem.severity == "error"
            out.write("\n  " if n == 0 else ",\n  ")
            out.write(orjson.dumps(problem.to_dict()).decode())
        out.write(f'\n], "records": {stream.records}}}\n')
    else:
        for problem in stream:
            errors += problem.severity == "error"
            where = args.file if problem.line is None else f"{args.file}:{problem.line}"
            where += f" {problem.path}" if problem.path else ""
            hint = f" ({problem.hint})" if problem.hint else ""
            print(f"{where}: {problem.severity}: {problem.message}{hint}")
        print(f"{stream.records} records, {errors} error(s)", file=sys.stderr)
    return EXIT_INVALID if errors else EXIT_OK
