"""Image files in and out, for the whole app: the CLI's and the GUI's export, and "open image"
for inversion. No torch, no Qt: images travel as (H, W, 3) uint8 arrays that own their memory.

Loading takes anything Pillow reads and always returns 8-bit RGB: EXIF orientation applied,
an embedded colour profile converted to sRGB, alpha flattened onto a background, 16-bit and
float data scaled (not clipped), huge images downscaled (JPEG decoded at reduced scale, so
memory stays bounded) and absurd ones refused before any pixel is decoded. Every failure is
an `ImageLoadError` naming the file.

Exports are written atomically and never replace a file unless asked. The recipe travels in
the file: PNG keeps it in an iTXt chunk "latent-atelier-recipe" (UTF-8, so any prompt
round-trips); JPEG and WebP keep it in an XMP packet. A JPEG marker holds at most 64 KB, so a
larger recipe is not embedded there, and the returned `SavedImage` says so.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import os
import re
import struct
import threading
import warnings
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

import numpy as np
from PIL import ExifTags, Image, ImageFile, PngImagePlugin, UnidentifiedImageError

try:  # colour management needs Pillow built with LittleCMS; without it, profiles are noted
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on how Pillow was built
    ImageCms = None  # type: ignore[assignment]

from .. import __version__
from .errors import (
    DamagedRecipeError,
    ImageExistsError,
    ImageLoadError,
    ImageSaveError,
    one_line,
)
from .paths import atomic_path, written_in_place

RECIPE_KEY = "latent-atelier-recipe"
# browsers play a GIF frame of under 20 ms for 100 ms: the shortest one that plays as asked
GIF_MIN_FRAME_MS = 20
SOFTWARE = f"Latent Atelier {__version__}"

# What a loaded picture may keep: at most 4096 x 4096 pixels' worth of area, however they
# are shaped, so a panorama keeps its short side (a 20000 x 400 strip stays 400 px tall,
# not 82), and no side beyond 65536 (what Qt's images take).
DEFAULT_MAX_AREA = 4096 * 4096
DEFAULT_MAX_SIDE = 65536
# The most pixels decoded at once. 200 MP covers 100+ MP camera files and big panoramas (a
# full RGB decode is ~600 MB); anything larger is refused as a possible decompression bomb.
# Explicit, rather than Pillow's global default (warns at 89 MP, fails at 179 MP).
DEFAULT_MAX_PIXELS = 200_000_000

Box = tuple[int, int, int, int]  # (left, top, right, bottom), pixels, right/bottom exclusive
Color = tuple[int, int, int]

# Pillow decodes EPS by running Ghostscript on the file: not something to do to a stranger's file.
_UNSAFE_READ_FORMATS = frozenset({"EPS"})
# Formats Pillow identifies but has no decoder for (an MPEG video's header is read, no frame)
_IDENTIFY_ONLY_FORMATS = frozenset({"MPEG"})
# Formats whose extra "frames" are the pages of a document, not the steps of an animation
_PAGED_FORMATS = frozenset({"TIFF", "DCX"})

# Pillow's plugins raise a zoo of types on malformed input; all of them mean "corrupt file".
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
    ZeroDivisionError, OverflowError, struct.error, ET.ParseError,
)

# Pillow's bomb check and truncation switch are module globals; loads change them only
# while holding this lock, so two loads on different threads cannot undo each other.
_PILLOW_GLOBALS_LOCK = threading.Lock()

# Same table as ImageOps.exif_transpose; we need only the pixels, not its metadata rewrite.
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


# ----------------------------------------------------------------------------------- loading

@dataclass
class LoadedImage:
    rgb: np.ndarray                 # (H, W, 3) uint8, C-contiguous, owns its memory
    original_size: tuple[int, int]  # (width, height) as displayed (EXIF applied), before downscale
    path: Path
    notes: list[str] = field(default_factory=list)  # what was done to it, for the user
    format: str | None = None       # Pillow's name for the file format, e.g. "JPEG"


def load_image(
    path: str | os.PathLike,
    max_side: int = DEFAULT_MAX_SIDE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: Color = (255, 255, 255),
    max_area: int = DEFAULT_MAX_AREA,
) -> LoadedImage:
    """Read an image file as 8-bit RGB, downscaled (aspect kept) until its longer side is
    at most `max_side` and it has about `max_area` pixels at most.

    `max_pixels` bounds what is decoded at once (after JPEG's reduced-scale decode); a file
    over it is refused before decoding. Animated files give their first frame. Raises
    `ImageLoadError` with a one-line message for anything that is not a readable image.
    """
    if max_side < 1 or max_pixels < 1 or max_area < 1:
        raise ValueError("max_side, max_pixels and max_area must be positive")
    path = Path(path)
    _check_readable_file(path)
    notes: list[str] = []
    limits = (max_side, max_area)
    try:
        with open(path, "rb") as fp, _pillow_guard():
            im = _identify(fp, path)
            fmt = im.format
            try:
                im, original_size = _decode(im, path, limits, max_pixels, background, notes)
            except OSError as e:
                if fmt != "JPEG" or "truncated" not in str(e).lower():
                    raise
                notes.clear()
                im, original_size = _decode_without_end_marker(
                    path, limits, max_pixels, background, notes, e)
    except ImageLoadError:
        raise
    except PermissionError as e:
        raise _load_error(path, "permission denied") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _load_error(path, f"too large to decode safely ({_one_line(e)})") from e
    except MemoryError as e:
        raise _load_error(path, "not enough memory to decode it") from e
    except _DECODE_ERRORS as e:
        raise _load_error(path, _describe_decode_error(e)) from e
    rgb = np.array(im, dtype=np.uint8, order="C")  # a copy: owns its memory, no tie to Pillow
    return LoadedImage(rgb=rgb, original_size=original_size, path=path, notes=notes, format=fmt)


_JPEG_END = b"\xff\xd9"


def _decode_without_end_marker(
    path: Path, limits: tuple[int, int], max_pixels: int, background: Color,
    notes: list[str], truncated: OSError,
) -> tuple[Image.Image, tuple[int, int]]:
    """A JPEG that lacks only its end marker (common, and every viewer opens it) is read;
    one missing picture data is still `truncated`. With the marker added, a file cut short
    decodes with its missing blocks filled in: filled differently when junk comes before
    the marker, because the junk is read as picture data. A complete scan ignores it."""
    data = path.read_bytes()
    if data.endswith(_JPEG_END):
        raise truncated
    data = data.rstrip(b"\xff")  # fill bytes, or the first half of the marker itself

    def with_end(filler: bytes, kept: list[str]) -> tuple[Image.Image, tuple[int, int]]:
        im = Image.open(io.BytesIO(data + filler + _JPEG_END), formats=["JPEG"])
        return _decode(im, path, limits, max_pixels, background, kept)

    found: list[str] = []
    try:
        a, size = with_end(b"", found)
        b, _ = with_end(b"\x55" * 64, [])
    except _DECODE_ERRORS:
        raise truncated from None
    if a.tobytes() != b.tobytes():
        raise truncated
    notes.append("JPEG end marker missing (the picture data is complete)")
    notes.extend(found)
    return a, size


def _check_readable_file(path: Path) -> None:
    """Refuse the cases Pillow would report confusingly (or not at all) before opening."""
    if not path.exists():
        if path.is_symlink():
            raise _load_error(path, "a link that leads nowhere (or in a loop)")
        raise _load_error(path, "no such file")
    if path.is_dir():
        raise _load_error(path, "it is a folder, not an image file")
    if not path.is_file():
        raise _load_error(path, "not a regular file")
    if path.stat().st_size == 0:
        raise _load_error(path, "the file is empty")


@contextlib.contextmanager
def _pillow_guard() -> Iterator[None]:
    """Hold Pillow's globals in a known state: truncated files are errors (never grey-padded),
    and bomb warnings are errors. The pixel limit is ours: `_decode` sets it explicitly."""
    with _PILLOW_GLOBALS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        Image.MAX_IMAGE_PIXELS = None  # header sizes are checked by _decode, after JPEG draft
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _readable_formats() -> list[str]:
    """Pillow's formats that decode here: not the unsafe ones, nor those that only
    identify a file: the stubs (HDF5, GRIB, ...) that need a handler this program does not
    have, and MPEG, whose header Pillow reads but whose frames it cannot decode."""
    Image.init()
    return [f for f, (factory, _) in Image.OPEN.items()
            if f not in _UNSAFE_READ_FORMATS and f not in _IDENTIFY_ONLY_FORMATS
            and not (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile))]


def readable_image_suffixes() -> tuple[str, ...]:
    """The file name endings (".png", ".jfif", ...) of every format `load_image` reads."""
    formats = set(_readable_formats())
    return tuple(sorted(ext for ext, fmt in Image.registered_extensions().items()
                        if fmt in formats))


def looks_like_image(path: str | os.PathLike) -> bool:
    """Whether the file's content is a picture `load_image` can read, whatever its name
    (a PNG saved without an extension); reads the header only."""
    try:
        with open(path, "rb") as fp, _pillow_guard(), Image.open(fp, formats=_readable_formats()):
            return True
    except (UnidentifiedImageError, *_DECODE_ERRORS):
        return False


def _identify(fp: BinaryIO, path: Path) -> ImageFile.ImageFile:
    """Open lazily (header only). We pass our own file object so it is closed on every path."""
    try:
        return Image.open(fp, formats=_readable_formats())
    except UnidentifiedImageError as e:
        fp.seek(0)
        kind = _format_by_signature(fp.read(12))
        why = (f"a {kind} file whose data is damaged (its checksums or structure do not "
               "read)" if kind else "not an image format this program can read")
        raise _load_error(path, why) from e


# The first bytes of the formats users meet most: a file that starts like one and still
# does not open is damaged, not of a format this program lacks.
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"),
               (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))


def _format_by_signature(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)


def _decode(
    im: ImageFile.ImageFile,
    path: Path,
    limits: tuple[int, int],
    max_pixels: int,
    background: Color,
    notes: list[str],
) -> tuple[Image.Image, tuple[int, int]]:
    """Header checks, reduced-scale decode, orientation, colour, final downscale, and an
    embedded colour profile applied (on the downscaled picture: fewer pixels to convert)."""
    stored_w, stored_h = im.size
    if stored_w < 1 or stored_h < 1:
        raise _load_error(path, f"it claims an empty size {stored_w}x{stored_h}")
    if getattr(im, "is_animated", False):
        im.seek(0)
        if im.format in _PAGED_FORMATS:
            notes.append("multi-page image: first page used")
        elif im.format != "MPO":  # a phone photo's preview or depth map: nothing to tell
            notes.append("animated image: first frame used")
    stored_target = _fit_within((stored_w, stored_h), *limits)
    if stored_target != (stored_w, stored_h):
        im.draft(None, stored_target)  # JPEG: the decoder itself scales by 1/2, 1/4 or 1/8
    _check_pixel_budget(path, (stored_w, stored_h), im.size, max_pixels)
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own checks during load (GIF, TIFF tiles)
    im.load()  # inside the caller's try: truncated or corrupt data fails here
    reduced = im.size != (stored_w, stored_h)
    # Only after load(): PNG's getexif() decodes the whole image to find a trailing eXIf.
    orientation = _exif_orientation(im, notes)

    method = _ORIENTATION_TRANSPOSE.get(orientation)
    if method is not None:
        notes.append("EXIF rotation applied")
    try:
        out = _to_8bit(im, background, notes)
    except _UnsupportedMode as e:
        raise _load_error(path, str(e)) from e
    # Downscale, then turn: the turn copies only the small picture.
    if out.size != stored_target:
        out = out.resize(stored_target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    icc = im.info.get("icc_profile")
    if icc and im.mode != "CMYK":
        out = _to_srgb(out, icc, notes)
    elif icc:  # converted without it (no CMYK profile here to test a conversion with)
        notes.append("its CMYK colour profile was not applied: colours may differ from a "
                     "colour-managed viewer's")
    original_size, target = (stored_w, stored_h), stored_target
    if method is not None:
        out = out.transpose(method)
        if orientation >= 5:  # 5..8 turn the picture on its side
            original_size, target = original_size[::-1], target[::-1]
    if target != original_size:
        how = " (JPEG decoded at reduced scale)" if reduced else ""
        notes.append(f"downscaled from {original_size[0]}x{original_size[1]} "
                     f"to {target[0]}x{target[1]}{how}")
    return (out if out.mode == "RGB" else out.convert("RGB")), original_size


def _to_srgb(im: Image.Image, icc: bytes, notes: list[str]) -> Image.Image:
    """`im` (8-bit L or RGB) with its embedded colour profile `icc` converted to sRGB, as
    colour-managed viewers show it (an Adobe RGB or Display P3 photo is not desaturated).
    An sRGB profile changes nothing; a profile that cannot be used leaves the pixels as they
    are, with a note: a profile never fails a load."""
    if ImageCms is None:
        notes.append("colour profile ignored (this Pillow has no colour management)")
        return im
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        name = one_line(ImageCms.getProfileDescription(profile))
    except (ImageCms.PyCMSError, *_DECODE_ERRORS):
        notes.append("colour profile not understood: colours used as stored")
        return im
    called = f"colour profile '{name}'" if name else "colour profile"
    space = profile.profile.xcolor_space.strip()
    if space == "RGB" and im.mode == "L":  # a grey picture tagged with an RGB profile
        im = im.convert("RGB")
    if (space, im.mode) not in (("RGB", "RGB"), ("GRAY", "L")):
        notes.append(f"{called} (for {space or 'unknown'} colours) does not fit the "
                     f"{im.mode} pixels: colours used as stored")
        return im
    try:
        transform = ImageCms.buildTransform(profile, _srgb_profile(), im.mode, "RGB",
                                            ImageCms.Intent.PERCEPTUAL)
        if _is_identity(transform, im.mode):  # sRGB itself, whatever its name
            return im
        out = ImageCms.applyTransform(im, transform)
    except (ImageCms.PyCMSError, *_DECODE_ERRORS):
        notes.append(f"{called} not understood: colours used as stored")
        return im
    notes.append(f"{called} converted to sRGB")
    return out


@functools.cache
def _srgb_profile() -> Any:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def _sample_colours(mode: str) -> Image.Image:
    """Every grey (L), or a 9x9x9 cube of colours (RGB), as one row of pixels."""
    if mode == "L":
        return _grey(np.arange(256, dtype=np.uint8)[None, :])
    levels = np.linspace(0, 255, 9).round().astype(np.uint8)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(1, -1, 3)
    return Image.fromarray(np.ascontiguousarray(cube), "RGB")


def _is_identity(transform: Any, mode: str) -> bool:
    """Whether the transform leaves every sample colour within one level of itself."""
    sample = _sample_colours(mode)
    before = np.asarray(sample.convert("RGB"), dtype=np.int16)
    after = np.asarray(ImageCms.applyTransform(sample, transform), dtype=np.int16)
    return bool(np.abs(after - before).max() <= 1)


def _exif_orientation(im: Image.Image, notes: list[str]) -> int:
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:
        notes.append("EXIF data unreadable: orientation ignored")
        return 1
    return value if isinstance(value, int) else 1


def _fit_within(size: tuple[int, int], max_side: int, max_area: int) -> tuple[int, int]:
    w, h = size
    s = min(1.0, max_side / max(w, h), math.sqrt(max_area / (w * h)))
    if s >= 1.0:
        return size
    return max(1, min(max_side, round(w * s))), max(1, min(max_side, round(h * s)))


def _check_pixel_budget(
    path: Path, stored: tuple[int, int], decoded: tuple[int, int], max_pixels: int
) -> None:
    if decoded[0] * decoded[1] <= max_pixels:
        return
    mp = stored[0] * stored[1] / 1e6
    raise _load_error(
        path,
        f"it is {stored[0]}x{stored[1]} pixels ({mp:,.0f} MP), over the limit of "
        f"{max_pixels / 1e6:,.0f} MP; refused as a possible decompression bomb",
    )


# Conversion works on strips of rows of this many pixels, into an 8-bit image of the fewest
# bands (L for grey sources): a 196 MP 32-bit or RGBA file then needs its decoded pixels
# plus one 8-bit copy, not the several full-size temporaries whole-image numpy would make.
_STRIP_PIXELS = 4_000_000
_GREY_MODES = frozenset({"1", "L", "I", "F"}) | _SIXTEEN_BIT_MODES
_GREY_ALPHA_MODES = frozenset({"LA", "La"})

StripConverter = Callable[[Image.Image], Image.Image]


def _to_8bit(im: Image.Image, background: Color, notes: list[str]) -> Image.Image:
    """Any Pillow mode to 8-bit L (grey sources) or RGB, scaling deep data to its full
    range (never clipping) and flattening transparency onto `background`."""
    if im.mode in ("L", "RGB") and "transparency" not in im.info:
        return im
    convert, out_mode = _strip_converter(im, background, notes)
    out = Image.new(out_mode, im.size)
    for box in _strip_boxes(im.size):
        out.paste(convert(im.crop(box)), box[:2])
    return out


def _strip_converter(im: Image.Image, background: Color, notes: list[str]
                     ) -> tuple[StripConverter, str]:
    """How to turn one strip of `im` into 8 bits, and the mode that gives. Whole-image
    facts (a deep image's value range, whether any pixel is transparent) are found first,
    so that every strip is converted alike."""
    if im.mode in _SIXTEEN_BIT_MODES:
        notes.append("16-bit converted to 8-bit")
        if "transparency" in im.info:  # a colour key (PNG tRNS)
            return _flattener(im, background, notes)
        return (lambda s: _grey(_scale_16bit(np.asarray(s)))), "L"
    if im.mode in ("I", "F"):
        return _deep_converter(im, notes), "L"
    if im.mode in _ALPHA_MODES or "transparency" in im.info:  # alpha or a colour key
        return _flattener(im, background, notes)
    if im.mode == "1":
        return (lambda s: s.convert("L")), "L"
    if im.mode == "CMYK":
        notes.append("CMYK converted to RGB")
    try:  # a mode Pillow has no converter for fails here, once
        im.crop((0, 0, 1, 1)).convert("RGB")
    except ValueError as e:
        raise _UnsupportedMode(f"unsupported colour mode {im.mode}") from e
    return (lambda s: s.convert("RGB")), "RGB"


class _UnsupportedMode(Exception):
    pass


def _grey(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(a, dtype=np.uint8), "L")


def _strip_boxes(size: tuple[int, int]) -> Iterator[Box]:
    width, height = size
    rows = max(1, _STRIP_PIXELS // width)
    for top in range(0, height, rows):
        yield 0, top, width, min(top + rows, height)


def _strips(im: Image.Image) -> Iterator[np.ndarray]:
    for box in _strip_boxes(im.size):
        yield np.asarray(im.crop(box))


def _deep_converter(im: Image.Image, notes: list[str]) -> StripConverter:
    """32-bit integer or float pixels. Integers: 8-bit or 16-bit data stored wide is scaled
    as such; anything else is stretched from its minimum to its maximum. Floats: 0..1 (the
    usual convention) or 0..255 as such, else stretched; non-finite values become 0."""
    lo, hi, non_finite = math.inf, -math.inf, False
    for a in _strips(im):
        if im.mode == "F":
            finite = np.isfinite(a)
            if not finite.all():
                non_finite = True
                a = a[finite]
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    if non_finite:
        notes.append("non-finite float pixels set to 0")
        lo, hi = (min(lo, 0.0), max(hi, 0.0)) if lo <= hi else (0.0, 0.0)
    if im.mode == "I":
        if lo >= 0 and hi <= 255:
            return lambda s: _grey(np.asarray(s))
        if lo >= 0 and hi <= 65535:
            notes.append("16-bit converted to 8-bit")
            return lambda s: _grey(_scale_16bit(np.asarray(s)))
        notes.append(f"32-bit integer values {int(lo)}..{int(hi)} stretched to 8-bit")
        return lambda s: _grey(_stretch(np.asarray(s), lo, hi))

    def finite(s: Image.Image) -> np.ndarray:
        a = np.asarray(s)
        return np.where(np.isfinite(a), a, 0.0) if non_finite else a

    if lo >= 0.0 and hi <= 1.0:
        notes.append("floating-point 0..1 converted to 8-bit")
        return lambda s: _grey(np.rint(finite(s) * 255.0))
    if lo >= 0.0 and hi <= 255.0:
        notes.append("floating-point converted to 8-bit")
        return lambda s: _grey(np.rint(finite(s)))
    notes.append(f"floating-point values {lo:g}..{hi:g} stretched to 8-bit")
    return lambda s: _grey(_stretch(finite(s), lo, hi))


def _scale_16bit(a: np.ndarray) -> np.ndarray:
    # Round to nearest: 65535 -> 255, 32768 -> 128, 0 -> 0.
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _stretch(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.rint((a.astype(np.float64) - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _flattener(im: Image.Image, background: Color, notes: list[str]
               ) -> tuple[StripConverter, str]:
    """Transparency (alpha or a colour key) composited onto `background`; grey stays grey
    on a grey background. A fully opaque image just drops its alpha, without a note."""
    grey = im.mode in (_GREY_ALPHA_MODES | _GREY_MODES) and len(set(background)) == 1
    with_alpha, plain, fill = ("LA", "L", background[0]) if grey else ("RGBA", "RGB",
                                                                       tuple(background))
    if any(_with_alpha(im.crop(box), with_alpha).getchannel("A").getextrema()[0] < 255
           for box in _strip_boxes(im.size)):
        r, g, b = background
        name = "white" if (r, g, b) == (255, 255, 255) else f"#{r:02x}{g:02x}{b:02x}"
        notes.append(f"alpha flattened onto {name}")

    def flatten(s: Image.Image) -> Image.Image:
        s = _with_alpha(s, with_alpha)
        out = Image.new(plain, s.size, fill)
        out.paste(s.convert(plain), mask=s.getchannel("A"))
        return out

    return flatten, plain


def _with_alpha(strip: Image.Image, mode: str) -> Image.Image:
    """The strip in `mode` (LA or RGBA), its alpha or colour key as the alpha channel."""
    if strip.mode in _SIXTEEN_BIT_MODES:
        # 16-bit grey with a colour key: Pillow's conversion clips the values, misses the key
        a = np.asarray(strip)
        alpha = np.where(a == strip.info["transparency"], 0, 255).astype(np.uint8)
        strip = Image.fromarray(np.dstack([_scale_16bit(a), alpha]), "LA")
    return strip.convert(mode)


def _describe_decode_error(e: BaseException) -> str:
    text = _one_line(e)
    if "truncated" in text.lower():
        # Pillow's "image file is truncated (n bytes not processed)": say "truncated" once
        said = re.fullmatch(r"image file is truncated(?: \((.*)\))?", text, re.IGNORECASE)
        detail = said.group(1) if said else text
        if detail and re.fullmatch(r"\d+ bytes not processed", detail):
            detail = None  # the decoder's bookkeeping ("0 bytes not processed"), not news
        return f"the file is truncated ({detail})" if detail else "the file is truncated"
    # Pillow's guards against text-chunk bombs: the pixels may be fine, the metadata is not
    for name, size, where in (("MAX_TEXT_CHUNK", PngImagePlugin.MAX_TEXT_CHUNK, "in one chunk"),
                              ("MAX_TEXT_MEMORY", PngImagePlugin.MAX_TEXT_MEMORY, "in all")):
        if name in text:
            return (f"its metadata text is larger than the {size // 2**20} MB {where} this "
                    f"program reads safely; save the picture again without its metadata ({text})")
    return f"the file is corrupt or unreadable ({type(e).__name__}: {text})"


def _load_error(path: Path, why: str) -> ImageLoadError:
    return ImageLoadError(f"Cannot open image '{path}': {why}", path=str(path), why=why)


def _one_line(e: BaseException) -> str:
    return one_line(str(e)) or type(e).__name__


# ----------------------------------------------------------------------- crops and resizes

def _check_rgb(rgb: np.ndarray, name: str = "image") -> tuple[int, int]:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 \
            or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"{name} must be a non-empty (H, W, 3) uint8 array, got {shape} {dtype}")
    return rgb.shape[0], rgb.shape[1]


def center_crop_square(rgb: np.ndarray) -> np.ndarray:
    """The largest centred square (the CLI's automatic crop before inversion)."""
    h, w = _check_rgb(rgb)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top:top + side, left:left + side].copy()


def crop(rgb: np.ndarray, box: Box) -> np.ndarray:
    """Crop to `box` = (left, top, right, bottom), clamped to the image (a GUI crop box may be
    dragged past the edge). Raises ValueError if nothing is left."""
    h, w = _check_rgb(rgb)
    left, top, right, bottom = (int(v) for v in box)
    left, right = max(0, left), min(w, right)
    top, bottom = max(0, top), min(h, bottom)
    if right <= left or bottom <= top:
        raise ValueError(f"crop box {tuple(box)} leaves nothing of a {w}x{h} image")
    return rgb[top:bottom, left:right].copy()


def resize(
    rgb: np.ndarray, size: int | tuple[int, int], resample: str = "lanczos"
) -> np.ndarray:
    """Resize to `size` = (width, height), or a square side. Lanczos by default; a downscale
    first box-reduces to within 3x of the target (Pillow's reducing_gap), fast and as sharp."""
    _check_rgb(rgb)
    target = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if target[0] < 1 or target[1] < 1:
        raise ValueError(f"resize target must be positive, got {size}")
    im = Image.fromarray(rgb)
    if im.size == target:
        return rgb.copy()
    out = im.resize(target, _resample(resample), reducing_gap=3.0)
    return np.array(out, dtype=np.uint8, order="C")


def _resample(name: str) -> Image.Resampling:
    try:
        return _RESAMPLE[name.lower()]
    except KeyError:
        raise ValueError(f"unknown resample filter {name!r}; use one of {sorted(_RESAMPLE)}") \
            from None


# ----------------------------------------------------------------------------------- export

@dataclass(frozen=True)
class SavedImage:
    path: Path
    format: str               # "PNG", "JPEG", "WEBP" or "GIF"
    size: tuple[int, int]     # (width, height) written
    recipe_embedded: bool     # False without a recipe, or when it did not fit the format


_IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG",
                  ".webp": "WEBP"}
_ANIMATION_FORMATS = {".gif": "GIF", ".webp": "WEBP"}
_FORMAT_ALIASES = {"JPG": "JPEG"}

# A JPEG APP1 marker holds 65533 bytes, 29 of them XMP's own header.
_JPEG_MAX_XMP = 65533 - 29
_XMP_NS = "urn:latent-atelier:ns:1.0/"
# Characters XML 1.0 cannot carry at all (not even as references): such a recipe is not
# put in XMP. \r is legal but would be normalised to \n by a parser, so it is escaped.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_XML_EXTRA_ESCAPES = {"\r": "&#13;"}
_JSON_RAW_NONCHARACTERS = re.compile("[\ufffe\uffff]")


def save_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    recipe: dict | str | None = None,
    format: str | None = None,
    quality: int = 95,
    scale: int = 1,
    overwrite: bool = False,
    upscale_filter: str = "lanczos",
) -> SavedImage:
    """Export `rgb` as PNG, JPEG or WebP (from `format`, else the extension), optionally
    upscaled by an integer `scale` ("nearest" keeps pixels exact, "lanczos" is smooth).
    `quality` applies to JPEG and WebP (lossy); PNG is always lossless.

    Written atomically: the file appears complete or not at all. An existing file is left
    alone unless `overwrite` (ImageExistsError). Other failures raise ImageSaveError.
    """
    path = Path(path)
    fmt = _export_format(path, format, _IMAGE_FORMATS)
    _check_rgb(rgb)
    _check_scale(scale)
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    resample = _resample(upscale_filter)
    recipe_text = _recipe_text(recipe)
    _refuse_overwrite(path, overwrite)

    im = _scaled(rgb, scale, resample)
    params, embedded = _encoder_params(fmt, quality, recipe_text)
    _write_atomically(path, overwrite, lambda tmp: _save_still(im, tmp, fmt, params))
    return SavedImage(path=path, format=fmt, size=im.size, recipe_embedded=embedded)


