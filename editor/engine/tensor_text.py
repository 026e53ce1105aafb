"""Float tensors as recipe text: "f32:<shape>:" + base64 of little-endian float32, or
"f32z:<shape>:" + base64 of those bytes zlib-compressed, where that is much smaller.

Exact (a recipe must reproduce the image bit for bit) and about a third the size of the
same numbers written as JSON, which keeps an inverted latent small enough for a JPEG's XMP
packet. A discovered style delta moves a few dozen of thousands of channels: compressed,
its 48 KB at 1024 px are a few hundred bytes, and a stack of them still fits.
"""

from __future__ import annotations

import base64
import re
import zlib

import numpy as np
import torch

_PACKED = re.compile(r"^f32(z?):(\d+(?:x\d+)*):([A-Za-z0-9+/=]*)$")
COMPRESSED_PREFIX = "f32z:"
_WORTH_COMPRESSING = 0.75  # the compressed form only where it saves a quarter or more


class PackedTensorError(ValueError):
    """Packed text that is malformed, truncated, of the wrong shape or not finite. The
    message is a predicate ("is truncated", "has shape ..."): callers put what the text
    is in front of it ("the recipe's latent is truncated")."""


def is_packed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("f32:", COMPRESSED_PREFIX))


def is_compressed(value: object) -> bool:
    """Packed text in the compressed form (which readers before recipe version 3 lack)."""
    return isinstance(value, str) and value.startswith(COMPRESSED_PREFIX)


def encode_floats(t: torch.Tensor | np.ndarray | tuple[float, ...]) -> str:
    a = t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if a.ndim == 0:
        raise ValueError("a packed tensor needs at least one dimension")
    shape = "x".join(str(n) for n in a.shape)
    raw = a.astype("<f4").tobytes()
    packed = zlib.compress(raw, 9)
    if len(packed) <= _WORTH_COMPRESSING * len(raw):
        return f"{COMPRESSED_PREFIX}{shape}:{base64.b64encode(packed).decode('ascii')}"
    return f"f32:{shape}:{base64.b64encode(raw).decode('ascii')}"


def decode_floats(text: object, shape: tuple[int, ...]) -> torch.Tensor:
    """The float32 tensor of `encode_floats` text, which must have exactly `shape`."""
    m = _PACKED.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise PackedTensorError("is malformed")
    found = tuple(int(n) for n in m.group(2).split("x"))
    if found != tuple(shape):
        raise PackedTensorError(f"has shape {found}; expected {tuple(shape)}")
    try:
        data = base64.b64decode(m.group(3), validate=True)
    except ValueError as e:
        raise PackedTensorError(f"is malformed ({e})") from e
    size = 4 * int(np.prod(shape))
    if m.group(1):
        data = _inflate(data, size)
    if len(data) != size:
        raise PackedTensorError("is truncated")
    a = np.frombuffer(data, dtype="<f4").reshape(shape)
    if not np.isfinite(a).all():
        raise PackedTensorError("holds non-finite values")
    return torch.from_numpy(a.astype(np.float32))


def decode_any_shape(text: object, longest: int) -> torch.Tensor:
    """The one-dimensional float32 tensor of `encode_floats` text, at the length the text
    says, which must be `longest` at most (a recipe checked before any generator is open:
    the length is the text's word, and is bounded before anything is unpacked)."""
    m = _PACKED.match(text.strip()) if isinstance(text, str) else None
    if m is None or "x" in m.group(2):
        raise PackedTensorError("is malformed")
    if len(m.group(2)) > 12 or int(m.group(2)) > longest:
        raise PackedTensorError(f"claims {m.group(2)[:20]} numbers; at most {longest:,} are "
                                "read")
    return decode_floats(text, (int(m.group(2)),))


def _inflate(data: bytes, size: int) -> bytes:
    """The compressed bytes, refused when they unpack to more than `size` (no recipe can
    make the reader unpack gigabytes)."""
    unpacker = zlib.decompressobj()
    try:
        out = unpacker.decompress(data, size + 1)
    except zlib.error as e:
        raise PackedTensorError(f"is malformed ({e})") from e
    if len(out) > size or unpacker.unconsumed_tail:
        raise PackedTensorError("holds more numbers than its shape")
    if not unpacker.eof:
        raise PackedTensorError("is truncated")
    return out
