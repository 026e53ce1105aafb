"""Command-line checks shared by the demo-world recipes and their eval: the number types
(editor.core.arg_types, as the atelier commands), the compute device and the output files,
so a mistake is one line before any work rather than a traceback after it.

(resolve_device is a plain cousin of the engine's pick_device, which toyfaces may not
import: it stands on editor.core alone.)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from editor.core.arg_types import float_within, int_at_least, positive_float
from editor.core.errors import AtelierError

DEVICES = "auto (CUDA if present), cpu, cuda or cuda:N"


class RecipeError(AtelierError):
    """A recipe or eval cannot run as asked (bad device, output in the way, a checkpoint
    made with other options); the message says what to do."""


def resolve_device(name: str) -> torch.device:
    """auto (CUDA when available, else the CPU), cpu, cuda or cuda:N, checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise RecipeError(f"unknown device {name!r}; use {DEVICES}")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise RecipeError(f"device {name!r} asked for, but no CUDA device is available")
        if (device.index or 0) >= count:
            raise RecipeError(f"device {name!r} asked for, but there are only {count} CUDA "
                              "devices")
    return device


def check_output_folder(folder: Path, files: Iterable[str], force: bool) -> None:
    """Refuse, before training, an --out that can never be a folder, or one whose model files
    would be replaced without --force."""
    require_folder_possible(folder, f"--out {folder}")
    existing = [name for name in files if (folder / name).exists()]
    if existing and not force:
        raise RecipeError(f"{folder / existing[0]} exists; pass --force to replace it or "
                          "--out another folder")


def require_folder_possible(folder: Path, what: str) -> None:
    """Refuse a folder path that runs into a file (it could never be made)."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise RecipeError(f"{what}: {parent} is a file, not a folder")
            return


def check_output_file(path: Path) -> None:
    """Make the folder of an output file now, so a bad path fails before the work."""
    if path.is_dir():
        raise RecipeError(f"{path} is a folder, not a file name")
    require_folder_possible(path.parent, str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RecipeError(f"cannot write {path}: {e.strerror or e}") from None


__all__ = ["DEVICES", "RecipeError", "check_output_file", "check_output_folder",
           "float_within", "int_at_least", "positive_float", "require_folder_possible",
           "resolve_device"]