def _save_still(im: Image.Image, dest: Path | io.BytesIO, fmt: str, params: dict[str, Any]) -> None:
    try:
        im.save(dest, format=fmt, **params)
    except OSError:
        if not params.get("optimize"):
            raise
        # Pillow sizes the buffer of libjpeg's optimised pass from the pixel count, which
        # noise-like pixels with large metadata overflow ("broken data stream"); a plain
        # pass has no such limit, and the file is a few per cent larger
        im.save(dest, format=fmt, **{**params, "optimize": False})


def gif_frame_ms(fps: float) -> int:
    """How long a GIF frame at `fps` lasts: GIF counts in hundredths of a second (Pillow cut
    1000/fps down to them: 12 fps played 80 ms frames, 40 fps 20 ms), so the nearest
    whole 10 ms, at least GIF_MIN_FRAME_MS."""
    return max(GIF_MIN_FRAME_MS, 10 * round(100.0 / fps))


def save_animation(
    path: str | os.PathLike,
    frames: Sequence[np.ndarray],
    fps: float,
    loop: bool = True,
    format: str | None = None,
    quality: int = 90,
    overwrite: bool = False,
    scale: int = 1,
    upscale_filter: str = "lanczos",
    progress: Callable[[int, int], None] | None = None,
) -> SavedImage:
    """Export frames (e.g. an edit-strength sweep) as an animated GIF or WebP, atomically,
    each upscaled by an integer `scale` as save_image does.

    A frame is upscaled only when the encoder reaches it, so a WebP costs its frames at
    their own size; Pillow's GIF writer keeps each frame, upscaled and in its 256 colours
    (a byte a pixel), until the end (120 frames of 1024 px at 8x: about 8 GB). `frames` may
    hold the same array several times (a bounce back), which copies nothing.
    `progress(done, total)` is called before each frame is made (`done` frames went to the
    encoder); it may raise, a cancel say, to stop the write: the exception comes through as
    it is, and nothing is written.

    GIF has 256 colours per frame and 10 ms delay steps; browsers slow delays under 20 ms to
    100 ms, so GIF frames last at least 20 ms. Pillow merges identical consecutive GIF frames.
    """
    path = Path(path)
    fmt = animation_format(path, format)
    if len(frames) == 0:
        raise ValueError("an animation needs at least one frame")
    shapes = {_check_rgb(f, "frame") for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"all frames must have the same size, got {sorted(shapes)}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    _check_scale(scale)
    resample = _resample(upscale_filter)
    _refuse_overwrite(path, overwrite)

    def frame(i: int) -> Image.Image:
        if progress is not None:
            progress(i, len(frames))
        return _scaled(frames[i], scale, resample)

    duration = round(1000.0 / fps)
    rest = [_LazyFrames(frame, 1, len(frames))] if len(frames) > 1 else []
    params: dict[str, Any] = {"save_all": True, "append_images": rest}
    if fmt == "GIF":
        params["duration"] = gif_frame_ms(fps)
        if loop:
            params["loop"] = 0  # NETSCAPE block, repeat forever; without it a GIF plays once
    else:
        params.update(duration=max(1, duration), loop=0 if loop else 1, quality=quality)
    size = (0, 0)

    def write(tmp: Path | io.BytesIO) -> None:
        nonlocal size
        first = frame(0)
        size = first.size
        first.save(tmp, format=fmt, **params)

    _write_atomically(path, overwrite, write)
    return SavedImage(path=path, format=fmt, size=size, recipe_embedded=False)


def _check_scale(scale: int) -> None:
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")


def _scaled(rgb: np.ndarray, scale: int, resample: Image.Resampling) -> Image.Image:
    im = Image.fromarray(rgb)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), resample)
    return im


