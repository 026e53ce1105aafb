"""`atelier models`: list the model zoo, download a model, import a local file.

Errors are one line on stderr and exit status 1; Ctrl-C during a download keeps the
partial file and exits with 130.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from editor.core import zoo
from editor.core.errors import AtelierError

from . import command_help
from .outputs import StatusLine

PROG = "atelier models"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `models` command (with list / download / import / remove) to a parser."""
    parser = subparsers.add_parser(
        "models", help=command_help("models"),
        description="The model zoo: known pretrained generators and CLIP models. Nothing is "
        "downloaded unless you ask.")
    parser.set_defaults(func=lambda args: _print_help(parser))
    actions = parser.add_subparsers(title="actions", metavar="ACTION")

    p = actions.add_parser("list", help="known models and what is installed")
    p.set_defaults(func=cmd_list)

    p = actions.add_parser("download", help="download a known model into the cache")
    p.add_argument("name", metavar="NAME", help="a name from `atelier models list`")
    p.add_argument("--dir", dest="dest_dir", metavar="DIR",
                   help="save into DIR instead of the cache")
    p.add_argument("--force", action="store_true",
                   help="download again even when installed (repairs a damaged file; the "
                        "old one is replaced only when the new one is complete)")
    p.set_defaults(func=cmd_download)

    p = actions.add_parser("import", help="copy a local model file into the cache")
    p.add_argument("path", metavar="PATH", help="the file to import")
    p.add_argument("--name", metavar="NAME",
                   help="record it under NAME (a registry name is checked against its hash)")
    p.add_argument("--clip-arch", metavar="ARCH",
                   help="CLIP weights: the open_clip architecture they are for (checked; "
                        "found from their shapes by default, e.g. ViT-B-32; weights trained "
                        "by OpenAI as a state dict need the -quickgelu name, "
                        "ViT-B-32-quickgelu)")
    p.set_defaults(func=cmd_import)

    p = actions.add_parser("remove", help="delete an installed model from the cache")
    p.add_argument("name", metavar="NAME", help="an installed name from `atelier models list`")
    p.set_defaults(func=cmd_remove)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def _install_state(entry: zoo.ZooEntry, models: Sequence[zoo.InstalledModel]) -> str:
    model = next((m for m in models if m.name == entry.name), None) or next(
        (m for m in models if m.entry == entry.name), None)
    if model is not None:
        return "yes" if model.verified else "yes (unverified)"
    part = zoo.part_path(entry)
    if part.is_file():
        have = part.stat().st_size
        if entry.size:
            return f"partial {100 * have // entry.size}%"
        return f"partial {zoo.format_size(have)}"
    return "no"


def _table(rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(),
              file=out)


def _short_licence(text: str) -> str:
    """The licence's name, without the explanation that follows it."""
    return text.split(";")[0].split(" (")[0].strip()


def cmd_list(args: argparse.Namespace) -> int:
    try:
        entries, problem = zoo.registry_entries()
        models = zoo.installed()
        where = zoo.models_dir()
    except AtelierError as e:
        return _error(str(e))
    except OSError as e:  # e.g. a cache folder that cannot be made
        return _error(f"{e.filename or 'the model cache'}: {(e.strerror or str(e)).lower()}")
    if problem:
        print(f"{PROG}: warning: {problem}", file=sys.stderr)
    if (unusable := zoo.make_models_dir(where)) is not None:  # the list is still shown
        print(f"{PROG}: warning: nothing can be installed: {unusable}", file=sys.stderr)
    rows = [("NAME", "KIND", "SIZE", "INSTALLED", "LICENCE")]
    for e in entries:
        rows.append((e.name, e.kind, zoo.format_size(e.size), _install_state(e, models),
                     _short_licence(e.licence)))
    known = {e.name for e in entries}
    for m in models:
        if m.name not in known and (m.entry is None or m.entry not in known):
            kind = f"{m.kind} ({m.arch})" if m.kind and m.arch else m.kind or "?"
            rows.append((m.name, kind, zoo.format_size(m.size), "yes (imported)", "?"))
    _table(rows, sys.stdout)
    print(f"\nModels are stored in {where}", file=sys.stdout)
    return 0


