"""Exceptions of the core layer. Messages say what was attempted and with which file."""

from __future__ import annotations


class AtelierError(Exception):
    """Base class for errors the user should see as a clear message."""


class CheckpointError(AtelierError):
    """A checkpoint file could not be read or does not fit the generator."""


class UnsafePickleError(CheckpointError):
    """A pickle asked for something outside the allow-list; nothing from it was run."""


class IncompatibleModelError(AtelierError):
    """A model is valid but not one this program can use (e.g. StyleGAN3, conditional)."""


class ZooDownloadError(AtelierError):
    """A model could not be downloaded or failed its checksum."""


class ClipError(AtelierError):
    """A CLIP model could not be created or used."""


class ImageLoadError(AtelierError):
    """An image file could not be read (missing, not an image, corrupt, truncated, too large)."""


class ImageSaveError(AtelierError):
    """An image could not be exported; nothing was left half-written."""


class ImageExistsError(ImageSaveError, FileExistsError):
    """An export would replace an existing file and overwriting was not asked for."""


class DirectionsFileError(AtelierError):
    """A file of precomputed global directions from another program (StyleCLIP's fs3.npy or
    S_mean_std) could not be read, or does not fit the generator and CLIP it is meant for."""


def is_out_of_memory(e: BaseException) -> bool:
    """An allocation failure: MemoryError, torch's OutOfMemoryError (a GPU), or the plain
    RuntimeError torch's CPU allocator raises."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text
                                            or "out of memory" in text)


def out_of_memory_text(e: BaseException) -> str:
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return "out of memory" + (f": {first}" if first else "")


class InversionDivergedError(AtelierError):
    """An inversion's optimisation went to infinite or NaN values (too high a learning rate,
    or a generator that draws them)."""
