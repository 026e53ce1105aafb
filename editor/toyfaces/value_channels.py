"""Value channels: every attribute value owns a few style channels that switch it on alone.

StyleSpace (Wu et al. 2021) found that a real StyleGAN2 controls many local attributes with
single style channels, and StyleCLIP's global directions rest on it: a channel's relevance
is measured by pushing that channel alone by +-k sigma. The demo generator, regressed on
renders, spreads each attribute over its group's ~80 channels with small moves each, so no
single channel switches anything, and the relevance picks other attributes' channels about
as readily as the attribute's own (benchmarks/meaning.py: a third of an edit's channels).

This training term designates, for every value v of attribute a, one channel in each of
`DESIGNATED_LAYERS`, inside a's style group (style_groups), and teaches the generator:
- pushing one or more of v's channels up by k sigma draws the same face with a = v;
- pushing one of them down, or pushing v's channels on a face that already shows v,
  changes nothing;
- small pushes of a few other channels change nothing either, so that the low-relevance
  channels an edit also moves (auto-beta keeps 20) do not flip other attributes.
The targets are the world's renders, as for the plain regression; the exported file is
still a standard generator (only its weights differ).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from editor.core.generator import Generator
from editor.core.style_code import flat_offsets
from editor.toyfaces import conditioning, style_groups
from editor.toyfaces.attributes import ATTRIBUTES, Attributes

# Mid-resolution conv layers: every group has at least 6 channels in each (128 channels
# dealt to 11 groups), enough for hair colour's 6 values, and they feed every later layer.
DESIGNATED_LAYERS: tuple[str, ...] = ("convs.1", "convs.2", "convs.3")  # 8, 16, 16 px

# Push sizes in units of the channel's standard deviation: the relevance precompute pushes
# by 5 sigma, an edit at alpha 4 moves its strongest channel by 4 sigma.
PUSH_RANGE = (2.0, 6.0)
JITTER_SIGMA = 2.0  # largest push of an unrelated channel that must change nothing
JITTER_CHANNELS = 3

# Share of a batch in each kind of sample (the rest is plain regression).
SWITCH_SHARE = 0.4
HOLD_SHARE = 0.1
JITTER_SHARE = 0.1


def value_channel_table(gen: Generator) -> dict[tuple[str, str], list[int]]:
    """(attribute, value) -> flat style indices of its designated channels."""
    offsets = dict(zip((s.name for s in gen.style_specs), flat_offsets(gen.style_specs),
                       strict=True))
    specs = {s.name: s for s in gen.style_specs}
    table: dict[tuple[str, str], list[int]] = {}
    for name in DESIGNATED_LAYERS:
        if name not in specs or specs[name].is_torgb:
            raise ValueError(f"{name} is not a conv style layer of this generator")
        groups = style_groups.unit_groups(specs[name].channels)
        for attribute, values in ATTRIBUTES.items():
            own = np.flatnonzero(groups == style_groups.GROUPS.index(attribute))
            if len(own) < len(values):
                raise ValueError(f"{name} has {len(own)} {attribute} channels for "
                                 f"{len(values)} values")
            for value, channel in zip(values, own, strict=False):
                table.setdefault((attribute, value), []).append(offsets[name] + int(channel))
    return table


@torch.no_grad()
def style_sigma(gen: Generator, n: int = 2048, seed_base: int = 30_000_000) -> torch.Tensor:
    """Standard deviation of every flat style channel over n faces of the prior."""
    z = conditioning.z_for_seeds(range(seed_base, seed_base + n))
    return gen.styles(gen.map_z(z)).flat().std(0)


@dataclass(frozen=True)
class PushedFace:
    """One training sample: the face z asks for, the style push, and the face to draw."""

    attrs: Attributes
    jitter_seed: int
    target: Attributes
    push: dict[int, float]  # flat channel -> push in sigma units
    kind: str  # plain, switch, hold or jitter


def draw_sample(rng: np.random.Generator, attrs: Attributes, jitter_seed: int,
                table: dict[tuple[str, str], list[int]],
                editable: np.ndarray) -> PushedFace:
    """Pick the kind of sample and its push (see the module docstring)."""
    u = rng.random()
    attribute = list(ATTRIBUTES)[int(rng.integers(len(ATTRIBUTES)))]
    value = ATTRIBUTES[attribute][int(rng.integers(len(ATTRIBUTES[attribute])))]
    channels = table[(attribute, value)]
    if u < SWITCH_SHARE:
        chosen = [c for c in channels if rng.random() < 0.5] or [channels[int(rng.integers(
            len(channels)))]]
        push = {c: float(rng.uniform(*PUSH_RANGE)) for c in chosen}
        target = dataclasses.replace(attrs, **{attribute: value})
        return PushedFace(attrs, jitter_seed, target, push, "switch")
    if u < SWITCH_SHARE + HOLD_SHARE:
        channel = channels[int(rng.integers(len(channels)))]
        return PushedFace(attrs, jitter_seed, attrs,
                          {channel: -float(rng.uniform(*PUSH_RANGE))}, "hold")
    if u < SWITCH_SHARE + HOLD_SHARE + JITTER_SHARE:
        designated = {c for cs in table.values() for c in cs}
        pool = np.array([c for c in np.flatnonzero(editable) if c not in designated])
        chosen = rng.choice(pool, size=JITTER_CHANNELS, replace=False)
        push = {int(c): float(rng.uniform(-JITTER_SIGMA, JITTER_SIGMA)) for c in chosen}
        return PushedFace(attrs, jitter_seed, attrs, push, "jitter")
    return PushedFace(attrs, jitter_seed, attrs, {}, "plain")


def push_tensor(samples: list[PushedFace], sigma: torch.Tensor) -> torch.Tensor:
    """(B, C) flat style offsets: each sample's pushes times the channels' sigma."""
    out = torch.zeros(len(samples), sigma.numel())
    for i, sample in enumerate(samples):
        for channel, k in sample.push.items():
            out[i, channel] = k * sigma[channel]
    return out
