"""`atelier`: no arguments opens the editor; subcommands run headless."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

# Subcommands: name -> (module exposing register(subparsers), one-line help). Listed here
# so that `atelier --help` lists them without importing their modules (torch: seconds);
# only the command being run is imported.
COMMANDS = {
    "discover": ("discover", "discover labelled edit directions without prompts "
                 "(CLIP2StyleGAN)"),
    "edit": ("edit_args", "render a seed with text edits, or replay a recipe"),
    "import-styleclip": ("import_styleclip", "use StyleCLIP's precomputed fs3.npy as a "
                         "model pack"),
    "invert": ("invert_args", "find the latent that reproduces a picture"),
    "models": ("models", "list, download, import and remove pretrained models"),
    "precompute": ("precompute", "precompute a model pack (global-direction relevance)"),
}


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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `atelier` parser. Each subcommand's module is imported for its arguments
    (None: every one), or only `command`'s; the others are listed by name and help."""
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
    gui.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the one chosen "
                     "last in View ▸ Device, else auto; this run only)")
    gui.set_defaults(func=_run_gui)
    for name, (module_name, summary) in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(f"editor.cli.{module_name}").register(sub)
        else:  # listed for the help, never parsed: argv[0] names another command
            sub.add_parser(name, help=summary)
    return parser


def command_help(name: str) -> str:
    """The one-line help `atelier --help` shows for a subcommand."""
    return COMMANDS[name][1]


def _run_gui(args: argparse.Namespace) -> int:
    paths = getattr(args, "paths", [])
    # said here, on the terminal, before a window opens (or fails to, without a display)
    if missing := [p for p in paths if not os.path.exists(p)]:
        print(f"atelier gui: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    # a folder was taken for a generator: it failed, and the demo replaced the model used last
    if folders := [p for p in paths if os.path.isdir(p)]:
        print(f"atelier gui: a folder, not a file: {', '.join(folders)}", file=sys.stderr)
        return 2
    from editor.ui.app import run_app

    return run_app(paths, getattr(args, "device", None))


def _names_files(argv: list[str]) -> bool:
    """`atelier face.png [--device cpu]`: a file where a command would be, for the window
    (`atelier gui face.png`). A name that looks like a file counts even when it is missing,
    so that the gui says "no such file" rather than argparse "invalid choice"."""
    first = argv[0] if argv else ""
    return bool(first) and first not in (*COMMANDS, "gui") and not first.startswith("-") \
        and (os.path.exists(first) or os.sep in first or bool(os.path.splitext(first)[1]))


def _innermost_parser(parser: argparse.ArgumentParser,
                      argv: list[str]) -> argparse.ArgumentParser:
    """The (sub)command parser that argv reaches: `atelier models list` -> list's."""
    for word in argv:
        commands = next((a.choices for a in parser._actions
                         if isinstance(a, argparse._SubParsersAction)), {})
        if word in commands:
            parser = commands[word]
    return parser


def _sweep_cache() -> None:
    """Remove what a killed earlier run left half-written in the cache (a pack, a model's
    copy), as the window does at its start: someone who only uses the commands kept them
    for ever. Files a day old only, so a writer at work keeps its own."""
    from editor.core.paths import cache_path, sweep_stale_temps

    # not made here: a cache that cannot be made is the command's to say, in its words
    sweep_stale_temps(cache_path())


def _escape_unwritable_output() -> None:
    """A terminal that cannot write "↔" or "é" (LANG=C, PYTHONIOENCODING=ascii) gets
    them escaped, as Python's stderr does: print() failed after the work was done, and
    `invert` then skipped its --json and the pictures after the first batch."""
    if hasattr(sys.stdout, "reconfigure"):  # None with stdout closed; a StringIO in tests
        sys.stdout.reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _escape_unwritable_output()
    if _names_files(argv):
        argv = ["gui", *argv]
    if not argv or argv[0] == "gui":
        prepare_interactive_process()  # the window imports torch
    if not argv:
        return _run_gui(argparse.Namespace(paths=[]))
    parser = build_parser(argv[0] if argv[0] in COMMANDS else "")
    args, unknown = parser.parse_known_args(argv)
    if argv[0] == "gui" and unknown and not any(u.startswith("-") for u in unknown):
        args.paths = [*args.paths, *unknown]  # files after an option: a.png --device cpu b.png
        unknown = []
    if unknown:  # argparse would show the top-level usage for `atelier gui --bogus`
        _innermost_parser(parser, argv).error(
            f"unrecognized arguments: {' '.join(unknown)}")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    if argv[0] in COMMANDS:
        _sweep_cache()
    try:
        status = int(args.func(args) or 0)
        if sys.stdout is not None:  # None: started with stdout closed (`>&-`), output dropped
            sys.stdout.flush()  # a failing stdout is said here, not by Python's own exit
        return status
    except KeyboardInterrupt:
        # Ctrl-C outside a command's own handling (loading a model, a download): one line,
        # the usual exit status, no traceback
        print(f"atelier {argv[0]}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`atelier models list | head`): stop quietly
        _drop_stdout()
        return 1
    except OSError as e:
        # `atelier models list > /dev/full`: a traceback. The commands name the files they
        # write in their own errors; a nameless full disk (never a read's error) is the
        # output's.
        if e.filename is not None or e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        _drop_stdout()
        print(f"atelier {argv[0]}: cannot write the output: {e.strerror or e}",
              file=sys.stderr)
        return 1


def _drop_stdout() -> None:
    """Point stdout at nothing, so that Python's own flush at exit does not fail again
    on what is still buffered."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())

