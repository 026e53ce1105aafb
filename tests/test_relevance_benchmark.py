"""benchmarks/relevance.py: its linearized approximation is the limit of the official
central differences (no timing assertions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks import relevance as bench
from editor.core.style_code import StyleCode, flat_offsets
from editor.methods import global_directions as gd
from tests.conftest import make_tiny_clip, make_tiny_generator


def test_linearized_relevance_is_the_small_step_limit_of_the_official_loop():
    gen, clip = make_tiny_generator(), make_tiny_clip()
    codes = gd.base_codes(gen, 2, seed=0, psi=0.7)
    gen.double()  # float64, so that a tiny step's difference is not rounding noise
    clip.model.double()
    for p in (*gen.parameters(), *clip.model.parameters()):
        p.requires_grad_(False)
    # Centre every channel's perturbation on the image's own value (equal for both images:
    # the official loop sets s_c to mean -/+ k std, the derivative is taken at the code).
    codes = StyleCode(codes.specs, [t[:1].expand(2, -1).double() for t in codes.tensors])
    own = codes.flat()[0]
    stats = gd.StyleStats(own.clone(), torch.full_like(own, 1.0), 2)
    total = bench.linearized_relevance(gen, clip, codes, rows=7)  # rows split the embedding
    offsets = flat_offsets(gen.style_specs)
    layers = gd.selected_layers(gen.style_specs, None)
    for layer in (layers[0], layers[-1]):
        flat = offsets[layer] + 3
        exact = gd.relevance_single_channel(gen, clip, codes, stats, flat, k_sigma=1e-2)
        cos = float(F.normalize(total[flat], dim=0).double() @ exact.double())
        assert cos > 0.9999, (layer, cos)
    # And a large step is not its own limit: the two differ somewhere, so the check bites.
    far = [gd.relevance_single_channel(gen, clip, codes, stats, offsets[i] + 3, k_sigma=50.0)
           for i in layers]
    near = [F.normalize(total[offsets[i] + 3], dim=0) for i in layers]
    assert min(float(a.double() @ b.double()) for a, b in zip(far, near, strict=True)) < 0.999
