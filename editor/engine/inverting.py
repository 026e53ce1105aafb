"""Bring your own image: crop it, invert it into the pack's generator, make it the source.

Shared by the window (as a job with previews) and `atelier invert`. The result is a W+
source that carries its latent (`Source.wplus_data`), so the session, its recipe and every
exported PNG reproduce the picture without any file beside them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from editor.core.image_io import Box, center_crop_square, crop
from editor.methods.global_directions import Progress
from editor.methods.inversion import (
    InversionProgress,
    InversionResult,
    InversionSettings,
    Quality,
    invert,
    target_tensor,
)
from editor.methods.precompute import CancelToken

from .compose import encode_wplus
from .packs import OpenPack
from .renderer import to_uint8_image
from .session import Session, Source


@dataclass
class InvertedImage:
    source: Source
    quality: Quality
    reconstruction: np.ndarray  # (R, R, 3) uint8: what the latent draws
    target: np.ndarray          # (R, R, 3) uint8: the cropped picture at the generator's size
    perceptual: str
    seconds: float


@dataclass
class InversionPreview(Progress):
    """Progress with what the latents draw so far, as (R, R, 3) uint8 arrays (no torch in
    the window)."""

    previews: list[np.ndarray] = field(default_factory=list)


def square_crop(rgb: np.ndarray, box: Box | None) -> np.ndarray:
    """The picture cut to the user's square box, or to its centred largest square."""
    if box is None:
        return center_crop_square(rgb)
    left, top, right, bottom = box
    if right - left != bottom - top:
        raise ValueError(f"the crop must be square, got {right - left}x{bottom - top}")
    return crop(rgb, box)


def targets_for(images: Sequence[np.ndarray], resolution: int) -> torch.Tensor:
    """Square uint8 crops -> (B, 3, R, R) in [-1, 1]."""
    return torch.cat([target_tensor(im, resolution) for im in images])


def invert_images(
    pack: OpenPack,
    crops: Sequence[np.ndarray],
    labels: Sequence[str],
    settings: InversionSettings | None = None,
    cancel: CancelToken = None,
) -> Iterator[Progress | list[InvertedImage]]:
    """Invert square crops together (one optimisation batch); yields progress (with
    previews) and finally one InvertedImage per crop."""
    gen = pack.model.generator
    target = targets_for(crops, gen.img_resolution)
    result: InversionResult | None = None
    for item in invert(gen, target, settings or InversionSettings(), clip=pack.clip,
                       cancel=cancel):
        if isinstance(item, InversionProgress):
            previews = [] if item.preview is None else [
                to_uint8_image(t[None]) for t in item.preview]
            yield InversionPreview(item.done, item.total, item.message, item.eta_s, previews)
        else:
            result = item
    assert result is not None
    shown_targets = [to_uint8_image(t[None]) for t in target]
    sources = [Source(kind="wplus", wplus_data=encode_wplus(result.wplus[i]), label=label)
               for i, label in enumerate(labels)]
    # each reconstruction rendered alone, the way its recipe replays (a batch render can
    # differ by a level in a few pixels)
    ctx = pack.context()
    yield [InvertedImage(
        source=source, quality=result.quality[i],
        reconstruction=to_uint8_image(ctx.render(Session(source=source))),
        target=shown_targets[i], perceptual=result.perceptual, seconds=result.seconds)
        for i, source in enumerate(sources)]


def invert_image(pack: OpenPack, rgb: np.ndarray, box: Box | None, label: str,
                 settings: InversionSettings | None = None, cancel: CancelToken = None
                 ) -> Iterator[Progress | InvertedImage]:
    """One picture, as a job: progress with previews, then its InvertedImage."""
    for item in invert_images(pack, [square_crop(rgb, box)], [label], settings, cancel):
        yield item[0] if isinstance(item, list) else item
