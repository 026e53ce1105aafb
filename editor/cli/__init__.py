"""`atelier`: no arguments opens the editor; subcommands run headless."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Subcommand modules, each exposing register(subparsers). Listed by name so that
# `atelier --help` does not import torch-heavy modules until one is run.
SUBCOMMANDS = ("discover", "edit", "import_styleclip", "invert", "models", "precompute")


# GNU OpenMP (PyTorch's CPU threads on Linux) lets an idle helper thread spin 300,000 times
# (about 3 ms on the 2-core CPU) before it sleeps. In the window, the render worker's helper
# then holds a core after every frame, and in many runs the finished frame reached the UI
# thread about 3 ms late. Measured on the 2-core CPU (benchmarks/latency.py and
# window_latency.py, alternating runs): 20,000-30,000 spins still bridge the gaps between
# the kernels of one synthesis (10,000 made frames 0.5 ms slower), and 20,000 left the
# window the shortest p95 tails of those two. Read when torch loads.
INTERACTIVE_OPENMP_ENV = {"GOMP_SPINCOUNT": "20000"}


def prepare_interactive_process() -> None:
    """Before torch is imported, in a process that shows the window: OpenMP settings
    for short frames (a setting the user made in the environment wins)."""
    for key, value in INTERACTIVE_OPENMP_ENV.items():
        os.environ.setdefault(key, value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atelier",
        description="Latent Atelier: text-driven editing of StyleGAN2 images. "
        "Run without arguments to open the editor.",
    )
    from editor import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    gui = sub.add_parser("gui", help="open the editor window (the default)")
    gui.add_argument("paths", nargs="*", help="files to open: generators, and sessions, "
                     "exported images (their recipe), pictures (to invert) or latents")
    gui.set_defaults(func=_run_gui)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"editor.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"editor.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def _run_gui(args: argparse.Namespace) -> int:
    from editor.ui.app import run_app

    return run_app(getattr(args, "paths", []))


def _names_files(argv: list[str]) -> bool:
    """`atelier face.png`: files where a command would be, which the window opens."""
    return bool(argv) and argv[0] not in (*SUBCOMMANDS, "gui", "import-styleclip") \
        and not argv[0].startswith("-") and all(os.path.exists(a) for a in argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if _names_files(argv):
        argv = ["gui", *argv]
    if not argv or argv[0] == "gui":
        prepare_interactive_process()  # building the parser imports torch
    parser = build_parser()
    if not argv:
        return _run_gui(argparse.Namespace(paths=[]))
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        # Ctrl-C outside a command's own handling (loading a model, a download): one line,
        # the usual exit status, no traceback
        print(f"atelier {argv[0]}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`atelier models list | head`): stop quietly, and point
        # stdout at nothing so that Python's own flush at exit does not complain either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
