"""Discovered directions (CLIP2StyleGAN) on tiny models: a planted direction is recovered
and labelled with the planted word, the transfers move the image along it, the result is
cached (and recomputed when damaged), cancel writes nothing, the CLI and the panel work."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import threading

import pytest
import torch
import torch.nn.functional as F

from editor.core.style_code import StyleCode
from editor.engine import discovered as dd
from editor.methods import discovery as dc
from editor.methods import global_directions as gd
from tests.conftest import make_tiny_clip, make_tiny_generator, reading_fifo


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread, as the whole suite runs after its first window (serial_ui_thread):
    with two, the kernels' rounding moved a planted near-tie (one more direction, another
    label) and the batch test failed when this file ran alone."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

PLANTED = "zebra"
WORDS = ("zebra", "giraffe", "teapot", "violin", "mountain", "bicycle", "candle", "river",
         "castle", "pencil", "tomato", "umbrella")
SIGNAL, NOISE = 3.0, 1.0  # std along the planted direction / per other dimension


class PlantedClip:
    """The tiny CLIP's text side; its image side is made up: an image's embedding is
    mostly a random vector that depends on the image, plus (red mean of the image,
    standardised) x SIGNAL along the planted word's centred text direction. Anything
    that finds and labels directions in CLIP space must find that one and call it
    zebra."""

    def __init__(self, clip, gen):
        self.clip = clip
        self.model, self.tokenizer = clip.model, clip.tokenizer
        vocab = dc.Vocabulary(tuple(dc.Word(w, (f"a photo of a {w}.",)) for w in WORDS),
                              "a photo of a {}.")
        space = dc.label_space(clip, vocab)
        self.vocab = vocab
        self.u = F.normalize(space.vectors[WORDS.index(PLANTED)], dim=0)
        self.base = F.normalize(torch.randn(clip.embed_dim,
                                            generator=torch.Generator().manual_seed(3)), dim=0)
        with torch.no_grad():
            g = torch.Generator().manual_seed(11)
            img = gen.synthesize(gen.styles(gen.map_z(torch.randn(256, gen.z_dim, generator=g))))
        red = img[:, 0].mean((1, 2))
        self.red_mean, self.red_std = float(red.mean()), float(red.std())

    def coordinate(self, images: torch.Tensor) -> torch.Tensor:
        return (images[:, 0].mean((1, 2)) - self.red_mean) / self.red_std

    def encode_images(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        out = []
        for img in images:
            # the noise depends on the image, but not on rounding in the last digits: a
            # change in how the generator rounds must not redraw it
            seed = int(round(abs(float(img.double().sum())) * 100)) % (2**31)
            noise = torch.randn(self.clip.embed_dim, generator=torch.Generator().manual_seed(seed))
            noise = noise - (noise @ self.u) * self.u
            out.append(noise * NOISE)
        e = torch.stack(out) + self.coordinate(images)[:, None] * SIGNAL * self.u + 4 * self.base
        # small scale: unit vectors stay close to linear in the parts above
        return F.normalize(e, dim=-1) if normalize else e

    def encode_text(self, prompts, normalize: bool = True):
        return self.clip.encode_text(prompts, normalize=normalize)

    def tokenize(self, prompts):
        return self.clip.tokenize(prompts)

    def text_embedding(self, text, templates=None):
        return self.clip.text_embedding(text, templates)


@pytest.fixture(scope="module")
def planted():
    gen = make_tiny_generator()
    clip = make_tiny_clip()
    return gen, PlantedClip(clip, gen)


def _setup(fake: PlantedClip, mixture: bool = True) -> dc.LabelSetup:
    tokens = dc.tokens_in_texts(fake.tokenizer, list(WORDS)) if mixture else None
    return dc.LabelSetup(fake.vocab, tokens)


CONFIG = dc.DiscoveryConfig(n_samples=300, k=4, psi=1.0, mixture_steps=150, batch_size=100,
                            split=False)


def _run(gen, fake, config=CONFIG, **kw) -> dc.Discovery:
    result = None
    for item in dc.discover(gen, fake, _setup(fake), config, **kw):
        if isinstance(item, dc.Discovery):
            result = item
        else:
            assert isinstance(item, dc.Progress) and 0 <= item.done <= item.total
    assert result is not None
    return result


@pytest.fixture(scope="module")
def discovery(planted):
    gen, fake = planted
    return _run(gen, fake)


def test_text_from_token_embeddings_matches_open_clip():
    clip = make_tiny_clip()
    ids = clip.tokenize(["a photo of a zebra.", "two teapots"])
    emb = clip.model.token_embedding(ids)
    ours = dc.encode_token_embeddings(clip.model, ids, emb)
    torch.testing.assert_close(ours, clip.model.encode_text(ids), rtol=1e-5, atol=1e-5)


def test_planted_direction_is_the_first_component_and_labelled_with_its_word(discovery,
                                                                              planted):
    _, fake = planted
    first = discovery.directions[0]
    assert abs(float(first.vector @ fake.u)) > 0.95
    assert first.label == PLANTED
    assert first.confidence > 0.8
    # turned toward its label: + is more zebra
    assert float(first.vector @ fake.u) > 0
    # the other components are not about zebras
    assert all(d.label != PLANTED or d.confidence < 0.5 for d in discovery.directions[1:])
    assert discovery.explained[0] > discovery.explained[1]


def test_token_mixture_puts_its_weight_on_the_planted_word(discovery):
    first = discovery.directions[0]
    assert first.mixture[0].text == PLANTED
    assert first.mixture[0].confidence > 2 * first.mixture[1].confidence


def test_token_mixture_is_sparse(planted):
    _, fake = planted
    setup = _setup(fake)
    space = dc.label_space(fake.clip, setup.vocabulary)
    weights, said = None, []
    for item in dc.optimise_mixture(fake.clip, setup.tokens, setup.vocabulary.template,
                                    fake.u[None], space.center, CONFIG):
        if isinstance(item, dc.Progress):
            said.append(item)
        else:
            weights = item
    assert weights is not None
    # it measures its own time left (its phase's size is a guess)
    assert said and all(p.eta_s is not None for p in said) and said[-1].eta_s == 0
    w = weights[0]
    assert int(w.argmax()) == setup.tokens.words.index(PLANTED)
    assert int((w > 0.5 * w.max()).sum()) <= 2  # a few tokens carry the mixture


def _coordinate_change(gen, fake, delta: torch.Tensor, strength: float) -> float:
    with torch.no_grad():
        w = gen.map_z(torch.randn(64, gen.z_dim, generator=torch.Generator().manual_seed(5)))
        flat = gen.styles(w).flat()
        before = gen.synthesize(StyleCode.from_flat(gen.style_specs, flat))
        after = gen.synthesize(StyleCode.from_flat(gen.style_specs, flat + strength * delta))
    return float((fake.coordinate(after) - fake.coordinate(before)).mean())


def test_w_transfer_moves_images_along_the_direction(discovery, planted):
    gen, fake = planted
    delta = discovery.directions[0].deltas["w"]
    assert delta.shape == (sum(s.channels for s in gen.style_specs),)
    # a unit is one std of the coordinate among samples: one unit should move it by a good
    # part of a std (the part of the coordinate a linear map of w explains), both ways
    up = _coordinate_change(gen, fake, delta, 1.0)
    down = _coordinate_change(gen, fake, delta, -1.0)
    assert up > 0.3 and down < -0.3


def test_w_transfer_is_the_affine_image_of_a_w_move(planted):
    gen, _ = planted
    dw = torch.randn(gen.w_dim)
    w0 = torch.randn(gen.w_dim)
    delta = dc.affine_delta(gen, dw, w0)
    with torch.no_grad():
        direct = gen.styles((w0 + 2 * dw)[None]).flat()[0] - gen.styles(w0[None]).flat()[0]
    torch.testing.assert_close(2 * delta, direct, rtol=1e-4, atol=1e-4)


def test_style_transfer_through_relevance_moves_images_along_the_direction(planted):
    gen, fake = planted
    stats = gd.compute_style_stats(gen, n_samples=500, batch=250)
    relevance = None
    for item in gd.compute_relevance(gen, fake, stats,
                                     # 8 base images: with 4 the bars held for some noise
                                     # draws only (-0.293 against -0.3 for one)
                                     gd.RelevanceConfig(n_images=8, psi=1.0, batch_size=128)):
        if isinstance(item, gd.Relevance):
            relevance = item
    result = _run(gen, fake, dc.DiscoveryConfig(n_samples=300, k=2, psi=1.0, mixture=False,
                                                batch_size=100, split=False),
                  relevance=relevance, stats=stats)
    first = result.directions[0]
    assert first.label == PLANTED
    delta = first.deltas["style"]
    assert _coordinate_change(gen, fake, delta, 3.0) > 0.3
    assert _coordinate_change(gen, fake, delta, -3.0) < -0.3
    # the focused transfer: the w delta on the channels style scores highest
    focused = first.deltas["focused"]
    moved = focused != 0
    assert 0 < int(moved.sum()) <= dc.DiscoveryConfig().focused_channels
    assert set(moved.nonzero().flatten().tolist()) <= set(relevance.channels.tolist())
    ratio = focused[moved] / first.deltas["w"][moved]
    torch.testing.assert_close(ratio, ratio[0].expand_as(ratio))  # the w proportions
    assert float(ratio[0]) > 0  # the same way as w
    assert float((focused.abs() / stats.std.clamp_min(1e-8)).max()) == pytest.approx(1.0)
    # it moves the images along the direction, further with strength, both ways (the
    # planted redness lies mostly in toRGB, which neither relevance transfer touches)
    up1, up3 = (_coordinate_change(gen, fake, focused, s) for s in (1.0, 3.0))
    assert up3 > up1 > 0.1
    assert _coordinate_change(gen, fake, focused, -3.0) < -0.1


def test_focused_delta_keeps_the_strongest_scored_channels_in_w_proportions():
    stats = gd.StyleStats(torch.zeros(6), torch.tensor([1.0, 2.0, 1.0, 0.5, 1.0, 4.0]), 100)
    relevance = gd.Relevance(torch.tensor([0, 1, 2, 3, 5]), torch.zeros(5, 3))
    w_delta = torch.tensor([0.5, -1.0, 0.2, 0.25, 9.0, 2.0])
    scores = torch.tensor([0.1, -0.4, 0.0, 0.3, 0.2])  # per relevance channel
    delta = dc.focused_delta(relevance, stats, scores, w_delta, 3)
    # channels 1, 3, 5 (scores 0.4, 0.3, 0.2); channel 4 has no relevance, 2 no score;
    # in std units they move -0.5, 0.5, 0.5, so each is scaled to one std
    torch.testing.assert_close(delta, torch.tensor([0.0, -2.0, 0.0, 0.5, 0.0, 4.0]))
    # fewer scored channels than asked for: only those move
    assert int((dc.focused_delta(relevance, stats, scores, w_delta, 10) != 0).sum()) == 4
    with pytest.raises(gd.NoChannelsError):
        dc.focused_delta(relevance, stats, torch.zeros(5), w_delta, 3)


def test_without_relevance_only_w_is_made_and_the_reason_is_kept(discovery):
    d = discovery.directions[0]
    assert set(d.deltas) == {"w"}
    assert "relevance" in d.notes["style"] and "relevance" in d.notes["focused"]
    # the default transfer (focused) is missing, so the window and the CLI show w
    assert dc.DEFAULT_METHOD == "focused"
    assert dd.available_method(discovery) == "w"
    assert dd.to_entries(discovery, "focused") == dd.to_entries(discovery, "style") == []


def test_available_method_prefers_the_default_transfer(discovery):
    both = dataclasses.replace(discovery, directions=[
        dataclasses.replace(d, deltas={**d.deltas, "style": d.deltas["w"],
                                       "focused": d.deltas["w"]})
        for d in discovery.directions])
    assert dd.available_method(both) == "focused"
    assert dd.available_method(dataclasses.replace(discovery, directions=[])) is None


def test_mixed_direction_is_split_into_its_two_concepts():
    d = 6
    cov = torch.diag(torch.tensor([4.0, 0.1, 0.1, 0.1, 0.1, 0.1]))
    cov[1, 1] = 3.9  # two concepts along e0 and e1 of nearly equal variance ...
    rot = torch.eye(d)
    c, s = 2**-0.5, 2**-0.5
    rot[:2, :2] = torch.tensor([[c, -s], [s, c]])
    texts = torch.eye(d)[:3]  # word i reads dimension i
    words = [dc.Word("alpha", ("alpha",), "a"), dc.Word("beta", ("beta",), "b"),
             dc.Word("gamma", ("gamma",), "c")]
    space = dc.LabelSpace(words, texts, torch.zeros(d))
    # ... whose principal component is their 45-degree mixture
    pca_ = dc.Pca(torch.zeros(d), (rot @ torch.eye(d))[:, :1].T.contiguous(),
                  torch.tensor([0.5]), cov)
    out = dc.split_directions(pca_, space, dc.DiscoveryConfig())
    assert len(out) == 2 and all(split for _, _, split in out)
    got = torch.stack([v for v, _, _ in out]).abs()
    torch.testing.assert_close(got[:, :2], torch.eye(2), atol=1e-4, rtol=0)
    one_concept = dc.split_directions(pca_, space, dc.DiscoveryConfig(split=False))
    assert len(one_concept) == 1


def test_a_concept_that_still_reads_on_a_split_direction_is_projected_out_too():
    # alpha and beta mix in the principal component; gamma's reading leans on beta's
    # dimension (as the demo CLIP's "beard" leans on hair colour), so beta's direction
    # after the first split still moves gamma unless gamma is taken out as well.
    d = 6
    cov = torch.diag(torch.tensor([4.0, 3.9, 1.0, 0.1, 0.1, 0.1]))
    texts = torch.eye(d)[:3]
    texts[2] = F.normalize(torch.tensor([0.0, 0.6, 1.0, 0.0, 0.0, 0.0]), dim=0)
    words = [dc.Word("alpha", ("alpha",), "a"), dc.Word("beta", ("beta",), "b"),
             dc.Word("gamma", ("gamma",), "c")]
    space = dc.LabelSpace(words, texts, torch.zeros(d))
    config = dc.DiscoveryConfig()

    def reading(direction: torch.Tensor) -> torch.Tensor:
        return dc.correlations(cov, direction[None], texts)[0]

    once = dc.concept_direction(cov, space, 1, [0], config, rounds=0)
    assert reading(once)[2] > max(config.split_min, config.split_ratio * reading(once)[1])
    atomic = dc.concept_direction(cov, space, 1, [0], config)
    r = reading(atomic)
    assert r[1] > 0.5 and abs(r[0]) < 1e-4 and abs(r[2]) < 1e-4
    # with splitting off, the direction is beta's signature without alpha's only
    torch.testing.assert_close(dc.concept_direction(cov, space, 1, [0],
                                                    dc.DiscoveryConfig(split=False)), once)


def test_style_transfer_keeps_channels_that_both_move_clip_and_vary_with_the_direction():
    # flat code: channel 0 is toRGB-like (not in the relevance); 1..5 are scored
    channels = torch.tensor([1, 2, 3, 4, 5])
    direction = torch.tensor([1.0, 0.0])
    vectors = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [-0.6, 0.4], [0.1, 0.9]])
    relevance = gd.Relevance(channels, F.normalize(vectors, dim=1))
    std = torch.tensor([1.0, 2.0, 1.0, 0.5, 1.0, 1.0])
    stats = gd.StyleStats(torch.zeros(6), std, 100)
    # natural co-variation (w transfer's delta): channel 1 does not vary with the direction,
    # channel 2 varies against it, 3 and 4 with it (4 against its push), 5 weakly
    w_delta = torch.tensor([0.3, 0.0, -1.0, 0.5, -0.2, 0.1])
    edit = dc.style_direction(relevance, stats,
                              dc.transfer_scores(relevance, stats, direction, w_delta),
                              min_channels=2)
    r = gd.channel_scores(relevance, direction)
    corr = w_delta[channels] / std[channels]
    assert r[0] > r[2] and r[1] > r[2]  # relevance alone would rank 1 and 2 above 3 ...
    # ... but 1 does not vary and 2 varies the other way: 3 (r * corr largest) and 4 stay
    assert set(torch.nonzero(edit.delta).flatten().tolist()) == {3, 4}
    assert edit.n_channels == 2
    scores = r * corr.abs()
    torch.testing.assert_close(edit.delta[3], std[3])  # the top channel moves one std
    torch.testing.assert_close(edit.delta[4], scores[3] / scores[2] * std[4])
    nothing = dc.transfer_scores(relevance, stats, direction, torch.zeros(6))
    with pytest.raises(gd.NoChannelsError):  # nothing agrees: a clear error, no NaN
        dc.style_direction(relevance, stats, nothing, 2)
    with pytest.raises(gd.NoChannelsError):
        dc.focused_delta(relevance, stats, nothing, torch.zeros(6), 2)
    # the focused transfer picks the same two channels and moves them as w_delta does,
    # channel 3 (0.5 of a std 0.5) by one std
    focused = dc.focused_delta(relevance, stats,
                               dc.transfer_scores(relevance, stats, direction, w_delta),
                               w_delta, 2)
    torch.testing.assert_close(focused, torch.tensor([0.0, 0.0, 0.0, 0.5, -0.2, 0.0]))


# --------------------------------------------------------------------------- cache, cancel


def _entry(tmp_path, config=CONFIG):
    return dc.TensorCache(dc.KIND, {"test": json.dumps(config.to_dict())}, dc.VERSION,
                          tmp_path / "cache")


def _run_cached(gen, fake, entry, config=CONFIG, cancel=None) -> dc.Discovery:
    result = None
    for item in dc.run_discovery(gen, fake, _setup(fake), entry, config, cancel=cancel):
        if isinstance(item, dc.Discovery):
            result = item
    assert result is not None
    return result


def test_second_run_loads_the_cache_and_a_damaged_entry_is_recomputed(planted, tmp_path):
    gen, fake = planted
    config = dc.DiscoveryConfig(n_samples=120, k=3, psi=1.0, mixture_steps=20, batch_size=60)
    entry = _entry(tmp_path, config)
    first = _run_cached(gen, fake, entry, config)
    assert not first.from_cache and entry.path.exists()
    second = _run_cached(gen, fake, entry, config)
    assert second.from_cache
    assert [d.label for d in second.directions] == [d.label for d in first.directions]
    for a, b in zip(first.directions, second.directions, strict=True):
        torch.testing.assert_close(a.deltas["w"], b.deltas["w"])
        torch.testing.assert_close(a.vector, b.vector)
    data = bytearray(entry.path.read_bytes())
    data[-20:] = bytes(20)  # damage the tensor bytes: the checksum no longer matches
    entry.path.write_bytes(bytes(data))
    assert dc.load_discovery(entry) is None
    third = _run_cached(gen, fake, entry, config)
    assert not third.from_cache
    assert dc.load_discovery(entry) is not None


def test_a_cached_discovery_carries_no_cache_checksums(planted, tmp_path):
    # `atelier discover --json` wrote the cache file's sha256 and info_sha256 into "info"
    # when the result came from the cache, and not when it was just made
    gen, fake = planted
    config = dc.DiscoveryConfig(n_samples=120, k=3, psi=1.0, mixture_steps=20, batch_size=60)
    entry = _entry(tmp_path, config)
    first = _run_cached(gen, fake, entry, config)
    second = _run_cached(gen, fake, entry, config)
    assert second.from_cache
    assert second.to_json()["info"] == first.to_json()["info"]


@pytest.mark.parametrize("change", ["label is a number", "confidence inf", "notes list",
                                    "direction dropped", "direction not a dict",
                                    "variance NaN", "variance negative", "std NaN",
                                    "std text"])
def test_a_cached_discovery_with_a_damaged_header_counts_as_absent(planted, tmp_path, change):
    """Entries written before the info checksum: a label that is not text (the UI shows
    it), a number that is not finite, a direction missing from the header (the file holds
    more) are refused like damaged tensors, not raised on or shown."""
    gen, fake = planted
    config = dc.DiscoveryConfig(n_samples=120, k=3, psi=1.0, mixture_steps=20, batch_size=60)
    entry = _entry(tmp_path, config)
    _run_cached(gen, fake, entry, config)
    tensors, info = entry.load()
    info.pop("info_sha256")
    first = info["directions"][0]
    if change == "label is a number":
        first["labels"][0][0] = 5
    elif change == "confidence inf":
        first["labels"][0][1] = float("inf")
    elif change == "notes list":
        first["notes"] = [1]
    elif change == "direction dropped":
        info["directions"] = info["directions"][1:]
    elif change.startswith("variance"):
        first["variance"] = float("nan") if change.endswith("NaN") else -0.5
    elif change.startswith("std"):
        first["coordinate_std"] = float("nan") if change.endswith("NaN") else "1.0"
    else:
        info["directions"][0] = [first]
    entry.save(tensors, info)
    assert dc.load_discovery(entry) is None


def test_a_discovery_that_cannot_be_written_is_still_returned(planted, tmp_path,
                                                              monkeypatch):
    """Before, a full disk (or a read-only cache) raised from the save and the finished
    result was thrown away; now it comes with the reason in save_error."""
    import contextlib
    import errno

    import editor.core.cache as cache

    @contextlib.contextmanager
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
        yield

    writable = cache.atomic_path
    monkeypatch.setattr(cache, "atomic_path", full)
    gen, fake = planted
    config = dc.DiscoveryConfig(n_samples=120, k=3, psi=1.0, mixture_steps=20, batch_size=60)
    entry = _entry(tmp_path, config)
    result = _run_cached(gen, fake, entry, config)
    assert result.directions and not result.from_cache and not entry.path.exists()
    assert "No space left on device" in result.save_error
    monkeypatch.setattr(cache, "atomic_path", writable)
    assert _run_cached(gen, fake, entry, config).save_error is None  # saved this time


def test_discovery_progress_is_one_monotonic_bar_with_the_step_and_time_left(planted):
    """Before, each phase counted from 0 again (sampling 300/300, then labelling 10/150)
    and no time left was given; now it is the whole job's fraction."""
    gen, fake = planted
    config = dc.DiscoveryConfig(n_samples=120, k=3, psi=1.0, mixture_steps=20, batch_size=30)
    progress = [p for p in dc.discover(gen, fake, _setup(fake), config)
                if isinstance(p, dc.Progress)]
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    steps = [p.message.split(":")[0] for p in progress]
    # sampling, the token mixture, ranking its tokens (none here beyond the vocabulary's
    # words, so it reports nothing), the transfer
    assert steps[0] == "step 1 of 4" and steps[-1] == "step 4 of 4"
    assert "step 2 of 4" in steps
    sampling = [p for p in progress if p.message.startswith("step 1 of 4")]
    assert sampling[-1].fraction < 1.0 and sampling[-1].eta_s is not None
    assert sampling[-1].eta_s > 0  # the labelling and the transfer are still to come


