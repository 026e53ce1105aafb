"""Style codes: the outputs of every affine (modulation) layer of a StyleGAN2 generator.

Style space S (Wu et al., "StyleSpace") is where text edits become arithmetic: a global
direction is a per-channel delta. A StyleCode keeps one (B, C_i) tensor per style layer in
the generator's order and offers per-layer views and one flat (B, sum C_i) view.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StyleLayerSpec:
    """One style layer: its module name, channel count, resolution, whether it feeds a
    toRGB layer (those are left out of edits), which W+ row drives it and which noise
    buffer it uses (-1 for toRGB)."""

    name: str
    channels: int
    resolution: int
    is_torgb: bool
    w_index: int
    noise_index: int = -1


class StyleCode:
    """A batch of style codes. Tensors are (B, C_i), one per layer in `specs` order."""

    __slots__ = ("specs", "tensors")

    def __init__(self, specs: Sequence[StyleLayerSpec], tensors: Sequence[torch.Tensor]):
        if len(specs) != len(tensors):
            raise ValueError(f"{len(specs)} layer specs but {len(tensors)} tensors")
        for spec, t in zip(specs, tensors, strict=True):
            if t.ndim != 2 or t.shape[1] != spec.channels:
                raise ValueError(
                    f"layer {spec.name}: expected (B, {spec.channels}), got {tuple(t.shape)}"
                )
        self.specs = tuple(specs)
        self.tensors = list(tensors)

    # --------------------------------------------------------------- views
    @property
    def batch_size(self) -> int:
        return self.tensors[0].shape[0]

    @property
    def num_channels(self) -> int:
        return sum(s.channels for s in self.specs)

    def __len__(self) -> int:
        return len(self.tensors)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.tensors)

    def __getitem__(self, key: int | str) -> torch.Tensor:
        if isinstance(key, str):
            for spec, t in zip(self.specs, self.tensors, strict=True):
                if spec.name == key:
                    return t
            raise KeyError(f"no style layer named {key!r}")
        return self.tensors[key]

    def flat(self) -> torch.Tensor:
        """(B, total_channels), layers concatenated in order."""
        return torch.cat(self.tensors, dim=1)

    @classmethod
    def from_flat(cls, specs: Sequence[StyleLayerSpec], flat: torch.Tensor) -> StyleCode:
        sizes = [s.channels for s in specs]
        if flat.ndim == 1:
            flat = flat.unsqueeze(0)
        if flat.shape[1] != sum(sizes):
            raise ValueError(f"flat style code has {flat.shape[1]} channels, expected {sum(sizes)}")
        return cls(specs, list(torch.split(flat, sizes, dim=1)))

    # --------------------------------------------------------------- layout helpers
    def offsets(self) -> list[int]:
        """Start index of each layer in the flat view."""
        return flat_offsets(self.specs)

    # --------------------------------------------------------------- arithmetic
    def map(self, fn) -> StyleCode:
        return StyleCode(self.specs, [fn(t) for t in self.tensors])

    def detach(self) -> StyleCode:
        return self.map(lambda t: t.detach())

    def clone(self) -> StyleCode:
        return self.map(lambda t: t.clone())

    def to(self, *args, **kwargs) -> StyleCode:
        return self.map(lambda t: t.to(*args, **kwargs))

    def __add__(self, other: StyleCode | torch.Tensor) -> StyleCode:
        if isinstance(other, StyleCode):
            return StyleCode(self.specs, [a + b for a, b in zip(self.tensors, other.tensors,
                                                                 strict=True)])
        return StyleCode.from_flat(self.specs, self.flat() + other)

    def __repr__(self) -> str:
        return (f"StyleCode(batch={self.batch_size}, layers={len(self)}, "
                f"channels={self.num_channels})")


def flat_offsets(specs: Sequence[StyleLayerSpec]) -> list[int]:
    out, pos = [], 0
    for s in specs:
        out.append(pos)
        pos += s.channels
    return out


def layer_of(offsets: Sequence[int], flat_index: int) -> int:
    """The style layer holding a flat channel, given the layers' flat_offsets."""
    return max(i for i, o in enumerate(offsets) if o <= flat_index)


def editable_mask(specs: Sequence[StyleLayerSpec]) -> torch.Tensor:
    """Boolean mask over the flat view: True for non-toRGB channels."""
    return torch.cat([torch.full((s.channels,), not s.is_torgb, dtype=torch.bool) for s in specs])
