"""The system clipboard: the picture out, pictures and recipes in.

Copy puts the picture as an image, with its recipe beside it under RECIPE_MIME: pasted into
another program it is the picture; pasted into Latent Atelier (this window or another) it is
the session that drew it, exactly. Paste takes, first found: a recipe of ours (or recipe
JSON copied as text), files copied in a file manager (opened as if dropped), then an image
(from a browser or another editor: cropped and inverted like an opened picture).

A pasted image is written to the cache as a PNG named by its content, since the inversion
reads a file: pasting the same picture again finds its remembered crop, and its inversion
if one is running.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QMimeData
from PySide6.QtGui import QGuiApplication, QImage

from editor.core.image_io import DEFAULT_MAX_PIXELS
from editor.core.paths import atomic_path, cache_dir
from editor.engine.session import RECIPE_FORMAT

RECIPE_MIME = "application/x-latent-atelier-recipe+json"
PASTED_DIR = "pasted"
KEEP_PASTED = 20  # pasted pictures kept in the cache before the oldest go


@dataclass
class Pasted:
    """What the clipboard offers, in the order paste uses it."""

    recipe: str | None = None
    paths: list[str] = field(default_factory=list)
    image: QImage | None = None


def picture_mime(image: QImage, recipe: str) -> QMimeData:
    mime = QMimeData()
    mime.setImageData(image)
    mime.setData(RECIPE_MIME, QByteArray(recipe.encode("utf-8")))
    return mime


# Platforms whose clipboard is Qt's own in-process one: a static object, destroyed after
# Python has shut down, when deleting a QMimeData made in Python crashes the process.
_IN_PROCESS_CLIPBOARDS = frozenset({"offscreen", "minimal"})
_exit_hook: list[bool] = []


def put_picture(image: QImage, recipe: str) -> None:
    """The picture, with its recipe, on the system clipboard."""
    QGuiApplication.clipboard().setMimeData(picture_mime(image, recipe))
    if QGuiApplication.platformName() in _IN_PROCESS_CLIPBOARDS and not _exit_hook:
        _exit_hook.append(True)
        atexit.register(_clear_in_process_clipboard)  # runs while Python still does


def _clear_in_process_clipboard() -> None:
    # what it holds dies with the process anyway; elsewhere the clipboard outlives us
    if QGuiApplication.instance() is not None:
        QGuiApplication.clipboard().clear()


def read_pasted(mime: QMimeData | None) -> Pasted | None:
    """What can be pasted from `mime`; None when it holds nothing the window opens."""
    if mime is None:
        return None
    if mime.hasFormat(RECIPE_MIME):
        return Pasted(recipe=bytes(mime.data(RECIPE_MIME).data()).decode("utf-8", "replace"))
    if mime.hasText() and _looks_like_recipe(mime.text()):
        return Pasted(recipe=mime.text())
    paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
    if paths:
        return Pasted(paths=paths)
    if mime.hasImage():
        image = QImage(mime.imageData())
        if not image.isNull():
            return Pasted(image=image)
    return None


def _looks_like_recipe(text: str) -> bool:
    # a JSON object naming our format; other text is for the text boxes, not the window.
    # The name is looked for in the whole text: a tool that sorts keys (jq -S) puts
    # "format" after the edits, whose deltas run to tens of kilobytes
    return text.lstrip().startswith("{") and f'"{RECIPE_FORMAT}"' in text


class PasteError(Exception):
    pass


def save_pasted_image(image: QImage, folder: Path | None = None) -> Path:
    """`image` as a PNG in the pasted pictures' folder (the cache's), named by its pixels;
    the oldest beyond KEEP_PASTED are removed. PasteError when it is too big or cannot be
    written."""
    if image.width() * image.height() > DEFAULT_MAX_PIXELS:
        raise PasteError(f"the pasted picture is {image.width()}x{image.height()} pixels, "
                         f"more than this program opens ({DEFAULT_MAX_PIXELS // 1_000_000} "
                         "million)")
    folder = folder or cache_dir() / PASTED_DIR
    pixels = _pixels_to_keep(image)
    path = folder / f"pasted-{_pixel_digest(pixels)[:12]}.png"
    if not path.is_file():  # the same picture keeps its file (and its remembered crop)
        try:
            with atomic_path(path) as tmp:
                if not pixels.save(str(tmp), "PNG"):
                    raise OSError(f"could not write a PNG in {folder}")
        except OSError as e:
            raise PasteError(f"cannot keep the pasted picture: {e.strerror or e}") from e
    _prune(folder, keep=path)
    return path


def _pixels_to_keep(image: QImage) -> QImage:
    """RGB, or RGBA where some pixel is not opaque: transparency is kept for the image
    loader, which flattens it onto white (and says so) as for an opened file; dropping it
    showed what lay under it, or black. An opaque picture is RGB whatever format it came
    in, so that it is the same file."""
    if image.hasAlphaChannel():
        rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)  # R, G, B, A bytes
        if not bool((_rows(rgba)[:, 3::4] == 255).all()):
            return rgba
    return image.convertToFormat(QImage.Format.Format_RGB888)


def _rows(image: QImage) -> np.ndarray:
    """The image's bytes, a row per line, without the padding that ends each line (not
    part of the picture, and left as it was in memory)."""
    used = image.width() * image.depth() // 8
    lines = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(),
                                                               image.bytesPerLine())
    return lines[:, :used]


def _pixel_digest(image: QImage) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(_rows(image)).tobytes())
    digest.update(f"{image.width()}x{image.height()}:{image.format()}".encode())
    return digest.hexdigest()


def _prune(folder: Path, keep: Path) -> None:
    dated = []
    for p in folder.glob("pasted-*.png"):
        with contextlib.suppress(OSError):  # another window's prune may have taken it
            if p != keep:
                dated.append((p.stat().st_mtime, p))
    for _, old in sorted(dated, reverse=True)[KEEP_PASTED - 1:]:
        with contextlib.suppress(OSError):
            old.unlink()