class ProgressBar:
    """A one-line progress display: percent, MB, speed and time left. On a terminal it
    redraws in place; otherwise (a log file) it prints a line every 10%."""

    def __init__(self, label: str, out: TextIO | None = None, interval: float = 0.2):
        self.label = label
        self.line = StatusLine(out, interval)
        self._first: tuple[float, int] | None = None

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = (now, done)  # resumed bytes do not count towards the speed
        # a log: one line per 10%, or per 10 MB when the size is unknown
        step = 10 * done // total if total else done // 10_000_000
        self.line.show(self.render(done, total, now), step=step,
                       final=total is not None and done >= total)

    def render(self, done: int, total: int | None, now: float) -> str:
        t0, d0 = self._first or (now, done)
        elapsed = max(now - t0, 1e-6)
        speed = (done - d0) / elapsed
        parts = [self.label]
        if total:
            frac = min(done / total, 1.0)
            bar = "#" * int(frac * 24)
            parts += [f"[{bar:<24}]", f"{100 * frac:5.1f}%",
                      f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"]
        else:
            parts.append(f"{done / 1e6:.1f} MB")
        parts.append(f"{speed / 1e6:.1f} MB/s")
        if total and speed > 0 and done < total:
            parts.append(f"ETA {_clock((total - done) / speed)}")
        return "  ".join(parts)

    def close(self) -> None:
        self.line.close()


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def identify_model_file(*args, **kwargs):
    """What a downloaded or imported file is; imported here, not at the top, because
    model_files imports torch (seconds) and `atelier models list` needs none of it."""
    from editor.core.model_files import identify_model_file as identify

    return identify(*args, **kwargs)


def cmd_download(args: argparse.Namespace) -> int:
    try:
        entry = zoo.get_entry(args.name)
    except AtelierError as e:
        return _error(str(e))
    dest_dir = getattr(args, "dest_dir", None)
    size = zoo.format_size(entry.size) if entry.size else "size unknown"
    print(f"Downloading {entry.name} ({size}; licence: {entry.licence})", file=sys.stderr)
    bar = ProgressBar(entry.name)
    try:
        model = zoo.download(entry, dest_dir, progress=bar, identify=identify_model_file,
                             force=getattr(args, "force", False))
    except KeyboardInterrupt:
        bar.close()
        part = zoo.part_path(entry, dest_dir)
        again = f"`atelier models download {entry.name}`"
        said = (f"the partial download is kept in {part}; run {again} again to resume"
                if part.exists() else f"nothing was downloaded yet; run {again} to start again")
        print(f"{PROG}: interrupted; {said}.", file=sys.stderr)
        return 130
    except AtelierError as e:
        bar.close()
        return _error(str(e))
    bar.close()
    if model.verified:
        print(f"Saved {model.path} (sha256 verified)", file=sys.stderr)
    else:
        print(f"Saved {model.path}\nNot verified: the registry has no checksum for this file. "
              f"Its sha256 is {model.sha256}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    try:
        clip_arch = getattr(args, "clip_arch", None)
        model = zoo.import_file(args.path, name=getattr(args, "name", None),
                                identify=lambda path, expected, stopped: identify_model_file(
                                    path, clip_arch or expected, stopped))
    except AtelierError as e:
        return _error(str(e))
    if zoo.found_installed(model, args.path):
        print(f"{args.path} is installed already, as {model.name}: {model.path} (imported "
              f"from {model.source}); nothing was copied", file=sys.stderr)
        return 0
    what = f"as {model.entry}" if model.entry else "as a model the registry does not know"
    if model.kind == "clip" and model.arch and not model.entry:
        what += f" (CLIP {model.arch}; the window's model packs list it)"
    check = "sha256 verified" if model.verified else f"sha256 {model.sha256}, not verified"
    print(f"Imported {args.path} {what}: {model.path} ({check})", file=sys.stderr)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    try:
        removed = zoo.remove(args.name)
    except zoo.UnknownModelError as e:
        return _discard_partial(args.name, e)
    except AtelierError as e:
        return _error(str(e))
    model = removed.model
    if removed.file_deleted:
        print(f"Removed {model.name}: deleted {model.path} ({zoo.format_size(model.size)})",
              file=sys.stderr)
    else:  # downloaded with --dir into a folder of the user's: theirs to delete
        print(f"Removed {model.name} from the list; its file {model.path} was downloaded "
              "outside the cache and is left where it is", file=sys.stderr)
    return 0


def _discard_partial(name: str, not_installed: AtelierError) -> int:
    """`models remove NAME` for a download that was stopped: what it kept is deleted."""
    try:
        entry = zoo.get_entry(name)
    except zoo.UnknownModelError:
        return _error(str(not_installed))
    try:
        size = zoo.discard_partial(entry)
    except (AtelierError, OSError) as e:  # a download writing it; a read-only cache
        return _error(str(e))
    if size is None:
        return _error(str(not_installed))
    print(f"Deleted the partial download of {entry.name} ({zoo.format_size(size)})",
          file=sys.stderr)
    return 0
