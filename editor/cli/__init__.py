"""`atelier`: no arguments opens the editor; subcommands run headless."""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, each exposing register(subparsers). Listed by name so that
# `atelier --help` does not import torch-heavy modules until one is run.
SUBCOMMANDS = ("discover", "edit", "invert", "models", "precompute")


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
    gui.add_argument("paths", nargs="*", help="generator files to open")
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv:
        return _run_gui(argparse.Namespace(paths=[]))
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