@pytest.mark.parametrize("stop_after", [1, 3, 9])
def test_a_cancelled_discovery_keeps_its_samples_and_resumes_from_them(planted, tmp_path,
                                                                       stop_after):
    # Its sampling takes an hour or more at 1024 px on a CPU: a cancel, Ctrl-C or closed
    # window threw it away, and so did a stop in the labelling after it.
    gen, fake = planted
    config = dc.DiscoveryConfig(n_samples=120, k=3, psi=1.0, mixture_steps=30, batch_size=20)
    entry = _entry(tmp_path, config)
    samples = dc.samples_cache("g", "c", config, "gaussian-z", tmp_path / "cache")
    cancel = threading.Event()
    seen = 0
    with pytest.raises(dc.Cancelled):
        for item in dc.run_discovery(gen, fake, _setup(fake), entry, config, cancel=cancel,
                                     samples_entry=samples):
            if isinstance(item, dc.Progress):
                seen += 1
                if seen >= stop_after:
                    cancel.set()
    # no result; the samples, whole once the sampling (six batches) ended
    assert not entry.path.exists()
    assert (samples.path if stop_after > 6 else samples.partial_path).exists()
    *progress, resumed = dc.run_discovery(gen, fake, _setup(fake), entry, config,
                                          samples_entry=samples)
    sampled = [p for p in progress if p.message.startswith("step 1 of")]
    drawn = [int(p.message.split("sampling: ")[1].split("/")[0]) for p in sampled]
    # only the rest, or none at all
    assert drawn == ([120] if stop_after > 6 else [20 * n for n in range(stop_after + 1, 7)])
    assert ("kept from an earlier run" in sampled[-1].message) == (stop_after > 6)
    assert not samples.partial_path.exists() and samples.path.exists()  # kept whole
    fresh = dc.run_discovery(gen, fake, _setup(fake), _entry(tmp_path / "b", config), config)
    *_, whole = fresh
    for a, b in zip(resumed.directions, whole.directions, strict=True):
        assert torch.allclose(a.vector, b.vector, atol=1e-5)
        assert a.labels[0].text == b.labels[0].text


