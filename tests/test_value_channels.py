"""Value channels: the training term that makes single style channels switch attribute values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from editor.core.generator import Generator, GeneratorConfig
from editor.core.style_code import editable_mask
from editor.toyfaces import conditioning, style_groups, value_channels
from editor.toyfaces.attributes import ATTRIBUTES, Attributes
from editor.toyfaces.render import render
from editor.toyfaces.train_generator import make_batch


def _grouped_generator(width: int = 66) -> Generator:
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig(resolution=16, style_dim=33, n_mlp=2,
                                    channels=(width, width, width), z_dim=conditioning.Z_DIM))
    style_groups.constrain(gen)
    return gen


def test_every_value_owns_one_channel_per_designated_layer_inside_its_group():
    gen = _grouped_generator()
    table = value_channels.value_channel_table(gen)
    assert set(table) == {(a, v) for a, values in ATTRIBUTES.items() for v in values}
    groups = style_groups.flat_channel_groups(gen)
    editable = editable_mask(gen.style_specs).numpy()
    everything = [c for channels in table.values() for c in channels]
    assert len(everything) == len(set(everything))  # no channel serves two values
    for (attribute, _), channels in table.items():
        assert len(channels) == len(value_channels.DESIGNATED_LAYERS)
        assert all(groups[c] == attribute and editable[c] for c in channels)


def test_a_layer_too_narrow_for_an_attribute_is_refused():
    with pytest.raises(ValueError, match="hair_colour"):  # 44 channels: 4 per group, 6 colours
        value_channels.value_channel_table(_grouped_generator(44))


def _draws(n: int = 400):
    gen = _grouped_generator()
    table = value_channels.value_channel_table(gen)
    editable = editable_mask(gen.style_specs).numpy()
    rng = np.random.default_rng(0)
    base = Attributes(hair_colour="red", glasses="none")
    return table, [value_channels.draw_sample(rng, base, 5, table, editable)
                   for _ in range(n)], base, editable


def test_samples_push_what_their_target_says():
    table, samples, base, editable = _draws()
    designated = {c for channels in table.values() for c in channels}
    kinds = {s.kind for s in samples}
    assert kinds == {"plain", "switch", "hold", "jitter"}
    for s in samples:
        if s.kind == "plain":
            assert s.push == {} and s.target == base
        elif s.kind == "switch":
            changed = [a for a in ATTRIBUTES if getattr(s.target, a) != getattr(base, a)]
            assert len(changed) <= 1  # the value may already be the face's
            owner = [key for key, chans in table.items() if set(s.push) <= set(chans)]
            assert len(owner) == 1
            attribute, value = owner[0]
            assert getattr(s.target, attribute) == value
            assert all(value_channels.PUSH_RANGE[0] <= k <= value_channels.PUSH_RANGE[1]
                       for k in s.push.values())
        elif s.kind == "hold":
            assert s.target == base and len(s.push) == 1
            assert next(iter(s.push)) in designated and next(iter(s.push.values())) < 0
        else:
            assert s.target == base and len(s.push) == value_channels.JITTER_CHANNELS
            assert not set(s.push) & designated and all(editable[c] for c in s.push)
            assert all(abs(k) <= value_channels.JITTER_SIGMA for k in s.push.values())


def test_push_tensor_scales_by_each_channels_sigma():
    sigma = torch.tensor([0.5, 2.0, 1.0, 3.0])
    samples = [value_channels.PushedFace(Attributes(), 0, Attributes(), {1: 3.0, 3: -1.0},
                                         "switch"),
               value_channels.PushedFace(Attributes(), 0, Attributes(), {}, "plain")]
    out = value_channels.push_tensor(samples, sigma)
    assert torch.equal(out, torch.tensor([[0.0, 6.0, 0.0, -3.0], [0.0, 0.0, 0.0, 0.0]]))


def test_the_training_batch_draws_each_samples_target_face():
    table, _, _, editable = _draws(1)

    def draw(rng, attrs, jitter_seed):
        return value_channels.draw_sample(rng, attrs, jitter_seed, table, editable)

    z, images, _, samples = make_batch(3, 12, 0, draw)
    assert any(s.target != s.attrs for s in samples)
    for i, s in enumerate(samples):
        assert conditioning.decode_attributes(z[i].numpy()) == s.attrs  # z asks for the source
        drawn = np.array(render(s.target, "normal", 64, s.jitter_seed))
        expected = torch.from_numpy(drawn).permute(2, 0, 1).float() / 127.5 - 1
        assert torch.equal(images[i], expected)
    plain = make_batch(3, 12, 0)
    assert all(s.kind == "plain" and s.target == s.attrs for s in plain[3])


def test_constraining_a_trained_model_keeps_its_weights():
    gen = _grouped_generator()
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    style_groups.constrain(gen, fresh=False)
    assert all(torch.equal(before[k], v) for k, v in gen.state_dict().items())


def test_style_sigma_measures_the_spread_of_every_channel():
    gen = _grouped_generator()
    sigma = value_channels.style_sigma(gen, n=64)
    z = conditioning.z_for_seeds(range(30_000_000, 30_000_064))
    with torch.no_grad():
        expected = gen.styles(gen.map_z(z)).flat().std(0)
    assert torch.allclose(sigma, expected)
