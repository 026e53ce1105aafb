"""Disentangled style space for the demo generator: each attribute owns its own channels.

A StyleGAN2 trained by plain conditioned regression spreads every attribute over the whole
style code, so a text edit that moves "glasses" channels moves the hair and the mouth too.
Here the generator keeps the standard architecture, but some weights are held at zero so
that information flows in separate groups:

- the mapping MLP is block-diagonal: w's units of group g read only the z entries of g
  (an attribute's one-hot, plus its colour jitter for skin, hair and background; the
  positional shift is a group of its own);
- each conv layer's affine map reads only its own group's w units, so style channel c of
  group g moves only when g's attribute changes;
- toRGB styles do not depend on w at all (their affine weight is zero), so colours must
  pass through the editable conv channels.

Units are dealt to groups in turn (unit i belongs to group i mod G) in every layer, so each
group has channels at every resolution. The zeros are ordinary weights: the exported file
is a standard generator that any StyleGAN2 loader reads.
"""

from __future__ import annotations

import numpy as np
import torch

from editor.core.generator import Generator
from editor.toyfaces import conditioning
from editor.toyfaces.attributes import ATTRIBUTES

SHIFT = "shift"
GROUPS: tuple[str, ...] = (*ATTRIBUTES, SHIFT)

# Which group each jitter entry belongs to (see attributes.Jitter.vector: dx, dy, then RGB
# offsets of skin, hair and background).
_JITTER_GROUPS = (SHIFT, SHIFT, *("skin",) * 3, *("hair_colour",) * 3, *("background",) * 3)


def z_groups() -> np.ndarray:
    """Group index of every entry of the demo generator's z."""
    out: list[int] = []
    for name, values in ATTRIBUTES.items():
        out += [GROUPS.index(name)] * len(values)
    out += [GROUPS.index(g) for g in _JITTER_GROUPS]
    assert len(out) == conditioning.Z_DIM
    return np.array(out)


def unit_groups(n: int) -> np.ndarray:
    """Group index of each of n units (w entries, hidden units or style channels)."""
    return np.arange(n) % len(GROUPS)


def _block_mask(out_groups: np.ndarray, in_groups: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(out_groups[:, None] == in_groups[None, :]).float()


def weight_masks(gen: Generator) -> dict[str, torch.Tensor]:
    """Parameter name -> 0/1 mask of the weights allowed to be non-zero, on the weight's
    device."""
    masks: dict[str, torch.Tensor] = {}
    in_groups = z_groups()
    for name, module in gen.style.named_children():
        weight = getattr(module, "weight", None)
        if weight is None:
            continue  # PixelNorm
        out_groups = unit_groups(weight.shape[0])
        masks[f"style.{name}.weight"] = _block_mask(out_groups, in_groups).to(weight.device)
        in_groups = out_groups
    w_groups = in_groups
    for spec in gen.style_specs:
        modulation = gen.style_layer(spec.name).conv.modulation
        key = f"{spec.name}.conv.modulation.weight"
        if spec.is_torgb:
            masks[key] = torch.zeros_like(modulation.weight)
        else:
            masks[key] = _block_mask(unit_groups(spec.channels), w_groups).to(
                modulation.weight.device)
    return masks


def constrain(gen: Generator) -> dict[str, torch.Tensor]:
    """Zero the disallowed weights and keep them zero under any gradient optimiser.

    The kept weights of a freshly initialised layer are scaled up by sqrt(fan-in / kept
    inputs): the layer's run-time He scale assumes every input is connected, and without
    this the signal would shrink about len(GROUPS)-fold in each masked layer."""
    params = dict(gen.named_parameters())
    masks = weight_masks(gen)
    for name, mask in masks.items():
        param = params[name]
        kept = mask.sum(1, keepdim=True)
        gain = torch.where(kept > 0, (mask.shape[1] / kept.clamp_min(1)).sqrt(), 0.0)
        with torch.no_grad():
            param.mul_(mask * gain)
        param.register_hook(lambda grad, mask=mask: grad * mask)
    return masks


def leak(gen: Generator) -> float:
    """Largest absolute weight where the masks require zero (0.0 for a constrained model)."""
    params = dict(gen.named_parameters())
    return max(float((params[name].detach() * (1 - mask)).abs().max())
               for name, mask in weight_masks(gen).items())


def channel_groups(gen: Generator) -> dict[str, np.ndarray]:
    """Style layer name -> the group name of each of its channels (non-toRGB layers)."""
    return {spec.name: np.array(GROUPS)[unit_groups(spec.channels)]
            for spec in gen.style_specs if not spec.is_torgb}


def flat_channel_groups(gen: Generator) -> np.ndarray | None:
    """The group name of every channel of the flat style code ("" for toRGB channels), or
    None when the generator's weights do not keep the groups apart (not a grouped model)."""
    if leak(gen) != 0.0:
        return None
    names = channel_groups(gen)
    return np.concatenate([np.full(spec.channels, "") if spec.is_torgb else names[spec.name]
                           for spec in gen.style_specs])
