"""Co-variation of style channels with CLIP directions, and relevance gated by it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from editor.methods.covariation import Covariation, gated_scores


def test_correlation_is_each_channels_correlation_with_the_coordinate():
    g = torch.Generator().manual_seed(0)
    n, c, d = 200, 6, 4
    emb = torch.randn(n, d, generator=g)
    styles = torch.randn(n, c, generator=g)
    styles[:, 0] = 2 * emb[:, 1] + 0.1 * styles[:, 0]  # follows dimension 1
    styles[:, 1] = -emb[:, 1] + emb[:, 2]
    styles[:, 5] = 3.0  # never varies
    cov = Covariation.from_samples(styles, emb)
    direction = torch.tensor([0.0, 1.0, 0.0, 0.0])
    corr = cov.correlation(direction)
    coordinate = (emb @ direction).numpy()
    for ch in range(5):
        expected = np.corrcoef(styles[:, ch].numpy(), coordinate)[0, 1]
        assert float(corr[ch]) == pytest.approx(expected, abs=1e-5)
    assert corr[0] > 0.99 and corr[1] < -0.5 and corr[5] == 0
    # a direction along which no sample varies correlates with nothing
    flat = Covariation.from_samples(styles, torch.cat([emb[:, :3], torch.zeros(n, 1)], 1))
    assert torch.equal(flat.correlation(torch.tensor([0.0, 0.0, 0.0, 1.0])), torch.zeros(c))


def test_samples_must_pair_up():
    with pytest.raises(ValueError, match="paired"):
        Covariation.from_samples(torch.zeros(5, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="paired"):
        Covariation.from_samples(torch.zeros(1, 3), torch.zeros(1, 2))


def test_gated_scores_keep_channels_whose_relevance_and_covariation_agree():
    r = torch.tensor([0.5, 0.5, -0.4, -0.4, 0.3])
    corr = torch.tensor([0.8, -0.8, -0.5, 0.5, 0.0])
    torch.testing.assert_close(gated_scores(r, corr),
                               torch.tensor([0.4, 0.0, -0.2, 0.0, 0.0]))


def test_the_covariation_samples_as_many_per_call_as_the_generator_allows(monkeypatch,
                                                                           tmp_path):
    # 64 images per call at any resolution: about 33 GB at 1024 px, inside a precompute
    from editor.methods import global_directions as gd
    from editor.methods import precompute as pc
    from tests.conftest import make_tiny_clip, make_tiny_generator

    gen, clip = make_tiny_generator(resolution=8, channel_max=16), make_tiny_clip()
    calls = []
    synthesize = gen.synthesize
    monkeypatch.setattr(gen, "synthesize", lambda s, **k: calls.append(1) or synthesize(s, **k))
    monkeypatch.setattr(gd, "suggested_batch_size", lambda g: 7)
    entry = pc.covariation_cache("g", "c", 20, 1.0, root=tmp_path)
    *_, cov = pc.covariation_job(gen, clip, entry, n_samples=20)
    assert len(calls) == 3 and cov.n_samples == 20  # 7 + 7 + 6
    monkeypatch.setattr(gd, "suggested_batch_size", lambda g: 20)  # the same, at any batch
    *_, again = pc.covariation_job(gen, clip, pc.covariation_cache("g", "c", 20, 1.0,
                                                                   root=tmp_path / "b"),
                                   n_samples=20)
    torch.testing.assert_close(again.cross, cov.cross, rtol=1e-4, atol=1e-6)


def test_a_second_measurement_of_the_same_covariation_is_refused_while_one_runs(tmp_path):
    # two windows (or a window and a command) both measured it and overwrote each other's
    # resume file; the pack's precompute was locked, its co-variation step was not
    import os

    from editor.methods import precompute as pc
    from tests.conftest import make_tiny_clip, make_tiny_generator

    gen, clip = make_tiny_generator(resolution=8, channel_max=16), make_tiny_clip()
    entry = pc.covariation_cache("g", "c", 20, 1.0, root=tmp_path)
    first = pc.covariation_job(gen, clip, entry, n_samples=20)
    next(first)  # at work
    with pytest.raises(pc.EntryBusy, match=rf"another co-variation measurement of this pack "
                                           rf"is running \(pid {os.getpid()}\)"):
        list(pc.covariation_job(gen, clip, entry, n_samples=20))
    *_, cov = list(first)
    assert cov.n_samples == 20
    # once it is done, a later job reads it instead of measuring it again
    calls = []
    synthesize = gen.synthesize
    gen.synthesize = lambda s, **k: calls.append(1) or synthesize(s, **k)
    *_, again = list(pc.covariation_job(gen, clip, entry, n_samples=20))
    assert calls == [] and torch.equal(again.cross, cov.cross)
