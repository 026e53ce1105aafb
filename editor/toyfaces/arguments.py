"""Command-line checks shared by the demo-world recipes and their eval: the number types
(editor.core.arg_types, as the atelier commands), the output files (the device is
editor.core.devices.pick_device, as the atelier commands), so a mistake is one line before
any work rather than a traceback after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from editor.core.arg_types import float_within, int_at_least, non_empty, positive_float
from editor.core.errors import AtelierError
from editor.core.paths import unwritable_reason

DEVICES = "auto (CUDA if present), cpu, cuda or cuda:N"


class RecipeError(AtelierError):
    """A recipe or eval cannot run as asked (bad device, output in the way, a checkpoint
    made with other options); the message says what to do."""


def check_output_folder(folder: Path, files: Iterable[str], force: bool) -> None:
    """Refuse, before training, an --out that can never be a folder, one that cannot be
    written (found out only at the export, after the training), or one whose model files
    would be replaced without --force."""
    require_folder_possible(folder, f"--out {folder}")
    if (why := unwritable_reason(folder)) is not None:
        raise RecipeError(f"--out {folder}: cannot write there ({why})")
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
           "float_within", "int_at_least", "non_empty", "positive_float",
           "require_folder_possible"]