def test_discovering_again_with_other_words_or_new_relevance_reuses_the_samples(planted,
                                                                              tmp_path):
    # The samples lived in the discovery's own entry, whose key holds the labels and the
    # relevance: "Discover again" after a precompute, or with a word added, sampled
    # every image again (an hour or more at 1024 px on a CPU).
    gen, fake = planted
    config = dc.DiscoveryConfig(n_samples=120, k=3, psi=1.0, mixture=False, batch_size=40)
    samples = dc.samples_cache("g", "c", config, "gaussian-z", tmp_path / "cache")
    setup = _setup(fake, mixture=False)
    first = list(dc.run_discovery(gen, fake, setup, _entry(tmp_path, config), config,
                                  samples_entry=samples))
    assert any("sampling: 40/120" in p.message for p in first[:-1])

    calls = []
    real_encode = fake.encode_images
    fake.encode_images = lambda x, **kw: (calls.append(len(x)), real_encode(x, **kw))[1]
    more_words = dc.LabelSetup(setup.vocabulary.extended(["freckles"]), None)
    entry = dc.TensorCache(dc.KIND, {"test": "other words"}, dc.VERSION, tmp_path / "cache")
    *progress, again = dc.run_discovery(gen, fake, more_words, entry, config,
                                        samples_entry=samples)
    assert calls == []  # no image was drawn or encoded
    assert any("kept from an earlier run" in p.message for p in progress)
    assert again.explained == first[-1].explained  # the same images' principal components
    # other samples (another count) are drawn, not taken from these
    other = dataclasses.replace(config, n_samples=80)
    list(dc.run_discovery(gen, fake, setup, _entry(tmp_path / "c", other), other,
                          samples_entry=dc.samples_cache("g", "c", other, "gaussian-z",
                                                         tmp_path / "cache")))
    assert sum(calls) == 80