class _LazyFrames(Image.Image):
    """Frames `start` to `stop - 1` of an animation as one multi-frame image whose frames
    are made (by `make(index)`) only when an encoder seeks to them. Pillow's GIF and WebP
    writers step through a multi-frame image frame by frame; the WebP writer would turn an
    iterator of `append_images` into a list first, every frame at once."""

    def __init__(self, make: Callable[[int], Image.Image], start: int, stop: int):
        super().__init__()
        self._make, self._start, self.n_frames = make, start, stop - start
        self._at = -1

    def seek(self, frame: int) -> None:
        if frame == self._at:  # the writer returning to where it is: nothing to make
            return
        if not 0 <= frame < self.n_frames:
            raise EOFError(f"no frame {frame}")
        im = self._make(self._start + frame)
        # as an image plugin loads a frame: the pixels, their mode and size
        self.im, self._mode, self._size = im.im, im.mode, im.size
        self._at = frame

    def tell(self) -> int:
        return max(self._at, 0)


def read_recipe(path: str | os.PathLike) -> str | None:
    """The recipe an export carries (PNG iTXt, JPEG/WebP XMP), or None if it has none.
    Raises ImageLoadError if the file is not a readable image."""
    path = Path(path)
    _check_readable_file(path)
    try:
        with open(path, "rb") as fp, _pillow_guard():
            im = _identify(fp, path)
            if im.format == "PNG":
                return _png_recipe(im, fp)
            xmp = im.info.get("xmp")
            return _recipe_from_xmp(xmp) if isinstance(xmp, bytes) else None
    except ImageLoadError:
        raise
    except _DamagedRecipe as e:  # the pixels may be fine: only the recipe is lost
        why = f"its Latent Atelier recipe is damaged ({e})"
        raise DamagedRecipeError(f"The recipe in '{path}' is damaged ({e})", path=str(path),
                                 why=why) from e
    except PermissionError as e:  # as load_image says it, not "corrupt or unreadable"
        raise _load_error(path, "permission denied") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _load_error(path, f"too large to decode safely ({_one_line(e)})") from e
    except _DECODE_ERRORS as e:
        raise _load_error(path, _describe_decode_error(e)) from e


