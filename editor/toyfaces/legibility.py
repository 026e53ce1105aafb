"""How bold each attribute is: render faces that differ in one attribute only and count
the pixels that change at a low resolution. A small generator learns what changes many
pixels strongly; the prototype's 2-4 px features were never learned."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from editor.toyfaces.attributes import (
    ATTRIBUTES,
    STYLE_HIDES,
    Attributes,
    sample_attributes,
    visibility,
)
from editor.toyfaces.render import render

CHANGED = 0.1  # a pixel "changed" when its mean abs RGB difference exceeds this (0..1 scale)


@dataclass(frozen=True)
class PairContrast:
    attribute: str
    a: str
    b: str
    changed_px: float  # mean number of changed pixels at the measuring resolution
    mean_diff: float  # mean abs difference (0..1) over the changed pixels


def downsample(img: np.ndarray, size: int) -> np.ndarray:
    """Box-downsample a (H, W, 3) uint8 image to (size, size, 3) float in [0, 1]."""
    f = img.shape[0] // size
    return img.reshape(size, f, size, f, 3).mean(axis=(1, 3)) / 255.0


def _bases(attribute: str, values: tuple[str, str], n: int, seed: int,
           style: str) -> list[Attributes]:
    """Random faces on which the attribute is visible with both values."""
    rng = np.random.default_rng(seed)
    bases: list[Attributes] = []
    while len(bases) < n:
        base = sample_attributes(rng)
        if all(visibility(base.replace(**{attribute: v}), style)[attribute] for v in values):
            bases.append(base)
    return bases


def pair_contrast(attribute: str, a: str, b: str, n: int = 12, size: int = 32,
                  style: str = "normal", seed: int = 0) -> PairContrast:
    if attribute in STYLE_HIDES[style]:
        raise ValueError(f"the {style} style hides {attribute}")
    counts, diffs = [], []
    for i, base in enumerate(_bases(attribute, (a, b), n, seed, style)):
        x = downsample(render(base.replace(**{attribute: a}), style, jitter_seed=i), size)
        y = downsample(render(base.replace(**{attribute: b}), style, jitter_seed=i), size)
        d = np.abs(x - y).mean(axis=2)
        changed = d > CHANGED
        counts.append(int(changed.sum()))
        diffs.append(float(d[changed].mean()) if changed.any() else 0.0)
    return PairContrast(attribute, a, b, float(np.mean(counts)), float(np.mean(diffs)))


def legibility_table(n: int = 12, size: int = 32, style: str = "normal",
                     attributes: tuple[str, ...] = tuple(ATTRIBUTES)) -> list[PairContrast]:
    """Every value pair of every attribute the style shows."""
    return [pair_contrast(name, a, b, n, size, style)
            for name in attributes if name not in STYLE_HIDES[style]
            for a, b in itertools.combinations(ATTRIBUTES[name], 2)]