def test_samples_an_older_version_kept_in_the_discovery_entry_are_resumed(planted,
                                                                          tmp_path):
    # Before the samples had an entry of their own, a stopped discovery kept them in its
    # own entry's partial; after the upgrade the sampling started again from nothing.
    from editor.methods import precompute

    gen, fake = planted
    config = dc.DiscoveryConfig(n_samples=120, k=3, psi=1.0, mixture=False, batch_size=20)
    entry = _entry(tmp_path, config)
    older = precompute.resumable_sampling(  # what the older version ran, into `entry`
        gen, fake, config.n_samples, dc.sample_seed_base(config), config.psi, None, entry,
        config.batch_size, what="discovery sampling")
    for _ in range(3):
        next(older)
    older.close()  # stopped: 60 images kept in the discovery entry's partial
    assert entry.partial_path.exists()
    samples = dc.samples_cache("g", "c", config, "gaussian-z", tmp_path / "cache")
    *progress, _ = dc.run_discovery(gen, fake, _setup(fake, mixture=False), entry, config,
                                    samples_entry=samples)
    drawn = [int(p.message.split("sampling: ")[1].split("/")[0]) for p in progress
             if "sampling: " in p.message]
    assert drawn == [80, 100, 120]  # only the rest
    assert samples.path.exists() and not samples.partial_path.exists()


def _with_result(job):
    """A job's items, then what it returned."""
    result = yield from job
    yield result


def test_finished_samples_are_written_once_as_the_whole_entry(planted, tmp_path,
                                                               monkeypatch):
    # They were written as a partial, then again as the entry itself (twice the disk
    # traffic of the hour-long sampling's result).
    from editor.methods import precompute

    gen, fake = planted
    config = dc.DiscoveryConfig(n_samples=60, k=3, psi=1.0, mixture=False, batch_size=20)
    writes = []
    for name in ("save", "save_partial"):
        real = getattr(dc.TensorCache, name)
        monkeypatch.setattr(dc.TensorCache, name,
                            lambda self, *a, _real=real, _name=name, **kw:
                            (writes.append(_name), _real(self, *a, **kw))[1])
    samples = dc.samples_cache("g", "c", config, "gaussian-z", tmp_path / "cache")
    job = precompute.stored_sampling(gen, fake, 60, dc.sample_seed_base(config), 1.0, None,
                                     samples, 20)
    next(job)
    job.close()  # stopped after the first batch: a partial to resume from
    assert writes == ["save_partial"] and samples.partial_path.exists()
    writes.clear()
    got = dc.job_result(_with_result(precompute.stored_sampling(
        gen, fake, 60, dc.sample_seed_base(config), 1.0, None, samples, 20)))
    assert writes == ["save"] and len(got.w) == 60
    assert samples.path.exists() and not samples.partial_path.exists()


def test_a_second_sampling_of_the_same_images_is_refused_while_one_runs(planted, tmp_path):
    # two discoveries of one pack (the window and `atelier discover`, two commands) both
    # drew every image and overwrote each other's resume file; the precompute and the
    # co-variation were locked, discovery's sampling was not
    from editor.core.cache import EntryBusy

    gen, fake = planted
    config = dc.DiscoveryConfig(n_samples=60, k=3, psi=1.0, mixture=False, batch_size=20)
    samples = dc.samples_cache("g", "c", config, "gaussian-z", tmp_path / "cache")
    first = dc.run_discovery(gen, fake, _setup(fake, mixture=False), _entry(tmp_path, config),
                             config, samples_entry=samples)
    next(first)  # at work
    calls = []
    real_encode = fake.encode_images
    fake.encode_images = lambda x, **kw: (calls.append(len(x)), real_encode(x, **kw))[1]
    try:
        with pytest.raises(EntryBusy, match=rf"another discovery sampling of this pack "
                                               rf"is running \(pid {os.getpid()}\)"):
            list(dc.run_discovery(gen, fake, _setup(fake, mixture=False),
                                  _entry(tmp_path / "b", config), config,
                                  samples_entry=samples))
        assert calls == []  # refused before any image was drawn
        *_, found = first
        assert samples.path.exists() and not samples.lock_path.exists()
        # once they are drawn, a later discovery takes them instead of drawing them again
        calls.clear()
        *progress, _ = dc.run_discovery(gen, fake, _setup(fake, mixture=False),
                                        _entry(tmp_path / "c", config), config,
                                        samples_entry=samples)
    finally:
        fake.encode_images = real_encode
    assert calls == [] and any("kept from an earlier run" in p.message for p in progress)


