"""The files a command will write, checked before any work starts (a first precompute or
an inversion takes minutes): writable, never one of its own inputs, and not already there
unless the user passed --overwrite; and the progress line the commands show on stderr."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

from editor.core.durations import clock_duration
from editor.core.errors import AtelierError


def shown(path: str | os.PathLike) -> str:
    """A path for the terminal: a name that is not UTF-8 (legal on Linux) would make
    print() fail after the work is done; its odd bytes show as \ufffd instead. A newline,
    a tab or an invisible character in it (legal too) shows escaped ("\\n", "\\u200b"), not
    as a line broken in two or a name that cannot be typed back."""
    text = os.fsencode(path).decode("utf-8", "replace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def refuse_existing(path: Path, overwrite: bool) -> None:
    from editor.core.paths import open_descriptor, written_in_place

    # (a device or a pipe, /dev/null, or one of this process's descriptors, /dev/stdout,
    # is written into: nothing is replaced)
    if path.exists() and not overwrite and not written_in_place(path) \
            and open_descriptor(path) is None:
        raise AtelierError(f"{path} exists; pass --overwrite to replace it")


def check_outputs(paths: Iterable[Path], overwrite: bool, inputs: Iterable[str] = ()) -> None:
    # imported here: editor.engine imports torch, which `atelier models` (StatusLine) skips
    from editor.engine.export import check_targets

    paths = list(paths)
    try:
        check_targets(paths)
    except ValueError as e:
        raise AtelierError(str(e)) from e
    read = {Path(p).resolve() for p in inputs}
    written: dict[Path, Path] = {}
    for path in paths:
        if (same := written.setdefault(path.resolve(), path)) is not path:
            # the later write would replace the earlier one (--json k.png beside -o k.png)
            raise AtelierError(f"{path} is named for two of the outputs ({same} too); "
                               "give each its own file")
        if path.resolve() in read:
            raise AtelierError(f"{path} is one of the pictures being inverted; choose "
                               "another output")
        refuse_existing(path, overwrite)


def format_eta(seconds: float | None) -> str:
    """A progress line's time left ("ETA 1h02m"), or "ETA --" before there is a rate."""
    return "ETA --" if seconds is None else f"ETA {clock_duration(seconds)}"


class StatusLine:
    """One progress line, on stderr by default. A terminal gets it redrawn in place (at most
    every `interval` s); a log or a pipe would keep every `\\r` redraw in one endless line,
    so it gets a plain line when `step` changes (e.g. each tenth of the work), at most every
    `log_every_s` otherwise, and for the last update."""

    def __init__(self, out: TextIO | None = None, interval: float = 0.2,
                 log_every_s: float = 10.0):
        self.out = out if out is not None else sys.stderr  # looked up now: tests swap it
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.interval = interval
        self.log_every_s = log_every_s
        self._last_t = -math.inf
        self._last_step: object = object()  # the first update is always shown
        self.drawn = False

    def show(self, text: str, step: object = None, final: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if now - self._last_t < self.interval and not final:
                return
            self.out.write("\r" + text + "\x1b[K")
        else:
            if not (final or step != self._last_step or now - self._last_t >= self.log_every_s):
                return
            self._last_step = step
            self.out.write(text.rstrip() + "\n")  # a log needs no padding
        self._last_t = now
        self.out.flush()
        self.drawn = True

    def progress(self, text: str, fraction: float) -> None:
        """`text` for work `fraction` done: a log gets a line per tenth."""
        self.show(text, step=int(10 * fraction), final=fraction >= 1)

    def note(self, text: str) -> None:
        """A line of its own between the progress lines (a terminal's line is ended)."""
        self.close()
        print(text, file=self.out)
        self.out.flush()

    def close(self) -> None:
        """End a terminal's line, so that what follows starts on a line of its own."""
        if self.drawn and self.tty:
            self.out.write("\n")
            self.out.flush()
        self.drawn = False


def with_folder_source(text: str) -> str:
    """`text` (a message about a folder) with the environment variable that chose the
    folder named, where one did: "cannot use the folder /x/cache" says nothing of the
    ATELIER_CACHE_DIR that put it there."""
    # imported here: editor.core.paths is light, but outputs is imported by --help
    from editor.core.paths import CACHE_ENV, CONFIG_ENV

    for var, word in ((CACHE_ENV, "the cache"), (CONFIG_ENV, "the config")):
        value = os.environ.get(var)
        if value and var not in text:
            if value in text:
                text += f" (set by {var})"
            elif word in text:
                text += f" ({var} is {value})"
    return text


class _PrefixedWarnings(logging.Handler):
    """The program's logged warnings as the command's own lines on stderr: "atelier
    precompute: warning: ...", not a bare line from logging's last resort."""

    def __init__(self, prog: str):
        super().__init__(logging.WARNING)
        self.prog = prog

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = with_folder_source(record.getMessage())
            print(f"{self.prog}: warning: {text}", file=sys.stderr)  # looked up now
        except Exception:  # noqa: BLE001 - logging's own rule: never raise from a handler
            self.handleError(record)


@contextlib.contextmanager
def prefixed_warnings(prog: str) -> Iterator[None]:
    """While a command runs, the warnings the program logs (editor.*) are its lines."""
    logger = logging.getLogger("editor")
    handler = _PrefixedWarnings(prog)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def warnings_prefixed(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """A command function run within prefixed_warnings(prog)."""

    def wrap(func: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(func)
        def run(*args, **kwargs) -> int:
            with prefixed_warnings(prog):
                return func(*args, **kwargs)

        return run

    return wrap
