"""The files a command will write, checked before any work starts (a first precompute or
an inversion takes minutes): writable, never one of its own inputs, and not already there
unless the user passed --overwrite."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from editor.core.errors import AtelierError
from editor.engine.export import check_targets


def shown(path: str | os.PathLike) -> str:
    """A path for the terminal: a name that is not UTF-8 (legal on Linux) would make
    print() fail after the work is done; its odd bytes show as \ufffd instead."""
    return os.fsencode(path).decode("utf-8", "replace")


def refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise AtelierError(f"{path} exists; pass --overwrite to replace it")


def check_outputs(paths: Iterable[Path], overwrite: bool, inputs: Iterable[str] = ()) -> None:
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
