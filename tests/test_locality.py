"""The demo generator's channel-locality training term (editor.toyfaces.locality)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from editor.core.generator import Generator, GeneratorConfig
from editor.toyfaces import conditioning, locality, style_groups
from editor.toyfaces.attributes import ATTRIBUTES
from editor.toyfaces.render import render


def _drawn(attrs, jitter_seed: int) -> torch.Tensor:
    """The world's render of a face, (3, 64, 64) in [-1, 1]."""
    return torch.from_numpy(render(attrs, "normal", 64, jitter_seed).astype(np.float32)
                            / 127.5 - 1).permute(2, 0, 1)


def test_pairs_differ_in_one_attribute_and_the_mask_marks_unchanged_pixels():
    z_a, z_b, image_a, keep = locality.pair_batch(step=5, batch=6, seed=1)
    again = locality.pair_batch(step=5, batch=6, seed=1)
    assert all(torch.equal(x, y) for x, y in zip((z_a, z_b, image_a, keep), again, strict=True))
    jitter = slice(conditioning.ONE_HOT_DIM, None)
    for i, (a, b, jitter_seed) in enumerate(locality.sample_pairs(step=5, batch=6, seed=1)):
        assert conditioning.decode_attributes(z_a[i].numpy()) == a
        assert conditioning.decode_attributes(z_b[i].numpy()) == b
        changed = [n for n in ATTRIBUTES if getattr(a, n) != getattr(b, n)]
        assert len(changed) == 1
        assert torch.equal(z_a[i, jitter], z_b[i, jitter])
        assert torch.equal(z_a[i], torch.from_numpy(conditioning.encode(a, jitter_seed)))
        assert torch.allclose(image_a[i], _drawn(a, jitter_seed))
    assert keep.shape == (6, 1, 64, 64) and set(keep.unique().tolist()) <= {0.0, 1.0}
    assert 0.2 < float(keep.mean()) < 1.0


def test_changed_pixels_are_outside_the_mask():
    z_a, z_b, image_a, keep = locality.pair_batch(step=2, batch=4, seed=0)
    for i, (_, b, jitter_seed) in enumerate(locality.sample_pairs(step=2, batch=4, seed=0)):
        image_b = _drawn(b, jitter_seed)
        differs = (image_a[i] - image_b).abs().amax(0) > locality.DIFF_THRESHOLD
        assert differs.any()
        assert not (differs & (keep[i, 0] > 0)).any()


def test_mixing_moves_only_the_changed_attributes_channels():
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig(resolution=16, style_dim=33, n_mlp=2,
                                    channels=(44, 33, 22), z_dim=conditioning.Z_DIM))
    style_groups.constrain(gen)
    z_a, z_b, _, _ = locality.pair_batch(step=0, batch=4, seed=3)
    groups = style_groups.flat_channel_groups(gen)
    with torch.no_grad():
        s_a = gen.styles(gen.map_z(z_a)).flat()
        mixed = locality.mixed_styles(gen, z_a, z_b, torch.Generator().manual_seed(0)).flat()
    for i in range(4):
        a = conditioning.decode_attributes(z_a[i].numpy())
        b = conditioning.decode_attributes(z_b[i].numpy())
        (name,) = [n for n in ATTRIBUTES if getattr(a, n) != getattr(b, n)]
        moved = ((mixed[i] - s_a[i]).abs() > 1e-5).numpy()
        assert moved.any() and set(groups[moved]) == {name}


def test_loss_counts_only_unchanged_pixels_at_every_level():
    _, _, image_a, keep = locality.pair_batch(step=1, batch=2, seed=0)
    levels = [F.avg_pool2d(image_a, f) if f > 1 else image_a.clone() for f in (16, 4, 1)]
    loss, value = locality.locality_loss(levels, image_a, keep)
    assert float(loss) < 1e-6 and value < 1e-6
    changed = (keep[0, 0] == 0).nonzero()[0]
    inside = [t.clone() for t in levels]
    inside[2][0, :, changed[0], changed[1]] += 1.0  # a pixel A and B draw differently
    assert float(locality.locality_loss(inside, image_a, keep)[0]) < 1e-6
    kept = (keep[0, 0] == 1).nonzero()[0]
    outside = [t.clone() for t in levels]
    outside[2][0, :, kept[0], kept[1]] += 1.0  # a pixel that must stay as A draws it
    assert float(locality.locality_loss(outside, image_a, keep)[0]) > 0
