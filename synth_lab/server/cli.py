"""``synth-lab serve``: run the learning API on this machine.

    synth-lab serve --port 8000 --api-key sk-local-... \\
        --model-map Qwen/Qwen3-0.6B=synth-lab/tiny-chat --accept-any-compute

Clients point at it with ``SYNTH_BACKEND_URL_OVERRIDE=local`` (or ``--backend
http://127.0.0.1:8000``). Without ``--api-key-file``/``--keys-file``/``--api-key`` the key is
``SYNTH_API_KEY``, else a new one is generated and written to ``DATA_DIR/api_key`` (readable by
you only). Prefer a file or the environment to ``--api-key``: argv is visible in ``ps``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synth_lab.errors import MissingDependencyError, SynthLabError
from synth_lab.server.limits import Limits


def default_data_dir() -> Path:
    """``$SYNTH_LAB_SERVER_DIR``, else ``$XDG_DATA_HOME/synth-lab/server`` (``~/.local/share``)."""
    if os.environ.get("SYNTH_LAB_SERVER_DIR"):
        return Path(os.environ["SYNTH_LAB_SERVER_DIR"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "synth-lab" / "server"


def read_keys_file(path: str | os.PathLike[str]) -> dict[str, str | None]:
    """Keys from a file: one ``KEY [OWNER]`` per line; ``#`` starts a comment.

    Keys with the same OWNER share files and jobs; a key without one is its own owner
    (``None``: the server derives an id from it).
    """
    keys: dict[str, str | None] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SynthLabError(f"Cannot read the keys file {path}: {exc}") from None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) > 2:
            raise SynthLabError(f"{path}:{number}: expected 'KEY [OWNER]', got {len(parts)} words")
        keys[parts[0]] = parts[1] if len(parts) == 2 else None
    if not keys:
        raise SynthLabError(f"The keys file {path} holds no key")
    return keys


def parse_model_map(items: Sequence[str]) -> dict[str, str]:
    """``["ID=LOCAL", ...]`` -> ``{ID: LOCAL}``."""
    mapping: dict[str, str] = {}
    for item in items:
        requested, sep, local = item.partition("=")
        if not sep or not requested.strip() or not local.strip():
            raise SynthLabError(
                f"bad --model-map {item!r}", hint="use --model-map REQUESTED_ID=LOCAL_MODEL_OR_PATH"
            )
        mapping[requested.strip()] = local.strip()
    return mapping


def resolve_keys(args: argparse.Namespace, data_dir: Path) -> tuple[dict[str, str | None], str]:
    """The accepted keys and a sentence saying where they came from."""
    if args.keys_file:
        return read_keys_file(args.keys_file), f"keys from {args.keys_file}"
    if args.api_key_file:
        try:
            key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SynthLabError(
                f"Cannot read the API key file {args.api_key_file}: {exc}"
            ) from None
        if not key:
            raise SynthLabError(f"The API key file {args.api_key_file} is empty")
        return {key: None}, f"the API key in {args.api_key_file}"
    key = args.api_key or os.environ.get("SYNTH_API_KEY", "").strip()
    if key:
        return {key: None}, "one API key"
    path = data_dir / "api_key"
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
    if not key:
        key = "sk-local-" + secrets.token_urlsafe(24)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
    return {key: None}, f"the API key stored in {path}"


LIMIT_HELP = {
    "max_steps": "optimizer steps one job may run",
    "max_sequence_length": "largest sequence_length",
    "max_batch": "largest global batch",
    "max_lora_rank": "largest LoRA rank",
    "max_gpus": "largest gpu_count a job may ask for",
    "max_running_jobs": "jobs of one tenant running at once (0: no cap)",
    "max_queued_jobs": "jobs of one tenant waiting to run (0: no cap)",
    "max_stored_bytes": "bytes of files one tenant may keep (0: no cap)",
}


def limits_from(args: argparse.Namespace) -> Any:
    """The :class:`~synth_lab.server.limits.Limits` the ``--max-*`` options set."""
    given = {name: getattr(args, name) for name in LIMIT_HELP if getattr(args, name) is not None}
    for name, value in given.items():
        if value < 0:
            raise SynthLabError(f"--{name.replace('_', '-')} must be 0 or more, got {value}")
    return dataclasses.replace(Limits(), **given)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--data-dir", help="database, uploads and job outputs")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument(
        "--api-key", help="the accepted key (default: SYNTH_API_KEY; visible in ps: prefer a file)"
    )
    keys.add_argument("--api-key-file", help="a file holding the accepted key")
    keys.add_argument("--keys-file", help="accepted keys, one 'KEY [OWNER]' per line")
    parser.add_argument(
        "--model-map",
        action="append",
        default=[],
        metavar="ID=MODEL",
        help="run requests for model ID with a local model id or path (repeatable)",
    )
    parser.add_argument(
        "--allow-model",
        action="append",
        default=[],
        metavar="ID",
        help="let tenants train model ID as it is, e.g. from the Hugging Face cache (repeatable)",
    )
    parser.add_argument(
        "--models-dir", help="let tenants train the model folders in DIR, by folder name"
    )
    defaults = Limits()
    for name, text in LIMIT_HELP.items():
        flag = "--" + name.replace("_", "-")
        default = f"{getattr(defaults, name):,}"
        parser.add_argument(
            flag, type=int, default=None, metavar="N", help=f"{text} (default {default})"
        )
    parser.add_argument(
        "--accept-any-compute",
        action="store_true",
        help="run jobs asking for more GPUs than this machine has on what it has",
    )
    parser.add_argument(
        "--max-upload-mb", type=int, default=4096, help="largest accepted upload (MiB)"
    )
    parser.add_argument("--log-level", default="info", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    settings, where = settings_from(args)
    from synth_lab.server.app import create_app

    return serve(create_app(settings), args, where)


def settings_from(args: argparse.Namespace) -> tuple[Any, str]:
    """The :class:`~synth_lab.server.app.ServerSettings` the options ask for, and a sentence
    saying where the keys came from."""
    try:
        import uvicorn  # noqa: F401 - checked here, used by serve()

        from synth_lab.server.app import ServerSettings
    except ImportError as exc:
        raise MissingDependencyError(
            exc.name or "starlette", "synth-lab serve", extra="server"
        ) from None

    os.umask(0o077)  # the data folder, its files and the workers' outputs: this user only
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    keys, where = resolve_keys(args, data_dir)
    settings = ServerSettings(
        data_dir=data_dir,
        api_keys=keys,
        model_map=parse_model_map(args.model_map),
        allowed_models=list(args.allow_model),
        models_dir=Path(args.models_dir).expanduser() if args.models_dir else None,
        limits=limits_from(args),
        accept_any_compute=args.accept_any_compute,
        max_upload_bytes=args.max_upload_mb << 20,
    )
    from synth_lab.job.jobspec import model_available

    for requested, local in [*settings.model_map.items(), *((m, m) for m in args.allow_model)]:
        if not model_available(local):
            print(
                f"warning: model {requested} ({local}) is not available locally; "
                "jobs for it will fail",
                file=sys.stderr,
            )
    return settings, where


def serve(app: Any, args: argparse.Namespace, where: str) -> int:
    """Serve ``app`` on the options' host and port until interrupted."""
    import uvicorn

    from synth_lab.client.config import mask_key

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    settings = app.state.api.settings
    shown = ", ".join(mask_key(k) for k in list(settings.api_keys)[:3])
    print(
        f"synth-lab learning API on http://{args.host}:{args.port}/api "
        f"(data: {settings.data_dir}; {where}: {shown})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m synth_lab.server``."""
    parser = argparse.ArgumentParser(prog="synth-lab serve", description=__doc__.split("\n")[0])
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except SynthLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