def test_vocabulary_is_user_extendable(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# my words\nporcelain\n\nsmiling cat\n", encoding="utf-8")
    vocab = dc.general_vocabulary(dc.read_vocab_file(path))
    labels = [w.label for w in vocab.words]
    assert labels[-2:] == ["porcelain", "smiling cat"]
    assert vocab.words[-1].prompts == ("a photo of smiling cat.",)
    assert vocab.identity() != dc.general_vocabulary().identity()


def test_whole_word_tokens_are_alphabetic_words():
    tokens = dc.whole_word_tokens(make_tiny_clip().tokenizer)
    assert len(tokens.ids) > 10_000
    assert all(w.isalpha() and len(w) >= 3 for w in tokens.words)
    assert "zebra" in tokens.words


def test_whole_word_tokens_leave_out_profanity_and_slurs():
    """A real CLIP's vocabulary holds slurs; the token mixture must never offer one as a
    label (the words are taken from the block list, not spelled out here)."""
    tokenizer = make_tiny_clip().tokenizer
    everything = set(dc.whole_word_tokens(tokenizer, blocked=frozenset()).words)
    offered = set(dc.whole_word_tokens(tokenizer).words)
    blocked = dc.blocked_label_words()
    in_clip = blocked & everything
    assert len(in_clip) >= 50  # the list does reach CLIP's vocabulary (143 words today)
    assert not in_clip & offered
    plurals = {w for w in everything if w.endswith("s") and w[:-1] in blocked} - blocked
    assert plurals and not plurals & offered  # "...s" of a blocked word goes too
    assert "zebra" in offered and "smiling" in offered and "glasses" in offered
    assert len(everything) - len(offered) < 0.02 * len(everything)


def test_whole_word_tokens_are_decoded_words_not_byte_level_text():
    """CLIP's byte-level BPE spells each byte of a token's UTF-8 as a stand-in character,
    many of them letters ('ð', 'Ł'): the entries for an emoji or a dash must not pass as
    words, and a word's label is its decoded text, which a prompt types back in as the
    same token."""
    from open_clip.tokenizer import SimpleTokenizer

    tokenizer = make_tiny_clip().tokenizer
    assert isinstance(tokenizer, SimpleTokenizer)
    tokens = dc.whole_word_tokens(tokenizer)
    by_id = dict(zip(tokens.ids, tokens.words, strict=True))
    enc = tokenizer.encoder
    for junk in ("\u2013", "\U0001F602", "\U0001F3C6"):  # en dash, 😂, 🏆: one token each
        (tid,) = tokenizer.encode(junk)
        assert tid not in by_id, junk
    cafe = enc["caf\u00c3\u00a9</w>"]  # 'café' as the byte-level BPE spells it
    assert by_id[cafe] == "caf\u00e9"
    assert by_id[enc["zebra</w>"]] == "zebra"
    assert all(w.isalpha() and len(w) >= 3 for w in tokens.words)
    accented = [(i, w) for i, w in by_id.items() if not w.isascii()]
    assert 10 <= len(accented) < 100  # a few accented words, not hundreds of bytes
    for i, w in accented:  # each types back into a prompt as its own single token
        assert tokenizer.encode(w) == [i], w
    # other scripts are left out: the block list is of English words
    (photo,) = tokenizer.encode("\u0444\u043e\u0442\u043e")  # 'фото': one whole token
    assert photo not in by_id


def test_whole_word_tokens_of_a_tokenizer_without_byte_decoder():
    """A BPE table spelled as plain text (no byte decoder) is read as it is."""
    from types import SimpleNamespace

    enc = {"zebra</w>": 5, "caf\u00e9</w>": 7, "\u2013</w>": 9, "ox</w>": 11, "zeb": 13}
    tokens = dc.whole_word_tokens(SimpleNamespace(encoder=enc), blocked=frozenset())
    assert tokens == dc.TokenSet((5, 7), ("zebra", "caf\u00e9"))


def test_is_blocked_takes_plurals_and_capitals():
    blocked = frozenset({"cat", "box"})
    assert dc.is_blocked("Cat", blocked) and dc.is_blocked("cats", blocked)
    assert dc.is_blocked("boxes", blocked)
    assert not dc.is_blocked("catalogue", blocked) and not dc.is_blocked("dog", blocked)


# --------------------------------------------------------------------------- engine, demo


def test_demo_labels_name_attribute_values():

    assert dd.demo_meaning("sunglasses") == ("glasses", "sunglasses")
    assert dd.demo_meaning("ginger") == ("hair_colour", "red")
    assert dd.demo_meaning("red hair") == ("hair_colour", "red")
    assert dd.demo_meaning("bald") == ("hair_length", "bald")
    assert dd.demo_meaning("hair") is None
    vocab = dd.demo_vocabulary()
    assert {w.concept for w in vocab.words} >= {"glasses", "mouth", "background"}
    assert len({w.label for w in vocab.words}) == len(vocab.words)


def test_demo_pack_ships_its_discovery():
    from editor.engine.models import DEMO_GENERATOR
    from editor.engine.packs import demo_clip_source, open_pack

    pack = open_pack(DEMO_GENERATOR, demo_clip_source())
    entries = dd.discovered_entries(pack)
    assert entries is not None and len(entries) >= 10
    n = sum(s.channels for s in pack.model.generator.style_specs)
    assert all(len(e.delta) == n for e in entries)
    named = [e for e in entries[:10] if dd.demo_meaning(e.label) is not None]
    assert len(named) >= 6  # the labelling goal, as shipped
    assert len(dd.discovered_entries(pack, "style") or []) == len(entries)
    assert {e.method for e in entries} == {"focused"}


def test_entry_edit_is_a_delta_edit_that_compose_applies(tiny_generator):
    from editor.engine.compose import EditingContext
    from editor.engine.session import Session

    n = sum(s.channels for s in tiny_generator.style_specs)
    delta = torch.linspace(-1, 1, n)
    entry = dd.DirectionEntry("k", "smile", 0.8, tuple(delta.tolist()), "frown")
    edit = dd.entry_edit(entry, 2.5)
    assert edit.kind == "delta" and edit.strength == 2.5
    assert dd.entry_edit(entry).strength == entry.default_strength == dc.DEFAULT_STRENGTH
    style_entry = dataclasses.replace(entry, method="style")
    assert dd.entry_edit(style_entry).strength == dc.DEFAULT_STRENGTHS["style"] != 1.5
    assert edit.params["source"] == "discovery" and edit.params["label"] == "smile"
    assert edit.title == "frown ↔ smile"
    # a name cleared in Rename goes back to this one ("delta" was shown)
    assert dataclasses.replace(edit, name="").title == "frown ↔ smile"
    assert dataclasses.replace(dd.entry_edit(dataclasses.replace(entry, negative_label="")),
                               name="").title == "smile"
    ctx = EditingContext(tiny_generator)
    session = Session()
    plain = ctx.compose(session).flat()
    edited = ctx.compose(session.add_edit(edit)).flat()
    torch.testing.assert_close(edited - plain, 2.5 * delta[None], rtol=1e-5, atol=1e-5)


def test_a_discovered_edit_made_for_another_generator_is_refused(tiny_generator):
    # Same architecture, other weights: the delta's channels mean other things there, and
    # it used to be applied silently after the user opened another generator.
    from editor.engine.compose import EditError, EditingContext
    from editor.engine.session import Session

    n = sum(s.channels for s in tiny_generator.style_specs)
    entry = dd.DirectionEntry("k", "smile", 0.8, tuple(torch.linspace(-1, 1, n).tolist()))
    session = Session().add_edit(dd.entry_edit(entry, 2.0, generator_hash="gen-a"))
    assert session.edits[0].params["generator"] == "gen-a"
    plain = EditingContext(tiny_generator, generator_hash="gen-a").compose(Session()).flat()
    same = EditingContext(tiny_generator, generator_hash="gen-a")
    assert not torch.equal(same.compose(session).flat(), plain)
    other, statuses = EditingContext(tiny_generator, generator_hash="gen-b"), {}
    assert torch.equal(other.compose(session, statuses).flat(), plain)
    assert "made for another generator" in statuses[session.edits[0].id].error
    with pytest.raises(EditError, match="made for another generator"):
        # an export's own context refuses it too (it used to apply it)
        EditingContext(tiny_generator, generator_hash="gen-b").compose(session)
    # an edit that names no generator (older recipes) is applied as before
    legacy = Session().add_edit(dd.entry_edit(entry, 2.0))
    assert "generator" not in legacy.edits[0].params
    assert not torch.equal(other.compose(legacy).flat(), plain)


def test_a_discovery_made_before_the_packs_directions_is_still_found(tmp_path, monkeypatch):
    # Running the precompute after a discovery changed the pack's data key, and the
    # finished discovery was never found again.
    from editor.core.checkpoints import save_generator
    from editor.engine.packs import ClipSource, open_pack
    from editor.methods.global_directions import RelevanceConfig
    from tests.conftest import make_tiny_generator

    gen = save_generator(make_tiny_generator(resolution=8, channel_max=16),
                         tmp_path / "g.safetensors")
    clip = make_tiny_clip().save(tmp_path / "clip.safetensors")
    pack = open_pack(gen, ClipSource(path=str(clip)),
                     relevance_config=RelevanceConfig(n_images=2, psi=1.0), stats_samples=200)
    config = dc.DiscoveryConfig(n_samples=120, k=4, mixture=False)
    found = None
    for item in dd.discovery_job(pack, config=config):
        found = item
    assert isinstance(found, dc.Discovery) and not pack.has_directions
    for _ in pack.precompute():
        pass
    assert pack.has_directions
    again = dd.cached_discovery(pack, config=config)
    assert again is not None and len(again.directions) == len(found.directions)
    assert dd.available_method(again) == "w"


def test_to_entries_picks_the_transfer(discovery):

    entries = dd.to_entries(discovery, "w")
    assert len(entries) == len(discovery.directions)
    assert entries[0].label == PLANTED and entries[0].confidence > 0.8
    assert dd.to_entries(discovery, "style") == []
    with pytest.raises(ValueError):
        dd.to_entries(discovery, "z")


# --------------------------------------------------------------------------- CLI, panel


def test_cli_discover_prints_the_table_and_writes_json(tmp_path, capsys):
    from editor.cli import main
    from editor.core.checkpoints import save_generator

    gen = save_generator(make_tiny_generator(resolution=8, channel_max=16),
                         tmp_path / "g.safetensors")
    clip = make_tiny_clip().save(tmp_path / "clip.safetensors")
    out = tmp_path / "dirs.json"
    code = main(["discover", "--generator", str(gen), "--clip-checkpoint", str(clip),
                 "--n-samples", "40", "--k", "3", "--no-mixture", "--words", "zebra,teapot",
                 "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "directions" in printed and "conf" in printed
    from editor.cli import discover as cli_discover
    assert cli_discover.METHODS == dc.METHODS  # --method offers every transfer
    data = json.loads(out.read_text())
    assert data["format"] == "latent-atelier-discovery"
    assert 1 <= len(data["directions"]) <= 6
    first = data["directions"][0]
    assert first["labels"] and 0 <= first["confidence"] <= 1
    assert "w" in first["deltas"] and len(first["deltas"]["w"]) > 0
    again = main(["discover", "--generator", str(gen), "--clip-checkpoint", str(clip),
                  "--n-samples", "40", "--k", "3", "--no-mixture", "--words", "zebra,teapot"])
    assert again == 0 and "from the cache" in capsys.readouterr().out
    # the JSON file is the user's: replaced only when asked (it used to be, silently)
    written = out.read_bytes()
    rerun = ["discover", "--generator", str(gen), "--clip-checkpoint", str(clip),
             "--n-samples", "40", "--k", "3", "--no-mixture", "--json", str(out)]
    assert main(rerun) == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == written
    assert main([*rerun, "--overwrite"]) == 0
    assert json.loads(out.read_text())["format"] == "latent-atelier-discovery"


def test_cli_discover_interrupt_exits_130(tmp_path, capsys, monkeypatch):
    from editor.cli import main
    from editor.core.checkpoints import save_generator

    gen = save_generator(make_tiny_generator(resolution=8, channel_max=16),
                         tmp_path / "g.safetensors")
    clip = make_tiny_clip().save(tmp_path / "clip.safetensors")

    def interrupted(*a, **k):
        yield dc.Progress(0, 1, "sampling")
        raise KeyboardInterrupt

    real_job = dd.discovery_job
    monkeypatch.setattr(dd, "discovery_job", interrupted)
    argv = ["discover", "--generator", str(gen), "--clip-checkpoint", str(clip),
            "--n-samples", "40", "--batch-size", "8", "--k", "3"]
    assert main(argv) == 130
    # nothing drawn yet: nothing kept, and it says only that
    assert capsys.readouterr().err.endswith("interrupted; no directions were written.\n")

    def interrupted_while_sampling(*a, **k):
        for i, item in enumerate(real_job(*a, **k)):
            yield item
            if i == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(dd, "discovery_job", interrupted_while_sampling)
    assert main(argv) == 130
    assert "no directions were written (the images sampled so far are kept" in \
        capsys.readouterr().err


def test_panel_adds_an_entry_at_its_slider_strength(qtbot):
    from editor.engine.discovered import DEFAULT_STRENGTH, DirectionEntry
    from editor.ui.directions_panel import HOW_TO, DirectionsPanel

    panel = DirectionsPanel()
    qtbot.addWidget(panel)
    assert panel.info.text() == HOW_TO
    a = DirectionEntry("a", "smile", 0.9, (0.1, 0.2), "frown", (("smile", 0.9),))
    b = DirectionEntry("b", "sunglasses", 0.7, (0.3, 0.4))
    c = DirectionEntry("c", "beard", 0.6, (0.5, 0.6), method="style")
    panel.set_directions([a, b, c], rediscover=True)  # Discover would find more
    assert panel.list.count() == 3 and panel.info.isHidden()
    # each slider starts at its transfer's default (their units differ)
    assert panel.strength("a") == DEFAULT_STRENGTH == dc.DEFAULT_STRENGTHS["focused"]
    assert panel.strength("c") == dc.DEFAULT_STRENGTHS["style"] != DEFAULT_STRENGTH
    panel._sliders["b"].set_value(-2.5)
    row = panel.list.itemWidget(panel.list.item(1))
    button = next(w for w in row.findChildren(type(panel.discover_button)) if w.text() == "Add")
    with qtbot.waitSignal(panel.add_requested) as sig:
        button.click()
    assert sig.args == [b, -2.5]
    with qtbot.waitSignal(panel.discover_requested):
        panel.discover_button.click()
    panel.set_running(0.4, "sampling: 40/100 images")
    assert not panel.discover_button.isEnabled() and panel.progress.isVisibleTo(panel)
    assert panel.progress.value() == 400
    panel.set_idle()
    assert panel.discover_button.isEnabled() and not panel.progress.isVisibleTo(panel)
    assert panel.current_method() == dc.DEFAULT_METHOD == "focused"
    from PySide6.QtCore import Qt
    tips = [panel.method.itemData(i, Qt.ItemDataRole.ToolTipRole)
            for i in range(panel.method.count())]
    assert panel.method.count() == len(dc.METHODS) and all(tips)  # each transfer explained
    from PySide6.QtTest import QTest

    QTest.keyClick(panel.method, Qt.Key.Key_Down)  # a pick of the user's, by keyboard
    with qtbot.waitSignal(panel.method_changed) as sig:
        QTest.keyClick(panel.method, Qt.Key.Key_Down)
    assert sig.args == ["w"] and panel.method.currentIndex() == 2
    with qtbot.waitSignal(panel.method_changed) as sig:
        panel.set_method("style")
    assert sig.args == ["style"] and panel.current_method() == "style"
    with pytest.raises(ValueError):
        panel.set_method("z")
    panel.set_unavailable("no CLIP model was chosen")
    assert "no CLIP model" in panel.info.text() and not panel.discover_button.isEnabled()


def test_the_directions_list_works_from_the_keyboard(qtbot):
    # items had no text (type-ahead found nothing, screen readers said nothing), Return
    # did nothing, and Tab went to the first row's controls: Space added another direction
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from editor.engine.discovered import DirectionEntry
    from editor.ui.directions_panel import DirectionsPanel

    panel = DirectionsPanel()
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()
    qtbot.waitUntil(panel.isActiveWindow)  # focus moves only in the active window
    entries = [DirectionEntry("a", "smile", 0.9, (0.1,), "frown"),
               DirectionEntry("b", "sunglasses", 0.7, (0.3,)),
               DirectionEntry("c", "beard", 0.6, (0.5,))]
    panel.set_directions(entries)
    assert [panel.list.item(i).text() for i in range(3)] == [e.title for e in entries]
    panel.list.setFocus()
    QTest.keyClick(panel.list, Qt.Key.Key_S)  # type-ahead
    assert panel.list.currentRow() == 1
    panel._sliders["b"].set_value(-2.5)
    with qtbot.waitSignal(panel.add_requested) as sig:
        QTest.keyClick(panel.list, Qt.Key.Key_Return)
    assert sig.args == [entries[1], -2.5]
    QTest.keyClick(panel.list, Qt.Key.Key_Tab)
    add = QApplication.focusWidget()
    assert add.accessibleName() == "Add sunglasses"
    with qtbot.waitSignal(panel.add_requested) as sig:
        QTest.keyClick(add, Qt.Key.Key_Space)
    assert sig.args == [entries[1], -2.5]


def test_cli_discover_refuses_meaningless_counts_and_bad_files_before_sampling(
        tmp_path, capsys, monkeypatch):
    from editor.cli import main
    from editor.core.checkpoints import save_generator

    def no_run(*_a, **_k):
        raise AssertionError("discovery ran before the settings were checked")
        yield

    monkeypatch.setattr(dd, "discovery_job", no_run)
    gen = save_generator(make_tiny_generator(resolution=8, channel_max=16),
                         tmp_path / "g.safetensors")
    clip = make_tiny_clip().save(tmp_path / "clip.safetensors")
    base = ["discover", "--generator", str(gen), "--clip-checkpoint", str(clip),
            "--no-mixture"]
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (tmp_path / "many.txt").write_text("".join(f"word{i}\n" for i in range(20_001)))
    (tmp_path / "a_folder").mkdir()
    cases = [(["--n-samples", "2", "--k", "1"], "needs at least 10 samples"),
             (["--n-samples", "100", "--k", "20"], "needs at least 200 samples"),
             # the CLIP's width first: more samples (3,000) would not have helped
             (["--n-samples", "400", "--k", "300"], "more components than this CLIP "
              "model's 32 dimensions; use --k 32 or less"),
             (["--vocab", str(tmp_path / "latin1.txt")], "is not UTF-8 text"),
             (["--vocab", str(tmp_path / "many.txt")], "at most 20000"),
             (["--json", str(tmp_path / "a_folder")], "is a folder")]
    for extra, match in cases:
        assert main(base + extra) == 1, extra
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err, (extra, err)


def test_the_demo_clip_knows_only_its_captions_words(tmp_path):
    from editor.engine.models import DEMO_GENERATOR
    from editor.engine.packs import DEMO_CLIP, ClipSource, demo_clip_source, open_pack
    from editor.toyfaces import captions

    pack = open_pack(DEMO_GENERATOR, demo_clip_source())
    known = pack.context().known_words
    assert known is not None and {"sunglasses", "beard", "a", "with"} <= known
    assert "unicorn" not in known
    # every suggested prompt is made of known words (no false alarms on our own words)
    assert all(set(t.lower().split()) <= known for t in pack.suggestions())
    assert all(set(p.lower().split()) <= known for e in captions.edit_prompts()
               for p in (e.neutral, e.target))
    # another CLIP (here: the demo's weights under another name) has no closed vocabulary
    copy = tmp_path / "clip.safetensors"
    copy.write_bytes(DEMO_CLIP.read_bytes())
    other = open_pack(DEMO_GENERATOR, ClipSource(path=str(copy)))
    assert other.context().known_words is None


# --------------------------------------------------------------------------- audit fixes


def _last(job):
    """A job's result (its last item)."""
    return list(job)[-1]


def _tiny_files(tmp_path, generator=None):
    from editor.core.checkpoints import save_generator

    gen = save_generator(generator or make_tiny_generator(resolution=8, channel_max=16),
                         tmp_path / "g.safetensors")
    return gen, make_tiny_clip().save(tmp_path / "clip.safetensors")


def test_the_token_mixture_runs_on_a_custom_text_clip(planted):
    # EVA02, MobileCLIP, ViTamin... (open_clip CustomTextCLIP) keep the text transformer
    # in model.text: discovery sampled every image, then failed with a TypeError
    from editor.core.clip_model import ClipModel
    from tests.conftest import TINY_CLIP_CONFIG

    gen, _ = planted
    torch.manual_seed(0)
    clip = ClipModel.from_config({**TINY_CLIP_CONFIG, "custom_text": True}, name="custom")
    assert type(clip.model).__name__ == "CustomTextCLIP"
    ids = clip.tokenize(["a photo of a zebra.", "two teapots"])
    ours = dc.encode_token_embeddings(clip.model, ids, clip.model.text.token_embedding(ids))
    torch.testing.assert_close(ours, clip.model.encode_text(ids), rtol=1e-5, atol=1e-5)
    setup = dc.LabelSetup(dc.general_vocabulary(WORDS),
                          dc.tokens_in_texts(clip.tokenizer, list(WORDS)))
    config = dc.DiscoveryConfig(n_samples=40, k=2, psi=1.0, mixture_steps=3, batch_size=20)
    result = _last(dc.discover(gen, clip, setup, config))
    assert isinstance(result, dc.Discovery) and result.directions[0].mixture


def test_a_clip_without_a_usable_text_tower_is_refused_before_sampling(planted, monkeypatch):
    from types import SimpleNamespace

    from editor.core.errors import AtelierError

    gen, fake = planted
    towerless = SimpleNamespace(model=torch.nn.Linear(2, 2), tokenizer=fake.tokenizer)

    def no_sampling(*_a, **_k):
        raise AssertionError("sampled before the mixture was checked")
        yield

    monkeypatch.setattr(dc, "iter_samples", no_sampling)
    with pytest.raises(AtelierError, match="token mixture cannot run"):
        next(dc.discover(gen, towerless, _setup(fake), CONFIG))
    # a pack with such a CLIP labels zero-shot, without the mixture; the demo generator
    # opened with it too (the window has no --no-mixture to fall back on)
    for is_demo in (False, True):
        pack = SimpleNamespace(clip=towerless, is_demo=is_demo)
        assert dd.label_setup(pack).tokens is None
    assert not dc.supports_token_mixture(towerless.model)


def test_the_batch_follows_the_generator_and_changes_neither_key_nor_labels(planted,
                                                                          monkeypatch):
    # 64 renders per call whatever the resolution: about 33 GB at 1024 px
    gen, fake = planted
    assert dc.DiscoveryConfig().batch_size is None
    monkeypatch.setattr(gd, "suggested_batch_size", lambda g: 25)
    config = dc.DiscoveryConfig(n_samples=100, k=3, psi=1.0, mixture=False)
    seen = [p.message for p in dc.discover(gen, fake, _setup(fake), config)
            if isinstance(p, dc.Progress) and "sampling" in p.message]
    assert [m.split(": ")[-1] for m in seen] == [f"{n}/100 images" for n in (25, 50, 75, 100)]
    runs = {b: _run(gen, fake, dataclasses.replace(config, batch_size=b)) for b in (None, 7)}
    keys = {dc.discovery_cache("g", "c", dataclasses.replace(config, batch_size=b),
                               _setup(fake), "s", None).key for b in (None, 7, 64)}
    assert len(keys) == 1
    # the same images: only the generator's rounding differs with the batch
    a, b = runs[None].directions, runs[7].directions
    assert [d.title for d in a] == [d.title for d in b]
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.vector, y.vector, rtol=0, atol=1e-4)


def test_cli_discover_takes_a_batch_size_and_bounds_the_seed(tmp_path, monkeypatch, capsys):
    from editor.cli import main
    from editor.engine.session import MAX_SEED

    configs = []

    def record(pack, extra_words=(), config=None, **_k):
        configs.append(config)
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(dd, "discovery_job", record)
    gen, clip = _tiny_files(tmp_path)
    base = ["discover", "--generator", str(gen), "--clip-checkpoint", str(clip),
            "--no-mixture"]
    assert main([*base, "--batch-size", "3", "--seed", str(MAX_SEED)]) == 130
    assert main(base) == 130
    assert [c.batch_size for c in configs] == [3, None]  # None: the generator's own
    assert configs[0].seed == MAX_SEED
    with pytest.raises(SystemExit):  # a usage error, not an OverflowError traceback
        main([*base, "--seed", str(MAX_SEED + 1)])
    assert f"out of range (use from 0 to {MAX_SEED})" in capsys.readouterr().err


def test_cli_discover_refuses_more_components_than_clip_has_dimensions(tmp_path, capsys):
    # --k 40 on a 32-dimensional CLIP used to give 32 directions without a word
    from editor.cli import main

    gen, clip = _tiny_files(tmp_path)
    code = main(["discover", "--generator", str(gen), "--clip-checkpoint", str(clip),
                 "--no-mixture", "--k", "40", "--n-samples", "400"])
    err = capsys.readouterr().err
    assert code == 1 and "32 dimensions" in err and "--k 32" in err


def test_ranking_the_mixture_words_is_a_phase_with_progress_and_cancel(planted):
    # some 22,000 mixture words were encoded (minutes with a large CLIP) with no progress
    # and no way to cancel
    gen, fake = planted
    other = ["apple", "banana", "cherry", "dog", "cat", "house", "tree", "car"]
    setup = dc.LabelSetup(fake.vocab, dc.tokens_in_texts(fake.tokenizer, [*WORDS, *other]))
    config = dc.DiscoveryConfig(n_samples=120, k=3, psi=1.0, mixture_steps=20, batch_size=30)
    progress = [p for p in dc.discover(gen, fake, setup, config) if isinstance(p, dc.Progress)]
    ranking = [p for p in progress if "encoding label words" in p.message]
    assert ranking and all(p.message.startswith("step 3 of 4") for p in ranking)
    cancel = threading.Event()
    with pytest.raises(dc.Cancelled, match="encoding label words"):
        for p in dc.discover(gen, fake, setup, config, cancel=cancel):
            if isinstance(p, dc.Progress) and "encoding label words" in p.message:
                cancel.set()
    # in chunks, each reported, with the same vectors as all at once
    sets = [(f"a photo of a {w}.",) for w in [*WORDS, *other]]
    chunked = list(dc.iter_text_embeddings(fake.clip, sets, batch=8))
    assert [p.done for p in chunked[:-1]] == [8, 16, 20]
    torch.testing.assert_close(chunked[-1], dc.text_embeddings(fake.clip, sets, batch=8))


def test_samples_that_do_not_vary_are_refused_in_one_line(tmp_path, capsys):
    # every modulation weight 0: all samples are one picture (ZeroDivisionError before)
    from editor.cli import main

    g = make_tiny_generator(resolution=8, channel_max=16)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("modulation.weight") or name.endswith("noise.weight"):
                p.zero_()
    gen, clip = _tiny_files(tmp_path, g)
    code = main(["discover", "--generator", str(gen), "--clip-checkpoint", str(clip),
                 "--n-samples", "40", "--k", "3", "--no-mixture"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "the sampled images do not vary (the generator or CLIP output is constant)" in err


def test_a_vocabulary_file_with_a_byte_order_mark_reads_as_its_words(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# my words\nporcelain\n", encoding="utf-8-sig")  # Notepad's UTF-8
    assert dc.read_vocab_file(path) == ["porcelain"]
    path.write_text("porcelain\nsmiling cat\n", encoding="utf-8-sig")
    assert dc.read_vocab_file(path) == ["porcelain", "smiling cat"]


def test_discovering_again_finds_more_only_after_the_packs_directions_changed(tmp_path,
                                                                             monkeypatch):
    # "Discover again" reloaded the same cached result: a run with the same samples and
    # settings finds the same directions; only new global directions add transfers
    from editor.engine.packs import ClipSource, open_pack
    from editor.methods.global_directions import RelevanceConfig

    monkeypatch.setattr(dd, "default_config",
                        lambda _p: dc.DiscoveryConfig(n_samples=120, k=4, mixture=False))
    gen, clip = _tiny_files(tmp_path)
    pack = open_pack(gen, ClipSource(path=str(clip)),
                     relevance_config=RelevanceConfig(n_images=2, psi=1.0), stats_samples=200)
    first = _last(dd.discovery_job(pack))
    assert not dd.finds_more(pack, first)
    assert "precompute" in dd.missing_reason(first, "focused")
    assert dd.missing_reason(first, "w") is None
    for _ in pack.precompute():
        pass
    older = dd.cached_discovery(pack)
    assert older is not None and older.key == first.key and dd.finds_more(pack, older)


def _small_packs(monkeypatch):
    """open_pack (as the CLI calls it) with global-direction settings small enough for a
    test; returns it."""
    from editor.engine import packs
    from editor.methods.global_directions import RelevanceConfig

    real = packs.open_pack

    def small(generator, source, device="cpu", **_k):
        return real(generator, source, device,
                    relevance_config=RelevanceConfig(n_images=2, psi=1.0), stats_samples=200)

    monkeypatch.setattr(packs, "open_pack", small)
    return small


def test_cli_discover_discovers_again_after_a_precompute_and_on_recompute(tmp_path, capsys,
                                                                          monkeypatch):
    # after `atelier precompute`, discover kept printing the cached w-only result "from
    # the cache" (the window discovered again); --recompute ignores the cache
    from editor.cli import main
    from editor.engine.packs import ClipSource

    open_small = _small_packs(monkeypatch)
    gen, clip = _tiny_files(tmp_path)
    argv = ["discover", "--generator", str(gen), "--clip-checkpoint", str(clip),
            "--n-samples", "40", "--k", "3", "--no-mixture", "--method", "focused"]
    assert main(argv) == 0
    assert "[no focused delta" in capsys.readouterr().out  # no global directions yet
    for _ in open_small(gen, ClipSource(path=str(clip))).precompute():
        pass
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "from the cache" not in printed and "[no focused delta" not in printed
    assert main(argv) == 0 and "from the cache" in capsys.readouterr().out
    assert main([*argv, "--recompute"]) == 0
    assert "from the cache" not in capsys.readouterr().out


def test_a_cancel_thrown_into_discovery_says_its_samples_are_saved(tmp_path):
    # the window's cancel (Cancelled thrown in at a yield) ended with no note, though the
    # images sampled so far were kept for the next run
    from editor.engine.packs import ClipSource, open_pack

    gen, clip = _tiny_files(tmp_path)
    pack = open_pack(gen, ClipSource(path=str(clip)))
    config = dc.DiscoveryConfig(n_samples=120, k=3, mixture=False, batch_size=30)
    job = dd.discovery_job(pack, config=config)
    for item in job:
        if isinstance(item, dc.Progress) and "30/120" in item.message:
            break
    with pytest.raises(dc.Cancelled, match="progress saved, run again to resume"):
        job.throw(dc.Cancelled())
    assert dd.samples_kept(pack, config=config)


def test_discover_again_after_a_precompute_or_with_a_word_added_does_not_sample_again(
        tmp_path):
    from editor.engine.packs import ClipSource, open_pack
    from editor.methods.global_directions import RelevanceConfig

    gen, clip = _tiny_files(tmp_path)
    pack = open_pack(gen, ClipSource(path=str(clip)),
                     relevance_config=RelevanceConfig(n_images=2, psi=1.0), stats_samples=200)
    config = dc.DiscoveryConfig(n_samples=90, k=3, mixture=False, batch_size=30)

    def sampling_messages(job):
        return [p.message for p in job if isinstance(p, dc.Progress) and "sampling" in p.message]

    assert "30/90" in sampling_messages(dd.discovery_job(pack, config=config))[0]
    for _ in pack.precompute():
        pass
    for job in (dd.discovery_job(pack, config=config),  # finds_more: the style transfers
                dd.discovery_job(pack, extra_words=["freckles"], config=config)):
        assert all("kept from an earlier run" in m for m in sampling_messages(job))


def _direction_with(deltas: dict[str, list[float]], label: str) -> dc.Direction:
    return dc.Direction(torch.zeros(2), 0.1, 0, False, [dc.Label(label, 0.9)], [],
                        deltas={m: torch.tensor(d) for m, d in deltas.items()})


def test_a_direction_whose_edit_repeats_an_earlier_one_either_way_round_is_dropped():
    long_short = _direction_with({"w": [1.0, 0.2, 0.0], "focused": [1.0, 0.0, 0.0]}, "a")
    short_long = _direction_with({"w": [-1.0, -0.3, 0.0]}, "b")  # the opposite edit
    other = _direction_with({"w": [0.0, 0.3, 1.0], "focused": [0.0, 0.0, 1.0]}, "c")
    alike_in_focused = _direction_with({"w": [0.0, 1.0, 0.0], "focused": [0.95, 0.0, 0.1]},
                                       "d")
    kept = dc.distinct_edits([long_short, short_long, other, alike_in_focused], 0.9)
    assert [d.label for d in kept] == ["a", "c"]


def test_the_shipped_demo_discovery_lists_each_edit_once():
    # "long hair ↔ short hair" and "short ↔ long hair" (deltas at cos -0.96), "no glasses
    # ↔ shades" and "shades ↔ no glasses" were each listed twice
    from editor.engine.models import DEMO_GENERATOR
    from editor.engine.packs import demo_clip_source, open_pack

    pack = open_pack(DEMO_GENERATOR, demo_clip_source())
    found = dd.cached_discovery(pack)
    assert found is not None and len(found.directions) >= 10
    pairs = [(a, b) for i, a in enumerate(found.directions) for b in found.directions[:i]]
    assert all(dc._edit_cos(a, b) < 0.9 for a, b in pairs)
    assert "short ↔ long hair" not in [d.title for d in found.directions]


def test_cli_discover_warns_about_words_the_clip_never_learned(capsys, monkeypatch):
    # the demo CLIP knows only its captions' words: "banana" made confident labels
    from editor.cli import main

    def stop(*_a, **_k):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(dd, "discovery_job", stop)
    assert main(["discover", "--words", "banana,red hair,spaceship", "--no-mixture"]) == 130
    err = capsys.readouterr().err
    assert "words this CLIP never learned: “banana”, “spaceship”" in err
    assert main(["discover", "--words", "red hair", "--no-mixture"]) == 130
    assert "never learned" not in capsys.readouterr().err


def test_words_the_clip_never_learned_label_nothing_and_leave_the_key_alone(capsys,
                                                                           monkeypatch):
    # `--words "freckles,zzzqqq,sunburn"` warned that the demo CLIP "cannot label anything
    # with them", then showed "sunburn" at 0.47 as a label; and the junk words moved the
    # vocabulary's mean, so every other label's confidence moved too
    from editor.cli import main
    from editor.engine.models import DEMO_GENERATOR
    from editor.engine.packs import demo_clip_source, open_pack

    pack = open_pack(DEMO_GENERATOR, demo_clip_source())
    junk = ["zzzqqq", "sunburn", "red sunburn"]
    assert dd.unlearned_label_words(pack, junk) == ("zzzqqq", "sunburn")
    labels = [w.label for w in dd.label_setup(pack, ["ginger", *junk]).vocabulary.words]
    assert "ginger" in labels and not set(junk) & set(labels)
    assert dd.label_setup(pack, junk).identity() == dd.label_setup(pack).identity()
    shipped = dd.cached_discovery(pack)  # so the cache key is the one without them
    assert dd.cached_discovery(pack, junk) is not None
    assert not dd.finds_more(pack, shipped, junk)

    def stop(*_a, **_k):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(dd, "discovery_job", stop)
    assert main(["discover", "--words", "sunburn", "--no-mixture"]) == 130
    assert "so labels with them are left out" in capsys.readouterr().err


def test_cli_discover_out_of_memory_says_what_was_kept_and_suggests_a_smaller_batch(
        tmp_path, capsys, monkeypatch):
    # it printed only "out of GPU memory (asked for ...)", where `atelier precompute`
    # says its progress is kept and suggests a smaller --batch-size
    from editor.cli import main
    from editor.core.generator import Generator

    gen, clip = _tiny_files(tmp_path)
    real = Generator.synthesize
    calls = []

    def runs_out(self, *a, **k):
        calls.append(1)
        if len(calls) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.")
        return real(self, *a, **k)

    monkeypatch.setattr(Generator, "synthesize", runs_out)
    argv = ["discover", "--generator", str(gen), "--clip-checkpoint", str(clip),
            "--n-samples", "40", "--k", "3", "--no-mixture", "--batch-size", "8"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "out of GPU memory" in err and "Traceback" not in err
    assert err.rstrip().endswith("; the images sampled so far are kept: run again with a "
                                 "smaller --batch-size (this run: 8)")
    calls.extend([1] * 10)  # out of memory at once: nothing new kept, the advice stands
    assert main([*argv, "--seed", "1"]) == 1
    err = capsys.readouterr().err
    assert err.rstrip().endswith("); run again with a smaller --batch-size (this run: 8)")
    assert "kept" not in err


def test_a_damaged_cached_discovery_is_reported_once(tmp_path, caplog):
    # the job's cache look-up warned, then the run loaded the same entry and warned again
    from editor.engine.packs import ClipSource, open_pack

    gen, clip = _tiny_files(tmp_path)
    pack = open_pack(gen, ClipSource(path=str(clip)))
    config = dc.DiscoveryConfig(n_samples=40, k=3, mixture=False)
    _last(dd.discovery_job(pack, config=config))
    path = dd._entry(pack, config, dd.label_setup(pack), None).path
    data = bytearray(path.read_bytes())
    data[-20:] = bytes(20)  # the checksum no longer matches
    path.write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        again = _last(dd.discovery_job(pack, config=config))
    assert not again.from_cache
    assert [r.getMessage() for r in caplog.records].count(
        f"ignored {path}: damaged, or written for other models or by another version; it "
        "is computed again") == 1


def test_the_mixtures_tokens_are_gathered_once_per_tokenizer(monkeypatch):
    # the window builds the label setup on every model switch and words change, on its
    # own thread: 32,080 whole-word entries took 0.17 s each time
    from editor.engine.models import DEMO_GENERATOR
    from editor.engine.packs import demo_clip_source, open_pack

    pack = open_pack(DEMO_GENERATOR, demo_clip_source())
    gathered = []
    real = dc.tokens_in_texts
    monkeypatch.setattr(dc, "tokens_in_texts",
                        lambda t, texts: gathered.append(t) or real(t, texts))
    dd._TOKEN_SETS.clear()
    first = dd.label_setup(pack)
    again = dd.label_setup(pack, ["smile"])
    assert len(gathered) == 1 and again.tokens == first.tokens is not None
    assert dd.label_setup(pack).identity() == first.identity()


def test_a_word_given_again_in_another_case_or_spacing_is_one_label():
    # `atelier discover --words "dark  skin,Dark skin"` listed "dark  skin 0.99, Dark skin
    # 0.99, dark skin 0.99" as a direction's top labels: one word, which CLIP reads alike
    vocab = dd.demo_vocabulary(["dark  skin", "Dark skin", " red\thair", "Freckles",
                                "freckles", "sun  burn"])
    labels = [w.label for w in vocab.words]
    assert labels.count("dark skin") == 1 and labels[-2:] == ["Freckles", "sun burn"]
    assert not any(label.casefold() in ("dark  skin", "red\thair") for label in labels)
    assert vocab.words[-1].prompts == (dd.DEMO_TEMPLATE.format("sun burn"),)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_cli_discover_json_into_a_pipe_or_device_writes_into_it(tmp_path, capsys):
    # --json named a device or a pipe (/dev/stdout with stdout on /dev/null, `>(jq .)`,
    # a FIFO): a plain file was renamed over it (as root /dev/null became one), and
    # without --overwrite it was refused as a file that "exists"
    from editor.cli import main

    fifo = tmp_path / "directions"
    os.mkfifo(fifo)
    with reading_fifo(fifo) as got:
        code = main(["discover", "--json", str(fifo)])  # the demo pack's shipped result
    assert code == 0, capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(os.listdir(tmp_path)) == [
        "directions"]
    assert json.loads(got[0])["format"] == "latent-atelier-discovery"


def test_cli_discover_writes_its_json_before_a_stdout_that_fails(tmp_path, monkeypatch):
    # `atelier discover --json d.json > /dev/full`: the table's print failed first, and the
    # directions were never written
    import errno
    import io

    from editor.cli import main

    class Full(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("sys.stdout", Full())
    monkeypatch.setattr("editor.cli._drop_stdout", lambda: None)  # not pytest's own fd 1
    out = tmp_path / "d.json"
    assert main(["discover", "--json", str(out)]) == 1  # the demo pack's shipped result
    assert json.loads(out.read_text(encoding="utf-8"))["format"] == "latent-atelier-discovery"
