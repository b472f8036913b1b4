"""One training process of a multi-process job: ``python -m synth_lab.train.worker SPEC.json``.

Started by ``launcher.py`` with ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` and
the pipe to report through (``SYNTH_LAB_EVENT_FD``). Also runs under ``torchrun`` (without a
pipe, rank 0 then only writes ``metrics.jsonl``).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m synth_lab.train.worker SPEC.json", file=sys.stderr)
        return 2
    from synth_lab.train.distributed import DistEnv, destroy_process_group, init_process_group
    from synth_lab.train.launcher import EVENT_FD_ENV, PipeLogger
    from synth_lab.train.loop import train
    from synth_lab.train.metrics import JSONLLogger, LoggerGroup
    from synth_lab.train.spec import StopSignal, TrainSpec

    spec = TrainSpec.from_json(Path(args[0]).read_text(encoding="utf-8"))
    env = DistEnv.from_environ()
    fd = os.environ.get(EVENT_FD_ENV)
    pipe = PipeLogger(int(fd)) if fd else None
    logger = None
    code = 0
    try:
        init_process_group(env)
        if env.is_main:
            logger = LoggerGroup([JSONLLogger(Path(spec.output_dir) / "metrics.jsonl"), pipe])
        summary = train(spec, env, logger, StopSignal())
        if env.is_main and pipe:
            pipe.send({"type": "result", "summary": summary})
    except BaseException as exc:  # every failure must reach the caller
        code = 130 if isinstance(exc, KeyboardInterrupt) else 1
        if pipe:
            pipe.send(
                {
                    "type": "error",
                    "rank": env.rank,
                    "traceback": traceback.format_exc(),
                    "interrupted": isinstance(exc, KeyboardInterrupt),
                }
            )
        else:
            traceback.print_exc()
    finally:
        if logger is not None:
            logger.close()
        elif pipe:
            pipe.close()
        destroy_process_group()
    return code


if __name__ == "__main__":
    sys.exit(main())
