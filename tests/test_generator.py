"""The StyleGAN2 generator: architecture tables, style space, synthesis options."""

from __future__ import annotations

import pytest
import torch

from editor.core.generator import Generator, GeneratorConfig, upfirdn2d, z_from_seed
from editor.core.style_code import StyleCode, editable_mask
from tests.conftest import make_tiny_generator


def test_ffhq_1024_config_matches_published_layout():
    cfg = GeneratorConfig.rosinality(1024)
    assert cfg.n_latent == 18
    assert cfg.channels == (512, 512, 512, 512, 512, 256, 128, 64, 32)
    gen = Generator(cfg)
    specs = gen.style_specs
    # StyleSpace paper / StyleCLIP: 26 style layers, 9088 channels, 6048 without toRGB.
    assert len(specs) == 26
    assert sum(s.channels for s in specs) == 9088
    assert sum(s.channels for s in specs if not s.is_torgb) == 6048
    assert [s.name for s in specs[:5]] == ["conv1", "to_rgb1", "convs.0", "convs.1", "to_rgbs.0"]
    assert sum(p.numel() for p in gen.parameters()) == 30_370_060
    assert len(gen.state_dict()) == 171


def test_channel_multiplier_one_table():
    cfg = GeneratorConfig.rosinality(256, channel_multiplier=1)
    assert cfg.channels == (512, 512, 512, 512, 256, 128, 64)


@pytest.mark.parametrize("bad", [0, 3, 48, 100])
def test_resolution_must_be_power_of_two(bad):
    with pytest.raises(ValueError):
        GeneratorConfig(resolution=bad)


def test_styles_then_synthesize_equals_forward(tiny_generator):
    g = tiny_generator
    z = torch.randn(3, g.z_dim)
    w_plus = g.mapping(z, psi=0.7)
    assert w_plus.shape == (3, g.n_latent, g.w_dim)
    code = g.styles(w_plus)
    assert isinstance(code, StyleCode) and len(code) == len(g.style_specs)
    img = g.synthesize(code)
    assert img.shape == (3, 3, 16, 16)
    assert torch.equal(img, g(w_plus))
    # each style tensor is the affine output of the W+ row that drives it
    spec = g.style_specs[3]
    expected = g.style_layer(spec.name).conv.modulation(w_plus[:, spec.w_index])
    assert torch.allclose(code[3], expected)


def test_style_code_flat_round_trip_and_addition(tiny_generator):
    g = tiny_generator
    code = g.styles(g.mapping(torch.randn(2, g.z_dim)))
    flat = code.flat()
    assert flat.shape == (2, code.num_channels)
    back = StyleCode.from_flat(code.specs, flat)
    assert all(torch.equal(a, b) for a, b in zip(back, code, strict=True))
    delta = torch.zeros(code.num_channels)
    delta[code.offsets()[2] + 1] = 5.0
    moved = code + delta
    assert torch.equal(moved[2][:, 1], code[2][:, 1] + 5.0)
    assert torch.equal(moved[0], code[0])
    mask = editable_mask(code.specs)
    assert mask.sum() == sum(s.channels for s in code.specs if not s.is_torgb)


def test_editing_one_style_channel_changes_the_image(tiny_generator):
    g = tiny_generator
    code = g.styles(g.mapping(torch.randn(1, g.z_dim)))
    base = g.synthesize(code)
    edited = code.clone()
    edited.tensors[2] = edited.tensors[2].clone()
    edited.tensors[2][:, 0] += 10
    assert (g.synthesize(edited) - base).abs().max() > 1e-3


def test_max_res_preview_ignores_higher_layers(tiny_generator):
    g = tiny_generator
    code = g.styles(g.mapping(torch.randn(2, g.z_dim)))
    preview = g.synthesize(code, max_res=8)
    assert preview.shape == (2, 3, 8, 8)
    # layers of the 16 px block do not influence the 8 px preview ...
    late = code.clone()
    idx = [i for i, s in enumerate(code.specs) if s.resolution == 16]
    for i in idx:
        late.tensors[i] = late.tensors[i] + 3.0
    assert torch.equal(g.synthesize(late, max_res=8), preview)
    # ... and the full image is the 8 px skip image refined, not something unrelated
    full = g.synthesize(code)
    down = torch.nn.functional.avg_pool2d(full, 2)
    assert torch.nn.functional.cosine_similarity(down.flatten(1), preview.flatten(1)).min() > 0.5
    with pytest.raises(ValueError):
        g.synthesize(code, max_res=12)


def test_noise_modes(tiny_generator):
    g = tiny_generator
    code = g.styles(g.mapping(torch.randn(1, g.z_dim)))
    const1, const2 = g.synthesize(code, "const"), g.synthesize(code, "const")
    assert torch.equal(const1, const2)
    rand1, rand2 = g.synthesize(code, "random"), g.synthesize(code, "random")
    assert not torch.equal(rand1, rand2)
    none = g.synthesize(code, "none")
    assert not torch.equal(none, const1)
    with pytest.raises(ValueError):
        g.synthesize(code, "loud")


