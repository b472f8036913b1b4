"""``synth-lab launch``: print the commands that start one training job on several nodes.

Nothing is started here: the output is a script for the cluster's own engines, one
``torchrun`` per node (``--emit torchrun``) or an sbatch file that runs ``srun torchrun``
(``--emit slurm``). Every rank then runs ``synth-lab train --local`` as one rank of the job.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from synth_lab.errors import SynthLabError

DEFAULT_PORT = 29500


def add_launch_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``launch`` command to the ``synth-lab`` subparsers; returns its parser."""
    parser = subparsers.add_parser(
        "launch", help="print torchrun / Slurm commands for a multi-node local job"
    )
    parser.add_argument("--config", required=True, help="the TOML config")
    parser.add_argument("--dataset", help="training JSONL (default: [job].data)")
    parser.add_argument("--nodes", type=int, help="nodes (default: [compute].nodes)")
    parser.add_argument(
        "--gpus-per-node", type=int, help="processes per node (default: [compute].gpus_per_node)"
    )
    parser.add_argument("--emit", required=True, choices=["torchrun", "slurm"])
    parser.add_argument("--output-dir", help="run folder on storage all nodes share")
    parser.add_argument("--max-steps", type=int, help="stop after N optimizer steps")
    parser.add_argument("--master-addr", help="node 0's address (torchrun; default: $MASTER_ADDR)")
    parser.add_argument("--master-port", type=int, default=DEFAULT_PORT, help="rendezvous port")
    return parser


def run_launch(args: argparse.Namespace) -> int:
    """Print the script; returns the exit code."""
    from synth_lab.config import load_config

    config = load_config(args.config)
    compute = config.compute
    nodes = args.nodes or (compute.nodes if compute else None) or 1
    per_node = args.gpus_per_node or (compute.gpus_per_node if compute else None)
    if per_node is None:
        per_node = max(1, (compute.gpu_count or 1) // nodes) if compute else 1
    if nodes < 1 or per_node < 1:
        raise SynthLabError(
            f"--nodes {nodes} --gpus-per-node {per_node}: both must be at least 1",
            hint="e.g. --nodes 2 --gpus-per-node 8",
        )
    dataset = args.dataset or config.dataset_path
    if dataset is None:
        raise SynthLabError(
            "no training data given", hint="pass --dataset, or set [job].data in the config"
        )
    output_dir = args.output_dir or str(Path("runs") / Path(args.config).stem)
    train = ["train", "--local", "--config", _abs(args.config), "--dataset", _abs(dataset)]
    train += ["--output-dir", _abs(output_dir), "--json"]
    if args.max_steps:
        train += ["--max-steps", str(args.max_steps)]
    render = _slurm if args.emit == "slurm" else _torchrun
    sys.stdout.write(render(args, nodes, per_node, " ".join(map(shlex.quote, train))))
    return 0


def _abs(path: Any) -> str:
    return str(Path(path).expanduser().resolve())


def _header(args: argparse.Namespace, nodes: int, per_node: int) -> str:
    return (
        f"# synth-lab: {Path(args.config).name} on {nodes} node(s) x {per_node} process(es) "
        f"per node = {nodes * per_node} ranks.\n"
        "# Output folder: the --output-dir below must be ONE folder on storage every node\n"
        "#   shares (NFS, Lustre, ...). Rank 0 writes metrics.jsonl, checkpoints and final/;\n"
        "#   every rank writes its own shard of each checkpoint into it, and resume reads them.\n"
        "# The '--' ends torchrun's own options (its parser rejects --local as an ambiguous\n"
        "#   prefix of one of them). Rank 0 prints the --json result; other ranks print nothing.\n"
    )


def _torchrun(args: argparse.Namespace, nodes: int, per_node: int, train: str) -> str:
    addr = shlex.quote(args.master_addr) if args.master_addr else '"$MASTER_ADDR"'
    lines = [
        _header(args, nodes, per_node),
        "# Rendezvous: node 0 hosts it at MASTER_ADDR:MASTER_PORT; that address must be\n"
        "#   reachable from every node. Run each node's line on that node, in any order;\n"
        "#   all of them wait until every rank has joined.\n",
    ]
    if not args.master_addr:
        lines.append(': "${MASTER_ADDR:?set MASTER_ADDR to the address of node 0}"\n')
    for node in range(nodes):
        lines.append(
            f"# node {node}\n"
            f"torchrun --nnodes={nodes} --node_rank={node} --nproc_per_node={per_node} "
            f"--master_addr={addr} --master_port={args.master_port} "
            f'"$(command -v synth-lab)" -- {train}\n'
        )
    return "".join(lines)


def _slurm(args: argparse.Namespace, nodes: int, per_node: int, train: str) -> str:
    name = shlex.quote(f"synth-lab-{Path(args.config).stem}")
    return (
        "#!/bin/bash\n"
        f"#SBATCH --job-name={name}\n"
        f"#SBATCH --nodes={nodes}\n"
        "#SBATCH --ntasks-per-node=1\n"
        f"#SBATCH --gpus-per-node={per_node}\n"
        + _header(args, nodes, per_node)
        + "# One task per node runs torchrun, which starts the node's ranks. Rendezvous: the\n"
        "#   first node of the allocation hosts it (c10d on MASTER_ADDR:MASTER_PORT), under\n"
        "#   the job id, so reruns of the same script never join each other.\n"
        "set -euo pipefail\n"
        'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\n'
        f"MASTER_PORT={args.master_port}\n"
        "export MASTER_ADDR MASTER_PORT\n"
        f'srun torchrun --nnodes="$SLURM_NNODES" --nproc_per_node={per_node} '
        '--rdzv_id="$SLURM_JOB_ID" --rdzv_backend=c10d '
        '--rdzv_endpoint="$MASTER_ADDR:$MASTER_PORT" '
        f'"$(command -v synth-lab)" -- {train}\n'
    )
