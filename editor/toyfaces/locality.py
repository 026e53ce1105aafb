"""A training term that gives the demo generator's single style channels a local meaning.

Grouping (style_groups) makes every attribute own its channels, but within a group the
channels encode the attribute jointly: a text edit is measured one channel at a time
(StyleCLIP's relevance), and a single channel pushed on its own changed pixels far outside
its attribute's part of the face, so channels of other attributes scored nearly as high as
the right ones (measured on v3: 2 to 9 of an edit's top 20 channels in the attribute's group).

The term: take a face A and the same face B with one attribute changed (same jitter). Their
styles differ only in that attribute's channels. Mix them channel by channel with random
weights (some channels kept, some moved part way, past B or back past A) and render the mix:
wherever the world draws A and B the same, the mix must look like A. So any subset of an
attribute's channels, moved by any amount in its range, changes only the pixels that the
attribute itself changes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from editor.core.generator import Generator
from editor.core.style_code import StyleCode
from editor.toyfaces import conditioning
from editor.toyfaces.attributes import ATTRIBUTES, Attributes, sample_attributes
from editor.toyfaces.render import render

DIFF_THRESHOLD = 8 / 127.5  # in [-1, 1] units: one render step is 1/127.5
DILATE_PX = 1  # the changed region grows by this much at 64 px (antialiased edges)
MIX_LOW, MIX_HIGH = -0.5, 1.5  # per-channel weight of B - A, for the channels that move
MOVE_PROBABILITY = 0.5  # chance that a channel of the attribute moves at all


def sample_pairs(step: int, batch: int, seed: int) -> list[tuple[Attributes, Attributes, int]]:
    """(A, B, jitter seed) per item: B is A with one attribute, drawn uniformly, set to another
    of its values. Deterministic in (step, batch, seed)."""
    rng = np.random.default_rng([seed, step, 0x10CA1])
    names = list(ATTRIBUTES)
    pairs = []
    for _ in range(batch):
        attrs = sample_attributes(rng)
        jitter_seed = int(rng.integers(2**31 - 1))
        name = names[int(rng.integers(len(names)))]
        others = [v for v in ATTRIBUTES[name] if v != getattr(attrs, name)]
        pairs.append((attrs, attrs.replace(**{name: others[int(rng.integers(len(others)))]}),
                      jitter_seed))
    return pairs


def _drawn(attrs: Attributes, jitter_seed: int) -> np.ndarray:
    return render(attrs, "normal", 64, jitter_seed).astype(np.float32) / 127.5 - 1


def pair_batch(step: int, batch: int, seed: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z_A, z_B, image A in [-1, 1], unchanged-pixel mask) for sample_pairs: the mask is 1
    where the world draws A and B the same (the changed region grown by DILATE_PX)."""
    pairs = sample_pairs(step, batch, seed)
    images_a = [_drawn(a, j) for a, _, j in pairs]
    keep = [(np.abs(image - _drawn(b, j)).max(-1) <= DIFF_THRESHOLD).astype(np.float32)
            for image, (_, b, j) in zip(images_a, pairs, strict=True)]
    changed = 1 - torch.from_numpy(np.stack(keep))[:, None]
    changed = F.max_pool2d(changed, 2 * DILATE_PX + 1, stride=1, padding=DILATE_PX)
    z_a = np.stack([conditioning.encode(a, j) for a, _, j in pairs])
    z_b = np.stack([conditioning.encode(b, j) for _, b, j in pairs])
    return (torch.from_numpy(z_a), torch.from_numpy(z_b),
            torch.from_numpy(np.stack(images_a)).permute(0, 3, 1, 2), 1 - changed)


def mixed_styles(gen: Generator, z_a: torch.Tensor, z_b: torch.Tensor,
                 g: torch.Generator) -> StyleCode:
    """A's style code with each channel moved a random part of the way toward B's."""
    s_a = gen.styles(gen.map_z(z_a)).flat()
    s_b = gen.styles(gen.map_z(z_b)).flat()
    move = torch.rand(s_a.shape, generator=g) < MOVE_PROBABILITY
    weight = torch.empty(s_a.shape).uniform_(MIX_LOW, MIX_HIGH, generator=g) * move
    return StyleCode.from_flat(gen.style_specs, s_a + weight.to(s_a) * (s_b - s_a))


def locality_loss(skips: list[torch.Tensor], image_a: torch.Tensor, keep: torch.Tensor
                  ) -> tuple[torch.Tensor, float]:
    """Mean L1 to A over the unchanged pixels at every output resolution (a pixel of a
    coarse level counts as unchanged only if all the pixels it covers are)."""
    total = image_a.new_zeros(())
    for skip in skips:
        factor = image_a.shape[-1] // skip.shape[-1]
        target = F.avg_pool2d(image_a, factor) if factor > 1 else image_a
        k = -F.max_pool2d(-keep, factor) if factor > 1 else keep
        total = total + ((skip - target).abs() * k).sum() / (k.sum() * 3).clamp_min(1)
    return total / len(skips), float(total.detach() / len(skips))
