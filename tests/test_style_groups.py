"""The demo generator's grouped style space: an attribute change moves only its channels."""

from __future__ import annotations

import numpy as np
import torch

from editor.core.generator import Generator, GeneratorConfig
from editor.toyfaces import conditioning, style_groups
from editor.toyfaces.attributes import ATTRIBUTES, Attributes


def _grouped_generator() -> Generator:
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig(resolution=16, style_dim=33, n_mlp=2,
                                    channels=(44, 33, 22), z_dim=conditioning.Z_DIM))
    style_groups.constrain(gen)
    return gen


def _style_change(gen: Generator, a: Attributes, b: Attributes, jitter: int = 3):
    z = torch.from_numpy(np.stack([conditioning.encode(a, jitter), conditioning.encode(b, jitter)]))
    code = gen.styles(gen.map_z(z)[:, None].expand(-1, gen.n_latent, -1))
    groups = style_groups.channel_groups(gen)
    moved: dict[str, set[str]] = {}
    for spec, t in zip(code.specs, code.tensors, strict=True):
        # PixelNorm sums z^2 in another order when a one-hot moves: rounding-level changes
        changed = (t[1] - t[0]).abs() > 1e-5
        if spec.is_torgb:
            assert not changed.any(), "toRGB styles must not depend on w"
            continue
        moved[spec.name] = set(groups[spec.name][changed.numpy()])
    return moved


def test_each_attribute_change_moves_only_its_own_channels_even_after_training():
    gen = _grouped_generator()
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    z = conditioning.z_for_seeds(range(8))
    for _ in range(3):  # training must not grow the zeros: the gradient is masked too
        out = gen.synthesize(gen.styles(gen.map_z(z)[:, None].expand(-1, gen.n_latent, -1)))
        opt.zero_grad()
        out.square().mean().backward()
        opt.step()
    assert style_groups.leak(gen) == 0.0
    base = Attributes()
    with torch.no_grad():
        for name, values in ATTRIBUTES.items():
            other = next(v for v in values if v != getattr(base, name))
            moved = _style_change(gen, base, base.replace(**{name: other}))
            assert all(groups <= {name} for groups in moved.values()), (name, moved)
            assert sum(len(groups) for groups in moved.values()) > 0, name


def test_groups_cover_every_layer_and_the_shift_has_its_own():
    gen = _grouped_generator()
    for groups in style_groups.channel_groups(gen).values():  # every layer >= 22 channels
        assert set(groups) == set(style_groups.GROUPS)
    z_groups = style_groups.z_groups()
    assert len(z_groups) == conditioning.Z_DIM
    assert list(np.array(style_groups.GROUPS)[z_groups[-11:-9]]) == ["shift", "shift"]


def test_a_constrained_model_starts_with_a_full_size_signal():
    """Masking keeps about a tenth of each layer's inputs; the kept weights are scaled up so
    that w does not shrink layer by layer."""
    torch.manual_seed(0)
    plain = Generator(GeneratorConfig(resolution=16, style_dim=128, n_mlp=4,
                                      channels=(128, 64, 32), z_dim=conditioning.Z_DIM))
    torch.manual_seed(0)
    grouped = Generator(plain.config)
    style_groups.constrain(grouped)
    z = conditioning.z_for_seeds(range(256))
    with torch.no_grad():
        ratio = float(grouped.map_z(z).std(0).mean() / plain.map_z(z).std(0).mean())
    assert 0.3 < ratio < 3.0, ratio


def test_warm_start_keeps_the_synthesis_and_starts_styles_at_the_old_mean(tmp_path):
    from editor.core.checkpoints import save_generator
    from editor.toyfaces.train_generator import build, warm_start

    old = build(seed=1)
    path = save_generator(old, tmp_path / "old.safetensors")
    new = build(seed=2)
    warm_start(new, str(path))
    style_groups.constrain(new)
    old_params, new_params = dict(old.named_parameters()), dict(new.named_parameters())
    assert torch.equal(new_params["convs.3.conv.weight"], old_params["convs.3.conv.weight"])
    assert torch.equal(new_params["input.input"], old_params["input.input"])
    assert not torch.equal(new_params["style.1.weight"], old_params["style.1.weight"])
    z = conditioning.z_for_seeds(range(20_000_000, 20_002_048))
    with torch.no_grad():
        mean = old.styles(old.map_z(z)[:, None].expand(-1, old.n_latent, -1)).tensors[0].mean(0)
    assert torch.allclose(new.conv1.conv.modulation.bias, mean, atol=1e-5)
    assert style_groups.leak(new) == 0.0


def test_flat_channel_groups_follow_the_layers_and_only_for_grouped_models():
    gen = _grouped_generator()
    flat = style_groups.flat_channel_groups(gen)
    assert flat is not None and len(flat) == sum(s.channels for s in gen.style_specs)
    pos = 0
    per_layer = style_groups.channel_groups(gen)
    for spec in gen.style_specs:
        part = flat[pos:pos + spec.channels]
        if spec.is_torgb:
            assert set(part) == {""}
        else:
            assert list(part) == list(per_layer[spec.name])
        pos += spec.channels
    torch.manual_seed(0)
    plain = Generator(gen.config)  # cross-group weights are not zero: no groups to report
    assert style_groups.flat_channel_groups(plain) is None