def _png_recipe(im: ImageFile.ImageFile, fp: BinaryIO) -> str | None:
    # Pillow keeps the last recipe chunk before the pixels, and reaches those that other
    # tools move after them only by decoding the whole image (seconds for a big photo):
    # the chunk headers lead to every one of them.
    text = im.info.get(RECIPE_KEY)
    found = {str(text)} if text is not None else set()
    try:
        found.update(_png_recipes(fp))
    except EOFError:  # cut short after a recipe: the pixels' damage is load_image's to say
        if not found:
            raise
    if len(found) > 1:  # (a tool that added its own): which one drew the pixels is unknown
        raise _DamagedRecipe(f"it holds {len(found)} different recipes")
    return next(iter(found), None)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})


def _png_recipes(fp: BinaryIO) -> Iterator[str]:
    """The recipe of each of the PNG's text chunks that holds one, found by skipping from
    chunk header to chunk header: the image data is never read, let alone decompressed."""
    keyword = RECIPE_KEY.encode("latin-1") + b"\0"
    for kind, length in _png_chunks(fp):
        if kind in _PNG_TEXT_CHUNKS and length >= len(keyword) \
                and fp.read(len(keyword)) == keyword:
            fp.seek(-len(keyword), os.SEEK_CUR)
            yield _png_text(kind, _checked_chunk_data(fp, kind, length))


