"""The demo generator's latent: a seed draws a face from the world's prior, and z encodes it.

The demo generator is conditioned: its mapping network reads z = [one-hot attributes,
jitter vector] instead of Gaussian noise. A seed is turned into z by sampling attributes
from the prior and a jitter seed, so the app uses `z_for_seed` exactly as it would use
torch.randn for a real StyleGAN2, and every sample is a valid face of the world.
"""

from __future__ import annotations

import numpy as np
import torch

from editor.toyfaces.attributes import ATTRIBUTES, Attributes, Jitter, sample_attributes

ONE_HOT_DIM = sum(len(v) for v in ATTRIBUTES.values())
JITTER_DIM = 11
Z_DIM = ONE_HOT_DIM + JITTER_DIM
SAMPLER_NAME = "toyfaces-attributes-v1"


def encode(attrs: Attributes, jitter_seed: int | None) -> np.ndarray:
    """z for one face: concatenated one-hots (in ATTRIBUTES order) + the jitter vector."""
    parts = []
    for name, values in ATTRIBUTES.items():
        one = np.zeros(len(values), np.float32)
        one[values.index(getattr(attrs, name))] = 1.0
        parts.append(one)
    parts.append(Jitter.from_seed(jitter_seed).vector())
    return np.concatenate(parts)


def decode_attributes(z: np.ndarray) -> Attributes:
    """The attributes a z asks for (argmax of each one-hot block)."""
    out, pos = {}, 0
    for name, values in ATTRIBUTES.items():
        out[name] = values[int(np.argmax(z[pos:pos + len(values)]))]
        pos += len(values)
    return Attributes(**out)


def sample_for_seed(seed: int) -> tuple[Attributes, int]:
    """The face a seed stands for: attributes from the prior and a jitter seed."""
    rng = np.random.default_rng([int(seed), 0x5EED])
    attrs = sample_attributes(rng)
    return attrs, int(rng.integers(2**31 - 1))


def z_for_seed(seed: int) -> torch.Tensor:
    attrs, jitter_seed = sample_for_seed(seed)
    return torch.from_numpy(encode(attrs, jitter_seed))[None]


def z_for_seeds(seeds) -> torch.Tensor:
    return torch.cat([z_for_seed(int(s)) for s in seeds])
