"""The export file formats, scales and file-name extensions: plain data, without torch, so
that a command's options (`atelier edit --help`) can name them without loading the models'
libraries (seconds)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
ANIMATION_FORMATS = ("GIF", "WEBP")
SCALES = (1, 2, 4, 8)
MAX_SCALE = SCALES[-1]  # larger belongs in an image program
UPSCALE_FILTERS = ("lanczos", "nearest")
LOSSY_FORMATS = frozenset({"JPEG", "WEBP"})
DEFAULT_QUALITY = 95  # of JPEG and WebP images
_SUFFIXES = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg", ".jpe"), "WEBP": (".webp",),
             "GIF": (".gif",)}


def format_suffixes(format: str | None) -> tuple[str, ...] | None:
    """The extensions a file of `format` may have, the usual one first (None: unknown)."""
    return _SUFFIXES.get((format or "").upper().replace("JPG", "JPEG"))


def name_for_format(name: str, format: str | None) -> str:
    """`with_format_suffix` on a bare file name, in plain string operations: a batch names
    100,000 files, and pathlib spends 60 µs on each one's."""
    suffixes = format_suffixes(format)
    if suffixes is None:
        return name
    if name.rstrip("."):  # "x." names no extension: it is written x.png, not x..png
        name = name.rstrip(".")
    dot = name.rfind(".")
    suffix = name[dot:].lower() if 0 < dot < len(name) - 1 else ""  # as PurePath.suffix
    if suffix in suffixes:
        return name
    if suffix and any(suffix in known for known in _SUFFIXES.values()):
        return name[:dot] + suffixes[0]
    return name + suffixes[0]


def format_from_suffix(path: str | Path, formats: Iterable[str] = IMAGE_FORMATS
                       ) -> str | None:
    """The format among `formats` that the file's extension names, if any."""
    suffix = Path(path).suffix.lower()
    return next((f for f in formats if suffix in _SUFFIXES.get(f, ())), None)

