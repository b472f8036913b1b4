"""The magics: thin adapters that parse arguments and call public synth-lab functions.

Everything a magic does can be done from plain Python: ``%%sft_config`` is
:meth:`SFTConfig.from_toml`, ``%sft_train --dry-run`` is :func:`synth_lab.job.dryrun.dry_run`,
``%sft_data`` is :meth:`synth_lab.data.dataset.Dataset.load`. Heavy modules are imported
inside the handlers, so ``%load_ext synth_lab`` stays fast. The options several magics share
and the did-you-mean parser are in :mod:`synth_lab.magics.args`.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Unicode, observe

from synth_lab import errors
from synth_lab.errors import SynthLabError
from synth_lab.magics.args import (
    DEFAULT_CONFIG_NAME,
    TrainArgs,
    config_option,
    dataset_option,
    parse_line,
    plain_help,
)


@magics_class
class SynthLabMagics(Magics):
    """%%sft_config, %sft_train and %sft_data. Settings: %config SynthLabMagics."""

    full_tracebacks = Bool(
        False, help="Show full Python tracebacks for synth-lab errors instead of short messages."
    ).tag(config=True)
    backend = Unicode(
        "", help="Default learning API base URL for %sft_train --remote (else the environment)."
    ).tag(config=True)

    @observe("full_tracebacks")
    def _tracebacks_changed(self, change: dict[str, Any]) -> None:
        errors.SHOW_TRACEBACKS = bool(change["new"])

    def close(self) -> None:
        """Release what the magics hold (called by %unload_ext)."""
        errors.SHOW_TRACEBACKS = False

    def _bind(self, name: str | None, value: Any) -> Any:
        """Bind ``value`` to ``name`` in the notebook (when a name was given); return it."""
        if name:
            self.shell.user_ns[name] = value
        return value

    # -- %%sft_config ---------------------------------------------------------------------------

    @plain_help
    @magic_arguments()
    @argument("name", nargs="?", default=DEFAULT_CONFIG_NAME, help="variable to bind the config to")
    @argument("--save", metavar="PATH", help="also write the TOML to PATH")
    @cell_magic
    def sft_config(self, line: str, cell: str) -> Any:
        """Validate the cell body (the synth-ai SFT TOML) and bind it to NAME.

        The config is shown as a compact card. Problems are reported with their line:col inside
        the cell, the offending line and a did-you-mean hint; the cell then fails.

        Example:

            %%sft_config my_cfg --save sft.toml
            [job]
            model = "Qwen/Qwen3-0.6B"
        """
        args = parse_line(self.sft_config, line, "%%")
        from synth_lab.config import SFTConfig

        if not args.name.isidentifier():
            raise SynthLabError(
                f"'{args.name}' is not a valid Python variable name",
                hint="use e.g. %%sft_config my_config",
            )
        config = SFTConfig.from_toml(cell, first_line=2)  # the magic is the cell's line 1
        if args.save:
            config.save(args.save)
        return self._bind(args.name, config)

    # -- %sft_train -----------------------------------------------------------------------------

    @plain_help
    @magic_arguments()
    @config_option
    @dataset_option
    @argument("--examples", type=int, help="use only the first N records of the training file")
    @argument("--dry-run", action="store_true", help="validate and show the payload; send nothing")
    @argument("--tokens", action="store_true", help="--dry-run: count tokens (model tokenizer)")
    @argument("--local", action="store_true", help="train here, in this kernel's machine")
    @argument("--remote", action="store_true", help="submit to the learning API")
    @argument("--backend", help="learning API base URL for --remote")
    @argument("--name", help="variable to bind the result to")
    @argument("--output-dir", help="--local: where checkpoints and the model go")
    @argument("--max-steps", type=int, help="--local: stop after N optimizer steps")
    @argument("--resume", action="store_true", help="--local: continue from the last checkpoint")
    @argument("--nproc", type=int, help="--local: worker processes (CPU: gloo)")
    @argument("--attach", metavar="JOB_ID", help="--remote: watch an existing job")
    @argument("--no-wait", action="store_true", help="--remote: submit and return at once")
    @argument(
        "--evaluate",
        metavar="SCORER",
        help="--local: score generations on the validation set (exact, contains, regex:PATTERN)",
    )
    @line_magic
    def sft_train(self, line: str) -> Any:
        """Check (--dry-run) or run an SFT job from a config made with %%sft_config.

        Examples:

            %sft_train --dry-run --dataset train.jsonl --examples 100
            %sft_train --local --config my_cfg --dataset train.jsonl --max-steps 20
        """
        opts = TrainArgs.parse(parse_line(self.sft_train, line))
        if opts.local and opts.remote:
            raise SynthLabError("--local and --remote exclude each other", hint="pick one")
        if opts.evaluate and (opts.dry_run or not opts.local):
            raise SynthLabError("--evaluate scores local runs only", hint="add --local")
        if opts.examples is not None:
            from synth_lab.data.examples import check_examples

            check_examples(opts.examples)
        if opts.dry_run:
            result = self._dry_run(opts)
        elif opts.local:
            result = self._train_local(opts, line)
        else:
            result = self._train_remote(opts)
        return self._bind(opts.name, result)

    def _config(self, opts: TrainArgs) -> Any:
        from synth_lab.config import SFTConfig, load_config

        ref = opts.config or DEFAULT_CONFIG_NAME
        value = self.shell.user_ns.get(ref)
        if isinstance(value, SFTConfig):
            return value
        if value is not None:
            raise SynthLabError(
                f"'{ref}' is a {type(value).__name__}, not an SFT config",
                hint="create one with %%sft_config NAME, or pass --config path/to/config.toml",
            )
        if opts.config is None:
            raise SynthLabError(
                "no config given and no variable named 'sft_config'",
                hint="run a %%sft_config cell first, or pass --config NAME_OR_PATH",
            )
        if not os.path.exists(opts.config) and opts.config.isidentifier():
            names = [k for k, v in self.shell.user_ns.items() if isinstance(v, SFTConfig)]
            guess = difflib.get_close_matches(opts.config, names, n=1)
            hint = (
                f"did you mean '{guess[0]}'?"
                if guess
                else f"configs in this notebook: {', '.join(sorted(names))}"
                if names
                else "create one with %%sft_config NAME, or pass a TOML file path"
            )
            raise SynthLabError(
                f"no config named '{opts.config}' (neither a variable nor a file)", hint=hint
            )
        return load_config(opts.config)

    def _dry_run(self, opts: TrainArgs) -> Any:
        from IPython.display import display

        from synth_lab.job.dryrun import dry_run

        run = dry_run(
            self._config(opts),
            opts.dataset,
            examples=opts.examples,
            tokenizer=opts.tokens or None,
            local=opts.local,
        )
        if not run.ok:
            display(run)
            run.raise_for_errors()
        return run

    def _train_local(self, opts: TrainArgs, line: str) -> Any:
        from pathlib import Path

        from synth_lab.train import run

        name = Path(opts.config).stem if opts.config else DEFAULT_CONFIG_NAME
        again = line if opts.resume else f"{line.strip()} --resume"
        return run(
            self._config(opts),
            opts.dataset,
            output_dir=opts.output_dir or str(Path("runs") / name),
            max_steps=opts.max_steps,
            resume=opts.resume,
            nproc=opts.nproc,
            examples=opts.examples,
            live=True,
            resume_command=f"%sft_train {again.strip()}",
            evaluation=opts.evaluate,
        )

    def _train_remote(self, opts: TrainArgs) -> Any:
        from synth_lab.client import remote

        backend = opts.backend or self.backend or None
        if opts.attach:
            return remote.attach(opts.attach, backend=backend, wait=opts.wait, live=True)
        config = self._config(opts)
        if not (config.compute and config.compute.gpu_type):
            raise SynthLabError(
                "this config has no [compute].gpu_type, so it cannot run as a remote job"
                + ("" if opts.remote else " (the default without --local)"),
                hint="use --local to train here, or set [compute].gpu_type for a remote job",
            )
        return remote.submit(
            config,
            opts.dataset,
            examples=opts.examples,
            backend=backend,
            wait=opts.wait,
            live=True,
        )

    # -- %sft_data ------------------------------------------------------------------------------

    @plain_help
    @magic_arguments()
    @argument("path", help="chat JSONL file")
    @argument("--examples", type=int, help="load only the first N records")
    @line_magic
    def sft_data(self, line: str) -> Any:
        """Load a chat JSONL file as a Dataset (a DataFrame view).

        Example:

            ds = %sft_data train.jsonl --examples 500
            ds.df.head()
        """
        args = parse_line(self.sft_data, line)
        from synth_lab.data.dataset import Dataset

        if args.examples is not None:
            from synth_lab.data.examples import check_examples

            check_examples(args.examples)
        return Dataset.load(args.path, limit=args.examples)

    # -- %sft_plan ------------------------------------------------------------------------------

    @magic_arguments()
    @config_option
    @argument("--dataset", help="training JSONL for the token count (overrides [job].data)")
    @argument("--gpu-type", help="overrides [compute].gpu_type")
    @argument("--name", help="variable to bind the plan to")
    @line_magic
    def sft_plan(self, line: str) -> Any:
        """Will the config fit, how long, how much: per-GPU memory, suggestions, time, cost.

        Same as :func:`synth_lab.plan.estimate`. Example: ``%sft_plan --gpu-type H200``.
        """
        from synth_lab.magics.plan import PlanArgs
        from synth_lab.plan import estimate

        opts = PlanArgs.parse(parse_argstring(self.sft_plan, line))
        plan = estimate(self._config(opts), opts.dataset, gpu_type=opts.gpu_type)  # type: ignore[arg-type]
        return self._bind(opts.name, plan)

    # -- %sft_sweep -----------------------------------------------------------------------------

    @plain_help
    @magic_arguments()
    @config_option
    @dataset_option
    @argument("--validation-dataset", help="validation JSONL (overrides [data].validation_path)")
    @argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2",
        help="an axis: dotted config key and TOML values; repeat for more axes (their product)",
    )
    @argument("--max-steps", type=int, help="stop each local run after N optimizer steps")
    @argument("--output-dir", help="sweep folder, one subfolder per run (default: runs/sweep)")
    @argument("--name", help="variable to bind the sweep result to")
    @argument("--seed", type=int, default=0, help="seed of every local run")
    @argument("--remote", action="store_true", help="submit each run to the learning API")
    @argument("--backend", help="learning API base URL for --remote")
    @argument(
        "--random",
        action="append",
        metavar="KEY=DIST(A,B)",
        help="a random axis: loguniform(a,b), uniform(a,b), randint(a,b) or choice(v1,v2)",
    )
    @argument("--budget", type=int, help="points of a random search")
    @argument("--search-seed", type=int, default=0, help="seed of the random search's draw")
    @argument("--parallel", type=int, default=1, help="remote jobs in flight at once")
    @argument("--resume", action="store_true", help="continue the sweep in --output-dir")
    @argument("--early-stop", choices=["median", "halving"], help="stop weak runs early")
    @argument(
        "--evaluate",
        metavar="SCORER",
        help="score each local run's generations on the validation set (exact, contains, "
        "regex:PATTERN): the table's eval.score",
    )
    @line_magic
    def sft_sweep(self, line: str) -> Any:
        """Train a sweep (a grid or a random search) and compare the runs (a live table and plot).

        Each --grid gives one axis: a dotted config key and its values in TOML syntax
        (1e-3, true, "text"; bare words are strings); quote the whole axis, with
        single quotes when the values hold double quotes. The sweep runs every
        combination; all are validated before the first run. Same as
        synth_lab.sweep.run_sweep.

        Examples:

            %sft_sweep --dataset train.jsonl --grid "hyperparameters.learning_rate=1e-3,3e-3"
            %sft_sweep --config my_cfg --dataset train.jsonl --max-steps 50 --name sweep \\
                --grid "hyperparameters.learning_rate=1e-3,3e-3" --grid "training.lora.r=4,8"
            %sft_sweep --dataset train.jsonl --remote --parallel 4 --budget 8 \\
                --random "hyperparameters.learning_rate=loguniform(1e-5,1e-3)" --early-stop median
        """
        from synth_lab.sweep import SweepArgs, run_sweep

        opts = SweepArgs.parse(parse_line(self.sft_sweep, line))
        result = run_sweep(
            self._config(opts),  # type: ignore[arg-type]
            opts.axes,
            opts.dataset,
            output_dir=opts.output_dir,
            max_steps=opts.max_steps,
            validation_dataset=opts.validation_dataset,
            seed=opts.seed,
            live=True,
            remote=opts.remote,
            backend=(opts.backend or self.backend or None) if opts.remote else None,
            max_parallel=opts.parallel,
            resume=opts.resume,
            budget=opts.budget,
            search_seed=opts.search_seed,
            early_stop=opts.early_stop,
            evaluation=opts.evaluate,
        )
        return self._bind(opts.name, result)