def test_truncation_and_cutoff(tiny_generator):
    g = tiny_generator
    z = torch.randn(2, g.z_dim)
    w0 = g.mapping(z, psi=0.0)
    assert torch.allclose(w0, g.w_avg.expand_as(w0), atol=1e-6)
    w1 = g.mapping(z, psi=1.0)
    w_half = g.mapping(z, psi=0.5, cutoff=2)
    assert torch.allclose(w_half[:, :2], g.w_avg + 0.5 * (w1[:, :2] - g.w_avg), atol=1e-6)
    assert torch.equal(w_half[:, 2:], w1[:, 2:])


def test_seed_gives_the_same_z_everywhere():
    assert torch.equal(z_from_seed(7, 32), z_from_seed(7, 32))
    assert not torch.equal(z_from_seed(7, 32), z_from_seed(8, 32))


def test_upfirdn2d_upsample_keeps_a_constant_image():
    from editor.core.generator import Upsample

    up = Upsample((1, 3, 3, 1))
    x = torch.ones(1, 2, 6, 6)
    y = up(x)
    assert y.shape == (1, 2, 12, 12)
    assert torch.allclose(y[:, :, 2:-2, 2:-2], torch.ones_like(y[:, :, 2:-2, 2:-2]))


def test_upfirdn2d_matches_direct_convolution():
    x = torch.randn(1, 1, 5, 5)
    k = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    # the FIR filter is applied as a true convolution (flipped kernel), as in the reference
    # op: y[i] = sum_k h[k] x[i - k], so a tap one row above the centre gives y[i] = x[i + 1]
    y = upfirdn2d(x, k, pad=(1, 1))
    assert torch.allclose(y[0, 0, :-1, :], x[0, 0, 1:, :])


def test_batch_items_are_independent(tiny_generator):
    g = tiny_generator
    z = torch.randn(3, g.z_dim)
    together = g.generate(z, psi=0.8)
    alone = torch.cat([g.generate(z[i:i + 1], psi=0.8) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_tiny_generators_of_several_sizes_build():
    for res in (8, 32, 64):
        g = make_tiny_generator(resolution=res)
        img = g.generate(torch.randn(1, g.z_dim))
        assert img.shape[-1] == res
        assert torch.isfinite(img).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_close_to_fp32(tiny_generator):
    g = tiny_generator.cuda()
    code = g.styles(g.mapping(torch.randn(2, g.z_dim, device="cuda")))
    a = g.synthesize(code)
    b = g.synthesize(code, fp16=True)
    assert (a - b).abs().max() < 0.05


def test_running_the_rest_from_an_intermediate_state_equals_full_synthesis(tiny_generator):
    g = tiny_generator
    code = g.styles(g.mapping(torch.randn(2, g.z_dim)))
    full = g.synthesize(code)
    for start in (2, 3, 4, 6):
        state = g.run_layers(code, g.initial_state(2), 0, stop=start)
        rest = g.run_layers(code, state, start)
        assert torch.allclose(rest.skip, full, atol=1e-6)


def test_z_dim_may_differ_from_w_dim(tmp_path):
    from editor.core.checkpoints import load_generator

    g = Generator(GeneratorConfig(resolution=8, style_dim=24, n_mlp=2, channel_base=128,
                                  channel_max=16, z_dim=10)).eval()
    assert g.z_dim == 10 and g.w_dim == 24
    assert g.mapping(torch.randn(2, 10)).shape == (2, g.n_latent, 24)
    path = tmp_path / "g.pt"
    torch.save({"g_ema": g.state_dict()}, path)
    assert load_generator(path).generator.z_dim == 10


def test_a_config_beyond_the_largest_resolution_is_refused_and_shapes_cost_nothing():
    from editor.core.generator import MAX_RESOLUTION, state_shapes

    with pytest.raises(ValueError, match="largest supported"):
        GeneratorConfig(resolution=MAX_RESOLUTION * 2)
    config = GeneratorConfig(resolution=64, style_dim=32, n_mlp=2, channel_max=16)
    real = Generator(config).state_dict()
    assert state_shapes(config) == {k: v.shape for k, v in real.items()}


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("clamp", [None, 0.5])
def test_the_fused_inference_path_of_a_styled_conv_matches_the_plain_one(batch, upsample,
                                                                          clamp):
    from editor.core.generator import StyledConv

    torch.manual_seed(0)
    layer = StyledConv(8, 6, 3, style_dim=16, upsample=upsample, clamp=clamp)
    with torch.no_grad():
        layer.activate.bias.normal_()
        layer.noise.weight.fill_(0.3)
    x = torch.randn(batch, 8, 8, 8)
    style = torch.randn(batch, 8) + 1.0  # the modulated input channels' scales
    size = 16 if upsample else 8
    for noise in (None, torch.randn(batch, 1, size, size)):
        with torch.enable_grad():
            plain = layer(x, style, noise)  # the autograd path: conv, noise, activation
        with torch.no_grad():
            fused = layer(x, style, noise)
        torch.testing.assert_close(fused, plain.detach(), atol=1e-5, rtol=1e-5)