def _png_chunks(fp: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """(type, data length) of each whole chunk before IEND, the file at the chunk's data.

    A file that ends without IEND after its image data (many writers and cut downloads
    leave it out, and Pillow decodes such a file) just has no further chunks; one that
    ends inside the image data, or before it, is truncated."""
    file_size = os.fstat(fp.fileno()).st_size
    at = len(_PNG_SIGNATURE)
    pixels_seen = False  # a whole IDAT chunk has been passed
    while True:
        fp.seek(at)
        header = fp.read(8)
        if len(header) < 8:
            if pixels_seen:
                return
            raise EOFError("image file is truncated (the PNG ends before its image data)")
        length, kind = struct.unpack(">I4s", header)
        if not kind.isalpha():  # as Pillow after the pixels: what follows is not read
            return
        if kind == b"IEND":
            return
        at += 8 + length + 4  # header, data, CRC
        if at > file_size:
            if pixels_seen and kind != b"IDAT":  # a chunk after the pixels, cut short
                return
            name = kind.decode("latin-1")
            article = "an" if name[0] in "AEIOUaeiou" else "a"
            raise EOFError(f"image file is truncated (the PNG ends inside {article} {name} chunk)")
        pixels_seen = pixels_seen or kind == b"IDAT"
        yield kind, length


def _checked_chunk_data(fp: BinaryIO, kind: bytes, length: int) -> bytes:
    data = fp.read(length)
    (crc,) = struct.unpack(">I", fp.read(4))
    if zlib.crc32(data, zlib.crc32(kind)) != crc:
        raise SyntaxError("broken PNG file (bad checksum in the recipe's "
                          f"{kind.decode('latin-1')} chunk)")
    return data


def _png_text(kind: bytes, data: bytes) -> str:
    """The text of a tEXt, zTXt or iTXt chunk's data, as Pillow reads it."""
    _keyword, _, rest = data.partition(b"\0")
    if kind == b"tEXt":
        return rest.decode("latin-1", "replace")
    if kind == b"zTXt":  # compression method (0: zlib), then the compressed text
        return _inflate_text(rest[1:]).decode("latin-1", "replace")
    # iTXt: compression flag and method, language and translated keyword, then the text
    compressed, text = rest[:1] == b"\x01", rest[2:].split(b"\0", 2)[-1]
    return (_inflate_text(text) if compressed else text).decode("utf-8")


def _inflate_text(data: bytes) -> bytes:
    """Decompress a text chunk, no larger than Pillow reads (a small chunk can be a bomb)."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, PngImagePlugin.MAX_TEXT_CHUNK)
    except zlib.error as e:
        raise SyntaxError(f"broken PNG file (its recipe does not decompress: {e})") from e
    if inflater.unconsumed_tail:
        raise ValueError("Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK")
    return text


def _export_format(path: Path, format: str | None, known: dict[str, str]) -> str:
    names = sorted(set(known.values()))
    if format is not None:
        fmt = _FORMAT_ALIASES.get(format.upper(), format.upper())
        if fmt not in names:
            raise ValueError(f"cannot export format {format!r}; use one of {names}")
        return fmt
    fmt = known.get(path.suffix.lower())
    if fmt is None:
        raise ImageSaveError(
            f"Cannot export '{path}': unknown extension {path.suffix or '(none)'!r}; "
            f"name it with one of {', '.join(sorted(known))}"
        )
    return fmt


def _recipe_text(recipe: dict | str | None) -> str | None:
    if recipe is None or isinstance(recipe, str):
        text = recipe
    else:
        text = _recipe_json(recipe)
    if text is not None:
        text.encode("utf-8")  # lone surrogates cannot be stored anywhere: fail before writing
    return text


def _recipe_json(recipe: dict) -> str:
    try:
        text = json.dumps(recipe, ensure_ascii=False)
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in some string: \u-escape everything
        text = json.dumps(recipe, ensure_ascii=True)
    return text


def _encoder_params(fmt: str, quality: int, recipe: str | None) -> tuple[dict[str, Any], bool]:
    """Encoder options and metadata; the bool says whether the recipe went in."""
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", SOFTWARE)
        # Pillow refuses to read back text chunks over MAX_TEXT_CHUNK (decompressed).
        embedded = recipe is not None and \
            len(recipe.encode("utf-8")) <= PngImagePlugin.MAX_TEXT_CHUNK
        if embedded:
            info.add_itxt(RECIPE_KEY, recipe, zip=len(recipe) > 1024)
        return {"pnginfo": info}, embedded

    exif = Image.Exif()
    exif[ExifTags.Base.Software] = SOFTWARE
    params: dict[str, Any] = {"quality": quality, "exif": exif.tobytes()}
    if fmt == "JPEG":
        params["optimize"] = True
        if quality >= 90:
            params["subsampling"] = 0  # 4:4:4: keep colour edges crisp at high quality
    xmp = _xmp_packet(recipe) if recipe is not None else None
    if xmp is not None and fmt == "JPEG" and len(xmp) > _JPEG_MAX_XMP:
        xmp = None
    if xmp is not None:
        params["xmp"] = xmp
    return params, xmp is not None


def _xmp_packet(recipe: str) -> bytes | None:
    # JSON leaves U+FFFE and U+FFFF raw in its strings, and XML cannot carry them: the same
    # JSON says them as \u escapes (a recipe is JSON; json.dumps escapes the other ones)
    recipe = _JSON_RAW_NONCHARACTERS.sub(lambda m: f"\\u{ord(m.group()):04x}", recipe)
    if _XML_ILLEGAL.search(recipe):
        return None
    body = escape(recipe, _XML_EXTRA_ESCAPES)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        f'xmlns:atelier="{_XMP_NS}">'
        f"<xmp:CreatorTool>{escape(SOFTWARE)}</xmp:CreatorTool>"
        f"<atelier:recipe>{body}</atelier:recipe>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


class _DamagedRecipe(ValueError):
    """Metadata that names our recipe but gives none: XMP that does not parse, PNG text
    chunks that give two different ones."""


def _recipe_from_xmp(xmp: bytes) -> str | None:
    xmp = xmp.strip(b"\x00 \t\r\n")
    if b"<!DOCTYPE" in xmp or b"<!ENTITY" in xmp:  # no entity games from a stranger's file
        return None
    try:
        root = ET.fromstring(xmp)
    except ET.ParseError as e:
        if _XMP_NS.encode() in xmp:  # ours, damaged: not "carries no recipe"
            raise _DamagedRecipe(f"the XMP metadata does not parse: {e}") from e
        return None
    node = root.find(f".//{{{_XMP_NS}}}recipe")
    return None if node is None else (node.text or "")


def check_export_path(path: str | os.PathLike, overwrite: bool = False) -> None:
    """Raise what save_image would raise about the path alone (unknown extension, a folder,
    an existing file, a name the file system refuses), so that a caller can refuse before
    long work rather than after it."""
    path = Path(path)
    _refuse_overwrite(path, overwrite)  # first: a folder named "out" is not an extension error
    image_format(path)


def image_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The format save_image writes `path` in: `format` where given, else the extension's
    ("PNG", "JPEG" or "WEBP")."""
    return _export_format(Path(path), format, _IMAGE_FORMATS)


def animation_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The format save_animation writes `path` in ("GIF" or "WEBP"), as `image_format`."""
    return _export_format(Path(path), format, _ANIMATION_FORMATS)


def _refuse_overwrite(path: Path, overwrite: bool) -> None:
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as e:  # e.g. a name longer than the file system allows
        # strerror: the error's own text names the path again (600 characters of a long name)
        raise ImageSaveError(f"Cannot export to '{path}': {e.strerror or _one_line(e)}") from e
    if is_dir:
        raise ImageSaveError(f"Cannot export to '{path}': it is a folder")
    if not overwrite and exists and not written_in_place(path):  # a FIFO is written into
        raise ImageExistsError(
            f"Not exporting to '{path}': the file exists (choose another name or allow "
            "overwriting)"
        )


def _write_atomically(path: Path, overwrite: bool,
                      write: Callable[[Path | io.BytesIO], None]) -> None:
    try:
        # without `overwrite`, a file another writer made while this one was encoded (a
        # second export, a command beside the window) stays: put in place only if none is
        with atomic_path(path, replace=overwrite) as tmp:
            if written_in_place(tmp):  # a pipe: the encoders seek ("not seekable")
                encoded = io.BytesIO()
                write(encoded)
                with open(tmp, "wb") as f:
                    f.write(encoded.getvalue())
            else:
                write(tmp)
            _refuse_overwrite(path, overwrite)  # before the sync: no wait to be refused
    except ImageExistsError:
        raise
    except FileExistsError as e:
        raise ImageExistsError(
            f"Not exporting to '{path}': the file was made meanwhile (choose another name "
            "or allow overwriting)") from e
    except OSError as e:  # its file name would be the hidden temporary one: say why only
        raise ImageSaveError(f"Cannot export '{path}': {e.strerror or _one_line(e)}") from e
    except ValueError as e:
        raise ImageSaveError(f"Cannot export '{path}': {_one_line(e)}") from e
