"""Exceptions of the core layer. Messages say what was attempted and with which file."""

from __future__ import annotations

import re


class AtelierError(Exception):
    """Base class for errors the user should see as a clear message."""


class Cancelled(Exception):
    """The caller asked the work to stop. Finished work is saved (the same call resumes);
    the message, if any, says what was kept ("2 of 5 files written")."""


REASON_CHARS = 200


def shortened(text: str, longest: int) -> str:
    """`text`, cut to `longest` characters with an ellipsis where it is longer."""
    return text if len(text) <= longest else text[:longest - 1] + "…"


def one_line(text: str) -> str:
    """`text` on one line: each run of spaces, tabs and line breaks one space, none around
    it (as CLIP's tokenizer reads a prompt, and as a message fits a status line)."""
    return " ".join(text.split())


def short_reason(e: BaseException, skip: tuple[str, ...] = ()) -> str:
    """The first line of an exception's text (ignoring lines that mention any of `skip`),
    cut to REASON_CHARS with an ellipsis: a damaged file can make a reader's message
    megabytes long (a float literal of a million digits), too long to show anyone."""
    for line in str(e).splitlines():
        line = line.strip()
        if line and not any(word in line.lower() for word in skip):
            return shortened(line, REASON_CHARS)
    return type(e).__name__


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
    """An image file could not be read (missing, not an image, corrupt, truncated, too large).
    Its message names the whole path, for a terminal; `path` and `why` let a window name
    the file in its own words."""

    def __init__(self, message: str, path: str | None = None, why: str | None = None):
        super().__init__(message)
        self.path, self.why = path, why


class DamagedRecipeError(ImageLoadError):
    """A picture's metadata holds a Latent Atelier recipe that cannot be read out (not
    "carries no recipe"); its pixels may still open."""


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
    # cuBLAS and cuDNN report a failed workspace allocation in their own words
    return isinstance(e, RuntimeError) and any(sign in text for sign in (
        "can't allocate memory", "out of memory", "cublas_status_alloc_failed",
        "cudnn_status_alloc_failed"))


# what torch says, in one long line: "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0
# has a total capacity of 79.15 GiB of which 3.06 MiB is free. ... PYTORCH_CUDA_ALLOC_CONF
# ...", and on a CPU "... can't allocate memory: you tried to allocate 8 bytes ..."
_ASKED = re.compile(r"(?:Tried|tried) to allocate ([\d.]+ ?[KMGT]?i?B|\d+ bytes)")
_GPU_FREE = re.compile(r"(GPU \d+) has a total capacity of ([\d.]+ [KMGT]iB) of which "
                       r"([\d.]+ [KMGT]iB) is free")


# how out_of_memory_text's line starts, on a GPU and elsewhere
OUT_OF_GPU_MEMORY, OUT_OF_MEMORY = "out of GPU memory", "out of memory"


def says_out_of_memory(message: str) -> bool:
    """Whether a failure's line (error_message's, out_of_memory_text's) is an allocation
    failure."""
    return message.startswith((OUT_OF_GPU_MEMORY, OUT_OF_MEMORY))


def first_line(e: BaseException) -> str:
    """The first line of an error's message ('' when it has none): what fits a status line
    or a sentence of ours around it."""
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def out_of_memory_text(e: BaseException) -> str:
    """One short line for an allocation failure: how much was asked for and, on a GPU, how
    much was free, instead of torch's paragraph on allocator settings."""
    text = str(e).strip()
    asked, gpu = _ASKED.search(text), _GPU_FREE.search(text)
    head = OUT_OF_GPU_MEMORY if gpu or "CUDA" in text else OUT_OF_MEMORY
    details = ([f"asked for {asked[1]} more"] if asked else []) + (
        [f"{gpu[3]} of {gpu[2]} free on {gpu[1]}"] if gpu else [])
    if details:
        return f"{head} ({'; '.join(details)})"
    first = first_line(e)
    return head + (f": {first}" if first else "")


class InversionDivergedError(AtelierError):
    """An inversion's optimisation went to infinite or NaN values (too high a learning rate,
    or a generator that draws them)."""


def error_message(e: BaseException) -> str:
    """One line for the user: our own errors speak for themselves; others name their type."""
    if is_out_of_memory(e):
        return out_of_memory_text(e)
    text = first_line(e)
    if isinstance(e, AtelierError) and text:
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
