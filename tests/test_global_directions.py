"""StyleCLIP global directions: the batched relevance against the official one-channel loop,
the text -> edit math (beta, alpha, guards, auto-beta), and the precompute job (cache,
cancel, resume, damaged files) and its CLI.

Models are tiny and random (a 16 px generator, a 32 px ViT CLIP): right for the mechanics,
meaningless for what an edit looks like (the demo world tests that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from editor.core.clip_model import ClipModel
from editor.core.generator import Generator
from editor.core.style_code import editable_mask, flat_offsets
from editor.engine.compose import EditError, EditingContext
from editor.engine.session import Edit, Session, Source
from editor.methods import global_directions as gd
from editor.methods import precompute as pc
from tests.conftest import make_tiny_clip, make_tiny_generator

CLIP_CFG = {"embed_dim": 32,
            "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2,
                         "layers": 1},
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 8,
                           "head_width": 32}}
TEMPLATES = ("a photo of {}.", "{}")
N_IMAGES = 3
STATS_SAMPLES = 300


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests are small; one thread avoids oversubscribing a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def gen() -> Generator:
    return make_tiny_generator(resolution=16, channel_max=16, seed=1)


@pytest.fixture(scope="module")
def clip() -> ClipModel:
    torch.manual_seed(0)
    return ClipModel.from_config(CLIP_CFG, name="tiny")


@pytest.fixture(scope="module")
def stats(gen) -> gd.StyleStats:
    return gd.compute_style_stats(gen, STATS_SAMPLES, batch=100)


def run_job(job):
    """Drain a job: (its Progress items, its result)."""
    progress, result = [], None
    for item in job:
        if isinstance(item, gd.Progress):
            progress.append(item)
        else:
            result = item
    return progress, result


@pytest.fixture(scope="module")
def relevance(gen, clip, stats) -> gd.Relevance:
    return run_job(gd.compute_relevance(gen, clip, stats,
                                        gd.RelevanceConfig(n_images=N_IMAGES)))[1]


class CountingClip:
    """A CLIP wrapper that counts image encodings, and can ask to stop after some."""

    def __init__(self, clip: ClipModel, stop_after: int | None = None):
        self.clip, self.stop_after = clip, stop_after
        self.calls = self.images = 0

    def encode_images(self, x, normalize=True):
        self.calls += 1
        self.images += x.shape[0]
        return self.clip.encode_images(x, normalize=normalize)

    def text_embedding(self, text, templates=None):
        return self.clip.text_embedding(text, templates)

    def should_stop(self) -> bool:
        return self.stop_after is not None and self.calls >= self.stop_after


# --------------------------------------------------------------------------- relevance


def test_batched_relevance_matches_the_official_single_channel_loop(gen, clip, stats,
                                                                     relevance):
    codes = gd.base_codes(gen, N_IMAGES, seed=0, psi=0.7)
    offsets = flat_offsets(gen.style_specs)
    row = {int(c): i for i, c in enumerate(relevance.channels)}
    checked = 0
    for layer in ("conv1", "convs.0", "convs.3"):
        i = next(k for k, s in enumerate(gen.style_specs) if s.name == layer)
        for c in (0, 7, gen.style_specs[i].channels - 1):
            flat = offsets[i] + c
            ref = gd.relevance_single_channel(gen, clip, codes, stats, flat)
            cos = float(ref @ relevance.vectors[row[flat]])
            assert cos >= 0.999, (layer, c, cos)
            checked += 1
    assert checked == 9


def test_relevance_covers_every_editable_channel_with_unit_vectors(gen, relevance):
    mask = editable_mask(gen.style_specs)
    assert sorted(relevance.channels.tolist()) == torch.nonzero(mask).flatten().tolist()
    norms = relevance.vectors.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_image_chunks_and_batch_sizes_do_not_change_the_result(gen, clip, stats, relevance):
    """One image per chunk (the memory-bound path used at 1024 px) and an odd batch size
    give the same vectors as all images at once."""
    cfg = gd.RelevanceConfig(n_images=N_IMAGES, batch_size=5, state_budget_mb=0,
                             layers=("convs.1", "conv1"))
    rel = run_job(gd.compute_relevance(gen, clip, stats, cfg))[1]
    full = dict(zip(relevance.channels.tolist(), relevance.vectors, strict=True))
    expected = torch.stack([full[c] for c in rel.channels.tolist()])
    assert torch.allclose(rel.vectors, expected, atol=1e-5)


def test_relevance_progress_counts_up_to_the_total_with_an_eta(gen, clip, stats):
    cfg = gd.RelevanceConfig(n_images=2, layers=("convs.2",))
    progress, rel = run_job(gd.compute_relevance(gen, clip, stats, cfg))
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert progress[-1].done == progress[-1].total == 16 * 2
    assert progress[-1].eta_s == 0.0 and "convs.2" in progress[-1].message
    assert rel.vectors.shape == (16, 32)


def test_unknown_or_torgb_layers_are_refused(gen, clip, stats):
    for layers, word in ((("nope",), "unknown"), (("to_rgb1",), "toRGB")):
        job = gd.compute_relevance(gen, clip, stats, gd.RelevanceConfig(layers=layers))
        with pytest.raises(ValueError, match=word):
            next(job)


# --------------------------------------------------------------------------- text -> edit


@pytest.fixture(scope="module")
def direction(clip) -> torch.Tensor:
    return gd.text_direction(clip, "a face", "a smiling face", TEMPLATES)


def test_larger_beta_keeps_fewer_channels_and_reports_the_count(relevance, stats, direction):
    scores = gd.channel_scores(relevance, direction).abs()
    counts = []
    for beta in (0.0, 0.05, 0.1, 0.2, float(scores.max()) * 0.99):
        edit = gd.edit_direction(relevance, stats, direction, beta)
        assert edit.n_channels == int((scores >= beta).sum())
        counts.append(edit.n_channels)
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1] >= 1


def test_delta_is_zero_on_torgb_and_unkept_channels(gen, relevance, stats, direction):
    beta = 0.1
    edit = gd.edit_direction(relevance, stats, direction, beta)
    scores = gd.channel_scores(relevance, direction)
    kept = torch.zeros_like(edit.delta, dtype=torch.bool)
    kept[relevance.channels[scores.abs() >= beta]] = True
    assert not edit.delta[~editable_mask(gen.style_specs)].any()
    assert not edit.delta[~kept].any()
    assert (edit.delta[kept] != 0).all()
    # r / max|r| * std: the strongest channel moves by exactly one std
    top = relevance.channels[scores.abs().argmax()]
    assert float(edit.delta[top].abs()) == pytest.approx(float(stats.std[top]), rel=1e-6)
    assert torch.isfinite(edit.delta).all()


def test_alpha_scales_the_delta_exactly_through_the_editing_context(gen, clip, relevance,
                                                                     stats):
    ctx = EditingContext(gen, clip, stats, relevance)
    source = Source(seed=3, psi=0.7)
    params = {"neutral": "a face", "target": "a smiling face", "beta": 0.1}
    delta = ctx.direction(Edit("global", params)).delta
    s = ctx.source_code(source).flat()
    for alpha in (4.0, -2.5):
        session = Session(source=source, edits=(Edit("global", params, strength=alpha),))
        assert torch.equal(ctx.compose(session).flat(), s + alpha * delta)
    zero = Session(source=source, edits=(Edit("global", params, strength=0.0),))
    assert torch.equal(ctx.render(zero), ctx.render(Session(source=source)))


def test_alpha_zero_keeps_the_image_and_negative_alpha_moves_the_other_way(
        gen, clip, relevance, stats, direction):
    edit = gd.edit_direction(relevance, stats, direction, 0.1)
    code = gd.base_codes(gen, 1, seed=5, psi=0.7)
    with torch.no_grad():
        base = gen.synthesize(code)
        assert torch.equal(gen.synthesize(code + 0.0 * edit.delta), base)
        plus = gen.synthesize(code + 0.3 * edit.delta) - base
        minus = gen.synthesize(code + -0.3 * edit.delta) - base
        e0 = clip.encode_images(base)[0]
        along = [float((clip.encode_images(base + d)[0] - e0) @ direction) for d in (plus, minus)]
    assert plus.abs().max() > 1e-4
    assert float(F.cosine_similarity(plus.flatten(), minus.flatten(), dim=0)) < -0.9
    assert along[0] * along[1] < 0  # opposite sides along the text direction


def test_beta_above_every_score_raises_a_clear_error_and_no_nan(relevance, stats, direction):
    top = float(gd.channel_scores(relevance, direction).abs().max())
    with pytest.raises(gd.NoChannelsError, match=r"no style channel passes beta.*auto-beta"):
        gd.edit_direction(relevance, stats, direction, top + 0.01)
    silent = gd.Relevance(relevance.channels, torch.zeros_like(relevance.vectors))
    for beta in (0.0, -1.0, 0.1):  # all scores zero: an error, never 0/0
        with pytest.raises(gd.NoChannelsError, match="zero"):
            gd.edit_direction(silent, stats, direction, beta)
    with pytest.raises(gd.NoChannelsError):
        gd.auto_beta(gd.channel_scores(silent, direction))
    broken = gd.Relevance(relevance.channels, torch.full_like(relevance.vectors, float("nan")))
    with pytest.raises(gd.NoChannelsError, match="NaN"):
        gd.edit_direction(broken, stats, direction, 0.1)


def test_a_text_edit_without_a_clip_says_it_needs_one_not_a_precompute(gen, relevance,
                                                                       stats):
    # A pack whose CLIP did not load (its directions cached) told the stack to "precompute
    # them first", which then said "Open a model pack with a CLIP model first"
    edit = Edit("global", {"neutral": "a face", "target": "a smiling face"})
    for ctx in (EditingContext(gen, None, stats, relevance), EditingContext(gen)):
        with pytest.raises(EditError, match="need a CLIP model") as caught:
            ctx.compose(Session(edits=(edit,)))
        assert "precompute" not in str(caught.value)


def test_the_engine_reports_no_channels_as_an_edit_error(gen, clip, relevance, stats):
    ctx = EditingContext(gen, clip, stats, relevance)
    edit = Edit("global", {"neutral": "a face", "target": "a smiling face", "beta": 5.0})
    with pytest.raises(EditError, match="beta"):
        ctx.compose(Session(edits=(edit,)))


def test_auto_beta_is_the_largest_beta_leaving_min_channels(relevance, stats, direction):
    scores = gd.channel_scores(relevance, direction)
    mags = scores.abs().sort(descending=True).values
    for k in (1, 5, 12):
        beta = gd.auto_beta(scores, k)
        edit = gd.edit_direction(relevance, stats, direction, beta)
        assert edit.n_channels >= k
        above = float(mags[mags > beta].min()) if (mags > beta).any() else beta + 1
        assert int((scores.abs() >= (beta + above) / 2).sum()) < k  # any larger beta: fewer
    assert gd.edit_direction(relevance, stats, direction,
                             gd.auto_beta(scores, 10_000)).n_channels == len(scores)


def test_empty_or_identical_prompts_are_refused_clearly(clip):
    for target in ("", "   "):
        with pytest.raises(ValueError, match="target prompt is empty"):
            gd.text_direction(clip, "a face", target, TEMPLATES)
    with pytest.raises(ValueError, match="mean the same"):
        gd.text_direction(clip, "a face", "a face", TEMPLATES)
    d = gd.text_direction(clip, "", "a smiling face", TEMPLATES)  # no neutral: e(target)
    assert float(d.norm()) == pytest.approx(1.0)


# --------------------------------------------------------------------------- precompute


CFG = gd.RelevanceConfig(n_images=2, layers=("conv1", "convs.0", "convs.2"), batch_size=32)


def precompute(gen, clip, cancel=None, config=CFG, **kw):
    return pc.precompute_pack(gen, clip, "gen-hash", "clip-hash", STATS_SAMPLES, config,
                              cancel=cancel, **kw)


def test_second_precompute_loads_from_the_cache_without_encoding(gen, clip):
    first = CountingClip(clip)
    progress, data = run_job(precompute(gen, first))
    assert first.images == 48 * 2 * 2 and not data.from_cache
    assert any("style statistics" in p.message for p in progress)
    assert all(p.eta_s is None or p.eta_s >= 0 for p in progress)

    again = CountingClip(clip)
    _, cached = run_job(precompute(gen, again))
    assert again.calls == 0 and cached.from_cache
    assert torch.equal(cached.relevance.vectors, data.relevance.vectors)
    assert torch.equal(cached.relevance.channels, data.relevance.channels)
    assert torch.equal(cached.stats.std, data.stats.std)
    loaded = pc.load_pack_data("gen-hash", "clip-hash", STATS_SAMPLES, CFG)
    assert loaded is not None and torch.equal(loaded.relevance.vectors, data.relevance.vectors)
    # other settings, other entry (batch size and memory budget are not settings)
    assert pc.load_pack_data("gen-hash", "clip-hash", STATS_SAMPLES,
                             gd.RelevanceConfig(n_images=2, layers=CFG.layers,
                                                batch_size=7, state_budget_mb=1)) is not None
    assert pc.load_pack_data("gen-hash", "clip-hash", STATS_SAMPLES,
                             gd.RelevanceConfig(n_images=2, layers=CFG.layers,
                                                k_sigma=3.0)) is None
    assert pc.load_pack_data("gen-hash", "other-clip", STATS_SAMPLES, CFG) is None


def test_style_stats_are_cached_on_their_own(gen, clip, monkeypatch):
    run_job(precompute(gen, clip, config=gd.RelevanceConfig(n_images=1, layers=("conv1",))))
    assert pc.load_stats("gen-hash", STATS_SAMPLES) is not None

    def refuse(*args, **kwargs):
        raise AssertionError("the statistics were computed again")

    monkeypatch.setattr(pc, "iter_style_stats", refuse)
    _, data = run_job(precompute(gen, clip, config=gd.RelevanceConfig(
        n_images=1, k_sigma=2.0, layers=("conv1",))))
    assert data.relevance.vectors.shape == (16, 32)


def test_cancel_then_resume_continues_and_matches_an_uninterrupted_run(gen, clip):
    full = CountingClip(clip)
    _, reference = run_job(precompute(gen, full, root=None, sampler="reference"))

    # Stop after two layers (a layer here: 16 channels x 2 images x 2 signs = 2 calls).
    first = CountingClip(clip, stop_after=4)
    with pytest.raises(pc.Cancelled, match="progress saved"):
        run_job(precompute(gen, first, cancel=first.should_stop))
    entry = pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES, CFG, pc.DEFAULT_SAMPLER)
    assert entry.partial_path.exists() and not entry.path.exists()
    assert entry.load_partial()[1]["done"] == ["conv1", "convs.0"]
    assert pc.partial_summary(gen, "gen-hash", "clip-hash", STATS_SAMPLES, CFG) == (64, 96)

    second = CountingClip(clip)
    progress, resumed = run_job(precompute(gen, second))
    # the statistics are cached: one phase, so no "step i of n"; 64 of 96 pairs done
    assert progress[0].message == "relevance: resuming"
    assert progress[0].fraction == pytest.approx(64 / 96, abs=1e-4)
    assert second.calls == full.calls - first.calls  # nothing done twice
    assert torch.allclose(resumed.relevance.vectors, reference.relevance.vectors, atol=1e-6)
    assert not entry.partial_path.exists() and entry.path.exists()


def test_cancel_inside_a_layer_keeps_its_finished_channels(gen, clip):
    """With small steps (1 channel x 2 images per step) a stop mid-layer keeps the channels
    done so far; the resumed run does only the rest."""
    cfg = gd.RelevanceConfig(n_images=2, batch_size=4, layers=("convs.1",))
    first = CountingClip(clip, stop_after=5)  # 5 steps of 1 channel x 2 images
    with pytest.raises(pc.Cancelled):
        run_job(precompute(gen, first, cancel=first.should_stop, config=cfg))
    assert pc.partial_summary(gen, "gen-hash", "clip-hash", STATS_SAMPLES, cfg) == (10, 32)
    second = CountingClip(clip)
    _, resumed = run_job(precompute(gen, second, config=cfg))
    assert second.images == (16 - 5) * 2 * 2
    plain = run_job(gd.compute_relevance(gen, clip, pc.load_stats("gen-hash", STATS_SAMPLES),
                                         cfg))[1]
    assert torch.allclose(resumed.relevance.vectors, plain.vectors, atol=1e-6)


def test_dropping_the_job_or_an_error_keeps_the_progress(gen, clip):
    job = precompute(gen, clip)
    for item in job:
        if isinstance(item, gd.Progress) and "convs.0" in item.message:
            break
    job.close()  # what a caller's KeyboardInterrupt or a garbage-collected job does
    assert pc.partial_summary(gen, "gen-hash", "clip-hash", STATS_SAMPLES, CFG)[0] >= 32


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty"])
def test_a_damaged_cache_file_counts_as_absent(gen, clip, damage, caplog):
    _, data = run_job(precompute(gen, clip))
    entry = pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES, CFG, pc.DEFAULT_SAMPLER)
    raw = entry.path.read_bytes()
    if damage == "garbage":
        raw = b"not a safetensors file at all" * 10
    elif damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "flipped":  # a valid container with altered numbers
        raw = raw[:-40] + bytes(b ^ 0x55 for b in raw[-40:])
    else:
        raw = b""
    entry.path.write_bytes(raw)
    assert pc.load_pack_data("gen-hash", "clip-hash", STATS_SAMPLES, CFG) is None
    # said, not silent: a damaged resume file means hours of work done again
    assert f"ignored {entry.path}" in caplog.text
    counting = CountingClip(clip)
    _, again = run_job(precompute(gen, counting))
    assert counting.calls > 0 and not again.from_cache
    assert torch.allclose(again.relevance.vectors, data.relevance.vectors, atol=1e-6)


def test_an_entry_under_another_entrys_name_is_not_taken_for_it(gen, clip):
    # A pack, statistics or resume file copied under another generator's file name was
    # used as that generator's (found by an audit: wrong vectors, or an IndexError later).
    _, data = run_job(precompute(gen, clip))
    mine = pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES, CFG, pc.DEFAULT_SAMPLER)
    other = pc.pack_cache("other-gen", "clip-hash", STATS_SAMPLES, CFG, pc.DEFAULT_SAMPLER)
    other.dir.mkdir(parents=True, exist_ok=True)
    other.path.write_bytes(mine.path.read_bytes())
    other.partial_path.write_bytes(mine.path.read_bytes())
    stats_other = pc.stats_cache("other-gen", STATS_SAMPLES)
    stats_other.path.write_bytes(pc.stats_cache("gen-hash", STATS_SAMPLES).path.read_bytes())
    assert pc.load_pack_data("other-gen", "clip-hash", STATS_SAMPLES, CFG) is None
    assert pc.load_checked(other, partial=True) is None
    assert pc.load_stats("other-gen", STATS_SAMPLES) is None
    assert pc.load_pack_data("gen-hash", "clip-hash", STATS_SAMPLES, CFG) is not None


def test_a_damaged_partial_is_ignored(gen, clip):
    first = CountingClip(clip, stop_after=2)
    with pytest.raises(pc.Cancelled):
        run_job(precompute(gen, first, cancel=first.should_stop))
    entry = pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES, CFG, pc.DEFAULT_SAMPLER)
    raw = entry.partial_path.read_bytes()
    entry.partial_path.write_bytes(raw[:-16] + bytes(16))
    counting = CountingClip(clip)
    run_job(precompute(gen, counting))
    assert counting.images == 48 * 2 * 2  # started over


PARTIAL_CFG = gd.RelevanceConfig(n_images=2, batch_size=4, layers=("conv1", "convs.1"))


def _partial_with_a_layer_under_way(gen, clip) -> tuple[pc.TensorCache, dict]:
    """Stop 8 channels into the second layer (1 channel x 2 images per step); the partial
    then holds conv1 finished and convs.1 under way. Returns the entry and its info."""
    first = CountingClip(clip, stop_after=16 + 8)  # one encoder call a step
    with pytest.raises(pc.Cancelled):
        run_job(precompute(gen, first, cancel=first.should_stop, config=PARTIAL_CFG))
    entry = pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES, PARTIAL_CFG)
    info = entry.load_partial()[1]
    assert info["done"] == ["conv1"] and info["current"]["channels_done"] == 8
    return entry, info


@pytest.mark.parametrize("field, value", [
    ("channels_done", None), ("channels_done", "8"), ("channels_done", 99),
    ("channels_done", True), ("images_done", -2), ("images_done", 1), ("image_chunk", 0),
    ("image_chunk", 2.0), ("layer", ["convs.1"]), ("layer", "conv1")])
def test_a_partial_with_a_damaged_layer_record_keeps_only_its_finished_layers(
        gen, clip, field, value):
    """The checksum covers the tensors, not the JSON record of the layer under way: a
    record with a field missing, of the wrong type or out of range is dropped (its layer
    starts over, the finished layer is kept) instead of failing every later run."""
    entry, info = _partial_with_a_layer_under_way(gen, clip)
    current = dict(info["current"])
    if value is None:
        del current[field]
    else:
        current[field] = value
    tensors = entry.load_partial()[0]
    entry.save_partial(tensors, {k: v for k, v in info.items() if k != "info_sha256"}
                       | {"current": current})
    counting = CountingClip(clip)
    _, resumed = run_job(precompute(gen, counting, config=PARTIAL_CFG))
    assert counting.images == 16 * 2 * 2  # convs.1 from the start, conv1 not again
    plain = run_job(gd.compute_relevance(gen, clip, pc.load_stats("gen-hash", STATS_SAMPLES),
                                         PARTIAL_CFG))[1]
    assert torch.allclose(resumed.relevance.vectors, plain.vectors, atol=1e-6)


@pytest.mark.parametrize("done", ["conv1", [["conv1"]], {"conv1": 1}, 7])
def test_a_partial_with_a_damaged_list_of_finished_layers_still_resumes(gen, clip, done):
    entry, info = _partial_with_a_layer_under_way(gen, clip)
    tensors = entry.load_partial()[0]
    entry.save_partial(tensors, {k: v for k, v in info.items() if k != "info_sha256"}
                       | {"done": done})
    _, resumed = run_job(precompute(gen, clip, config=PARTIAL_CFG))
    plain = run_job(gd.compute_relevance(gen, clip, pc.load_stats("gen-hash", STATS_SAMPLES),
                                         PARTIAL_CFG))[1]
    assert torch.allclose(resumed.relevance.vectors, plain.vectors, atol=1e-6)


def test_a_changed_number_in_a_partials_info_is_caught_by_its_checksum(gen, clip):
    """A digit changed in the header (channels_done 8 -> 9) is still a valid record: only
    the info's own checksum tells; the layer under way then starts over (before, channel 8
    was skipped and got a zero vector)."""
    entry, _ = _partial_with_a_layer_under_way(gen, clip)
    raw = entry.partial_path.read_bytes()
    old, new = b'channels_done\\": 8,', b'channels_done\\": 9,'  # JSON inside JSON
    assert raw.count(old) == 1
    entry.partial_path.write_bytes(raw.replace(old, new))
    counting = CountingClip(clip)
    _, resumed = run_job(precompute(gen, counting, config=PARTIAL_CFG))
    assert counting.images == 32 * 2 * 2  # started over: the whole file is suspect
    plain = run_job(gd.compute_relevance(gen, clip, pc.load_stats("gen-hash", STATS_SAMPLES),
                                         PARTIAL_CFG))[1]
    assert torch.allclose(resumed.relevance.vectors, plain.vectors, atol=1e-6)


def test_entries_written_without_an_info_checksum_still_load(gen, clip):
    """The shipped demo data predates the info checksum."""
    _, data = run_job(precompute(gen, clip))
    entry = pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES, CFG, pc.DEFAULT_SAMPLER)
    tensors, info = entry.load()
    assert "info_sha256" in info
    entry.save(tensors, {k: v for k, v in info.items() if k != "info_sha256"})
    again = pc.load_pack_data("gen-hash", "clip-hash", STATS_SAMPLES, CFG)
    assert again is not None and torch.equal(again.relevance.vectors, data.relevance.vectors)


@pytest.fixture
def disk_full(monkeypatch):
    """Every cache write fails as on a full disk (the cache writes through atomic_path)."""
    import contextlib
    import errno

    import editor.core.cache as cache

    @contextlib.contextmanager
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
        yield

    monkeypatch.setattr(cache, "atomic_path", full)


def test_a_precompute_that_cannot_write_the_cache_still_gives_its_pack(gen, clip, disk_full):
    """Before, the first write (the style statistics) raised and the work was lost; now
    the pack comes with the reason it was not kept, and nothing is on disk."""
    from editor.core.paths import cache_dir

    _, data = run_job(precompute(gen, clip))
    assert data is not None and data.relevance.vectors.shape == (48, 32)
    assert "No space left on device" in data.save_error and "next time" in data.save_error
    assert not any(cache_dir().rglob("*.safetensors"))


def test_a_cancelled_precompute_that_cannot_save_its_progress_says_so(gen, clip, disk_full):
    first = CountingClip(clip, stop_after=4)
    with pytest.raises(pc.Cancelled, match="could not be saved"):
        run_job(precompute(gen, first, cancel=first.should_stop))


def test_a_saved_pack_has_no_save_error(gen, clip):
    assert run_job(precompute(gen, clip))[1].save_error is None


def test_a_covariation_that_cannot_be_written_is_still_returned(gen, clip, tmp_path,
                                                                disk_full):
    entry = pc.covariation_cache("tiny-gen", "tiny-clip", 16, 0.7, root=tmp_path)
    *_, cov = list(pc.covariation_job(gen, clip, entry, n_samples=16, psi=0.7))
    assert cov.n_samples == 16 and "co-variation" in cov.save_error
    assert not entry.path.exists()


def test_the_pack_job_reports_what_it_could_not_save_and_keeps_it(tmp_path, monkeypatch,
                                                                  disk_full):
    """OpenPack.precompute: the pack and its co-variation are kept in memory for the
    session; the final PackData's save_error names both."""
    from editor.core.checkpoints import save_generator
    from editor.engine.packs import ClipSource, open_pack

    monkeypatch.setattr(pc, "COVARIATION_SAMPLES", 16)
    gen_path = save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=4),
                              tmp_path / "g.safetensors")
    clip_path = make_tiny_clip().save(tmp_path / "clip.safetensors")
    pack = open_pack(gen_path, ClipSource(path=str(clip_path)), stats_samples=100,
                     relevance_config=gd.RelevanceConfig(n_images=1, layers=("conv1",)))
    *_, data = list(pack.precompute())
    assert pack.data is data and pack.covariation is not None and pack.has_directions
    assert "global directions" in data.save_error and "co-variation" in data.save_error


def test_precompute_progress_is_one_monotonic_bar_over_its_phases(gen, clip):
    """Before, the statistics counted to 300/300 (100 %, 'a few seconds left'), then the
    relevance began again at 0."""
    progress, _ = run_job(precompute(gen, clip))
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    stats = [p for p in progress if "style statistics" in p.message]
    relevance = [p for p in progress if "relevance" in p.message]
    assert stats and all(p.message.startswith("step 1 of 2: ") for p in stats)
    assert relevance and all(p.message.startswith("step 2 of 2: ") for p in relevance)
    assert stats[-1].fraction < 0.5 and stats[-1].eta_s is None  # no rate measured yet


def test_the_pack_job_estimates_the_whole_job_co_variation_included(tmp_path, monkeypatch):
    from editor.core.checkpoints import save_generator
    from editor.engine.packs import ClipSource, open_pack

    monkeypatch.setattr(pc, "COVARIATION_SAMPLES", 64)
    gen_path = save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=4),
                              tmp_path / "g.safetensors")
    clip_path = make_tiny_clip().save(tmp_path / "clip.safetensors")
    pack = open_pack(gen_path, ClipSource(path=str(clip_path)), stats_samples=100,
                     relevance_config=gd.RelevanceConfig(n_images=1, layers=("conv1",),
                                                         batch_size=4))
    progress = [p for p in pack.precompute() if isinstance(p, gd.Progress)]
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    relevance = [p for p in progress if p.message.startswith("step 2 of 3: relevance")]
    covariation = [p for p in progress if p.message.startswith("step 3 of 3: co-variation")]
    assert relevance and covariation
    # At the end of the relevance phase the co-variation is still to come, and it says so.
    assert relevance[-1].fraction < 1.0 and relevance[-1].eta_s > 0
    assert all(p.eta_s is not None for p in covariation)


# --------------------------------------------------------------------------- CLI


def test_cli_precompute_prints_progress_and_then_uses_the_cache(tmp_path, capsys):
    from editor.cli import main
    from editor.core.checkpoints import save_generator

    path = save_generator(make_tiny_generator(resolution=16, channel_max=16, seed=2),
                          tmp_path / "g.safetensors")
    cfg = tmp_path / "clip.json"
    cfg.write_text(json.dumps(CLIP_CFG))
    argv = ["precompute", "--generator", str(path), "--clip-config", str(cfg),
            "--n-images", "2", "--stats-samples", "100", "--layers", "convs.3", "--threads", "1"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "pack ready (in" in out and "16 channels x 32 dims" in out
    assert "100.0%" in err and "ETA" in err
    assert main(argv) == 0
    assert "from the cache" in capsys.readouterr().out
    assert main(argv[:-4] + ["--layers", "to_rgb1"]) == 1
    assert "toRGB" in capsys.readouterr().err


def test_cli_precompute_into_a_folder_is_what_a_pack_with_bundled_data_reads(tmp_path,
                                                                            capsys):
    """How the demo pack's shipped directions are made: `--into` writes the pack where
    OpenPack.cached_data looks first, and the user cache stays empty."""
    from editor.cli import main
    from editor.core.checkpoints import save_generator
    from editor.core.paths import cache_dir
    from editor.engine.packs import ClipSource, open_pack

    gen_path = save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=4),
                              tmp_path / "g.safetensors")
    clip_path = make_tiny_clip().save(tmp_path / "clip.safetensors")
    bundle = tmp_path / "directions"
    assert main(["precompute", "--generator", str(gen_path), "--clip-checkpoint",
                 str(clip_path), "--n-images", "2", "--stats-samples", "100", "--threads",
                 "1", "--into", str(bundle)]) == 0
    assert str(bundle) in capsys.readouterr().out
    config = gd.RelevanceConfig(n_images=2)
    pack = open_pack(gen_path, ClipSource(path=str(clip_path)), relevance_config=config,
                     stats_samples=100)
    assert pack.data is None  # not in the user cache
    assert not any(cache_dir().rglob("*.safetensors"))
    pack.bundled_root = bundle
    assert pack.cached_data() is not None and pack.has_directions


# --------------------------------------------------------------------------- gated text edits


@pytest.fixture(scope="module")
def covariation(gen, clip, tmp_path_factory):
    entry = pc.covariation_cache("tiny-gen", "tiny-clip", 64, 0.7,
                                 root=tmp_path_factory.mktemp("covariation"))
    *progress, cov = list(pc.covariation_job(gen, clip, entry, n_samples=64, psi=0.7))
    assert progress and all(isinstance(p, gd.Progress) for p in progress)
    assert progress[-1].done == 64 and "co-variation" in progress[-1].message
    again = pc.load_covariation(entry)  # what the job wrote reads back the same
    assert again is not None and again.n_samples == 64
    assert torch.equal(again.cross, cov.cross) and torch.equal(again.style_std, cov.style_std)
    return cov


def test_gated_text_edit_moves_only_channels_that_vary_with_the_text(gen, clip, relevance,
                                                                      stats, covariation):
    ctx = EditingContext(gen, clip, stats, relevance, covariation=covariation)
    params = {"neutral": "a face", "target": "a smiling face", "beta": 0.0,
              "auto_beta": True, "min_channels": 8}
    plain = ctx.direction(Edit("global", params))
    gated = ctx.direction(Edit("global", {**params, "gate": True}))
    dt = gd.text_direction(clip, "a face", "a smiling face")
    r = gd.channel_scores(relevance, dt)
    corr = covariation.correlation(dt)[relevance.channels]
    moved = gated.delta[relevance.channels] != 0
    assert 0 < int(moved.sum()) <= 8 and gated.n_channels == int(moved.sum())
    assert (torch.sign(r[moved]) == torch.sign(corr[moved])).all()  # the two agree
    assert not torch.equal(plain.delta, gated.delta)
    # the recipe carries the gate, and replaying it makes the same edit
    session = Session(Source(seed=3, psi=0.7), (Edit("global", {**params, "gate": True},
                                                      strength=2.0),))
    again = Session.from_json(session.to_json())
    assert again.edits[0].params["gate"] is True
    fresh = EditingContext(gen, clip, stats, relevance, covariation=covariation)
    assert torch.equal(fresh.render(again), ctx.render(session))


def test_gated_edit_without_covariation_is_a_clear_error(gen, clip, relevance, stats):
    ctx = EditingContext(gen, clip, stats, relevance)
    edit = Edit("global", {"neutral": "a face", "target": "a smiling face", "beta": 0.0,
                           "gate": True}, strength=1.0)
    with pytest.raises(EditError, match="co-variation") as error:
        ctx.compose(Session(edits=(edit,)))
    # what to do in the window, where it shows (the CLI measures it first): "run the
    # precompute" offered to replace an imported pack's directions (hours)
    assert "Models ▸ Precompute directions measures it" in str(error.value)
    assert "untick \"Only channels that vary with the text\"" in str(error.value)


def test_covariation_cache_rejects_damage_and_cancel_keeps_only_progress(gen, clip,
                                                                          tmp_path):
    entry = pc.covariation_cache("tiny-gen", "tiny-clip", 16, 0.7, root=tmp_path)
    stop = threading.Event()
    stop.set()
    with pytest.raises(pc.Cancelled, match="progress saved, run again to resume"):
        list(pc.covariation_job(gen, clip, entry, n_samples=16, psi=0.7, cancel=stop))
    assert pc.load_covariation(entry) is None
    assert [p.name for p in tmp_path.rglob("*.safetensors")] == [entry.partial_path.name]
    list(pc.covariation_job(gen, clip, entry, n_samples=16, psi=0.7))
    assert not entry.partial_path.exists()  # the finished entry replaces the progress
    (path,) = tmp_path.rglob("*.safetensors")
    data = bytearray(path.read_bytes())
    data[-8:] = b"\x00" * 8  # damage the tensor data: the checksum no longer matches
    path.write_bytes(bytes(data))
    assert pc.load_covariation(entry) is None


def test_an_interrupted_covariation_resumes_where_it_stopped(gen, clip, tmp_path):
    # Its 1,000 samples take about half an hour at 1024 px on a CPU; a cancel, Ctrl-C or
    # closed window threw them all away.
    entry = pc.covariation_cache("tiny-gen", "tiny-clip", 24, 0.7, root=tmp_path)
    seen = []

    def after_two_batches() -> bool:
        return len(seen) >= 2

    def run(**kwargs):
        job = pc.resumable_sampling(gen, clip, 24, pc.COVARIATION_SEED_BASE, 0.7, None, entry,
                                    batch_size=8, **kwargs)
        while True:
            try:
                seen.append(next(job).done)
            except StopIteration as end:
                return end.value

    with pytest.raises(pc.Cancelled, match=r"cancelled at 66.7%; progress saved"):
        run(cancel=after_two_batches)
    seen.clear()
    resumed = run()
    assert seen == [24]  # only the last batch was drawn again
    from editor.methods.covariation import Sampling

    *_, expected = list(Sampling(gen, clip, 24, pc.COVARIATION_SEED_BASE, 0.7, None, 8))
    assert torch.equal(resumed.w, expected.w)
    assert torch.allclose(resumed.embeddings, expected.embeddings, atol=1e-6)
    # what covariation_job reads back after a stop, through its own entry
    entry2 = pc.covariation_cache("tiny-gen", "tiny-clip", 24, 0.7, root=tmp_path / "c")
    job = pc.covariation_job(gen, clip, entry2, n_samples=24, psi=0.7)
    next(job)
    job.close()  # the window dropping the job (closing it): the samples are kept
    assert entry2.partial_path.exists()


@pytest.mark.parametrize("n_samples", [float("inf"), "16", [16], 1, None])
def test_a_covariation_entry_with_a_damaged_count_counts_as_absent(gen, clip, tmp_path,
                                                                   n_samples):
    entry = pc.covariation_cache("tiny-gen", "tiny-clip", 16, 0.7, root=tmp_path)
    list(pc.covariation_job(gen, clip, entry, n_samples=16, psi=0.7))
    tensors, info = entry.load()
    info = {k: v for k, v in info.items() if k != "info_sha256"} | {"n_samples": n_samples}
    entry.save(tensors, info)  # as an older version wrote it: no info checksum
    assert pc.load_covariation(entry) is None


@pytest.mark.parametrize("settings", [[1, 2], "psi", 3])
def test_a_pack_whose_settings_record_is_damaged_still_loads(gen, clip, settings):
    """The settings in a pack's info are only shown; the pack's tensors are sound."""
    _, data = run_job(precompute(gen, clip))
    entry = pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES, CFG, pc.DEFAULT_SAMPLER)
    tensors, info = entry.load()
    info = {k: v for k, v in info.items() if k != "info_sha256"} | {"relevance": settings}
    entry.save(tensors, info)
    again = pc.load_pack_data("gen-hash", "clip-hash", STATS_SAMPLES, CFG)
    assert again is not None and again.relevance.config == {}
    assert torch.equal(again.relevance.vectors, data.relevance.vectors)


@pytest.mark.parametrize("kwargs,match", [
    ({"k_sigma": float("nan")}, "k_sigma"), ({"k_sigma": 0.0}, "k_sigma"),
    ({"k_sigma": float("inf")}, "k_sigma"), ({"n_images": 0}, "n_images"),
    ({"batch_size": 0}, "batch_size"), ({"seed": -1}, "seed"), ({"seed": 2**70}, "seed"),
    ({"psi": float("nan")}, "psi"),
])
def test_relevance_settings_that_would_write_a_useless_pack_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gd.RelevanceConfig(**kwargs)


def test_cli_precompute_refuses_bad_settings_before_any_work(tmp_path, capsys):
    from editor.cli import main
    from editor.core.checkpoints import save_generator
    from editor.core.paths import cache_dir

    gen_path = save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=4),
                              tmp_path / "g.safetensors")
    clip_path = make_tiny_clip().save(tmp_path / "clip.safetensors")
    base = ["precompute", "--generator", str(gen_path), "--clip-checkpoint", str(clip_path),
            "--n-images", "2", "--stats-samples", "100", "--threads", "1"]
    for extra, match in ((["--k-sigma", "nan"], "not a finite number"),
                         (["--k-sigma", "0"], "not above 0"),
                         (["--threads", "-1"], "out of range"),
                         (["--seed", str(2**70)], "out of range"),
                         # every base image's codes are held: a billion filled the memory
                         (["--n-images", "1000000000"], "out of range (use from 1 to 10000)")):
        with pytest.raises(SystemExit):
            main(base + extra)
        assert match in capsys.readouterr().err
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    for extra, match in ((["--into", str(a_file)], "cannot write the pack into"),
                         (["--device", "meta"], "not supported"),
                         # every base image the average face: a pack of zero directions
                         (["--psi", "0"], "--psi 0 makes every base image the average")):
        assert main(base + extra) == 1
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err
    assert a_file.read_text() == "mine"
    assert not list(cache_dir().rglob("*.safetensors"))


def test_style_statistics_are_taken_at_the_base_images_truncation(gen, clip):
    # Official StyleCLIP samples both at psi 0.7. Statistics of untruncated samples made
    # sigma, and so every edit at a given alpha, 1/0.7 = 1.43 times the official size.
    _, data = run_job(precompute(gen, clip, config=gd.RelevanceConfig(
        n_images=1, layers=("conv1",), psi=0.7)))
    untruncated = gd.compute_style_stats(gen, STATS_SAMPLES, batch=500, psi=1.0)
    moving = untruncated.std > 1e-6
    ratio = data.stats.std[moving] / untruncated.std[moving]
    assert torch.allclose(ratio, torch.full_like(ratio, 0.7), atol=1e-4)
    # other truncation, other statistics (and cache entries)
    assert pc.load_stats("gen-hash", STATS_SAMPLES, psi=0.7) is not None
    assert pc.load_stats("gen-hash", STATS_SAMPLES, psi=1.0) is None


def _cli_precompute(tmp_path, *extra, layers=("convs.3",)):
    """`atelier precompute` of a tiny generator; layers=None: every layer, the default."""
    from editor.cli import main
    from editor.core.checkpoints import save_generator

    path = save_generator(make_tiny_generator(resolution=16, channel_max=16, seed=2),
                          tmp_path / "g.safetensors")
    cfg = tmp_path / "clip.json"
    cfg.write_text(json.dumps(CLIP_CFG))
    return main(["precompute", "--generator", str(path), "--clip-config", str(cfg),
                 "--n-images", "2", "--stats-samples", "100",
                 *(["--layers", *layers] if layers else []), "--threads", "1", *extra])


def _finished_packs() -> list:
    from editor.core.paths import cache_dir

    return [p for p in (cache_dir() / "packs" / pc.PACK_KIND).glob("*.safetensors")
            if ".partial" not in p.name]


def test_cli_precompute_refuses_an_unwritable_place_holding_a_damaged_pack(tmp_path, capsys,
                                                                         monkeypatch):
    # Only the file's name was looked at: a damaged pack there skipped the write check, and
    # the whole precompute ran (hours on FFHQ) before "computed but not kept".
    assert _cli_precompute(tmp_path) == 0
    (pack,) = _finished_packs()
    pack.write_bytes(pack.read_bytes()[:3000])
    monkeypatch.setattr("editor.cli.precompute.unwritable_reason",
                        lambda folder: "Read-only file system")
    monkeypatch.setattr(gd, "compute_relevance", lambda *a, **k: pytest.fail("computed"))
    capsys.readouterr()
    assert _cli_precompute(tmp_path) == 1
    err = capsys.readouterr().err
    assert "cannot write the pack into" in err and "Read-only file system" in err


def test_cli_precompute_naming_every_layer_reads_the_default_pack(tmp_path, capsys,
                                                                  monkeypatch):
    # --layers with every editable layer computes what the default computes, but under a
    # cache entry of its own: computed again, and never found by the window
    assert _cli_precompute(tmp_path, layers=None) == 0
    specs = make_tiny_generator(resolution=16, channel_max=16).style_specs
    every = [s.name for s in specs if not s.is_torgb]
    monkeypatch.setattr(gd, "compute_relevance", lambda *a, **k: pytest.fail("computed"))
    capsys.readouterr()
    assert _cli_precompute(tmp_path, layers=list(reversed(every))) == 0
    assert "pack ready (from the cache)" in capsys.readouterr().out
    assert len(_finished_packs()) == 1


def test_cli_precompute_refuses_a_place_it_cannot_write_before_the_work(tmp_path, capsys,
                                                                        monkeypatch):
    # It computed everything, printed "pack ready" and a path with no file there, exit 0.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(gd, "compute_relevance", lambda *a, **k: pytest.fail("computed"))
    assert _cli_precompute(tmp_path, "--into", str(blocker / "packs")) == 1
    err = capsys.readouterr().err
    assert f"cannot write the pack into {blocker / 'packs'}" in err and "not be kept" in err


def test_cli_precompute_says_when_its_pack_could_not_be_kept(tmp_path, capsys, disk_full):
    assert _cli_precompute(tmp_path) == 1
    out, err = capsys.readouterr()
    assert "computed but not kept" in err and "No space left on device" in err
    assert "pack ready" not in out


def test_cli_precompute_refuses_to_keep_a_nan_pack(tmp_path, capsys):
    # k_sigma 1e39 is a finite float but overflows float32: the NaN pack was saved and
    # "ready", then refused as damaged and computed again on every run.
    from editor.core.paths import cache_dir

    assert _cli_precompute(tmp_path, "--k-sigma", "1e39") == 1
    assert "NaN or infinity" in capsys.readouterr().err
    assert not list((cache_dir() / "packs" / pc.PACK_KIND).glob("*.safetensors"))


def test_ctrl_c_outside_a_commands_own_loop_is_one_line_and_exit_130(tmp_path, capsys,
                                                                     monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("editor.core.checkpoints.load_generator", interrupted)
    assert _cli_precompute(tmp_path) == 130
    assert capsys.readouterr().err.strip().endswith("atelier precompute: interrupted")


def test_cli_precompute_reads_a_finished_pack_from_a_place_it_cannot_write(tmp_path, capsys,
                                                                          monkeypatch):
    # The write check ran before the cache was looked at: a read-only folder holding the
    # finished pack (shipped data, a shared cache) was refused.
    assert _cli_precompute(tmp_path) == 0
    monkeypatch.setattr("editor.cli.precompute.unwritable_reason",
                        lambda folder: "Read-only file system")
    assert _cli_precompute(tmp_path) == 0
    assert "pack ready (from the cache)" in capsys.readouterr().out


def test_relevance_renders_as_many_per_call_as_the_generator_allows(gen, clip, stats,
                                                                    monkeypatch):
    # The window and `atelier edit` precompute with RelevanceConfig(): 64 renders per call
    # at any size, about 33 GB at 1024 px (only `atelier precompute` chose a smaller batch).
    seen = []
    sums = gd._unit_difference_sums

    def spy(*args):
        seen.append(args[-1])
        return sums(*args)

    monkeypatch.setattr(gd, "_unit_difference_sums", spy)
    monkeypatch.setattr(gd, "suggested_batch_size", lambda g: 3)
    run_job(gd.compute_relevance(gen, clip, stats, gd.RelevanceConfig(n_images=2,
                                                                      layers=("convs.2",))))
    assert seen and set(seen) == {3}


def test_a_relevance_step_is_one_generator_call_so_cancel_comes_soon(gen, clip, stats,
                                                                     monkeypatch):
    # One channel over every image (both signs) was a step: 200 renders at 100 images,
    # minutes on a CPU at 256 px before a cancel was seen (and quitting then crashed).
    encoded = []
    encode = clip.encode_images
    monkeypatch.setattr(clip, "encode_images",
                        lambda img, **k: encoded.append(len(img)) or encode(img, **k))
    cfg = gd.RelevanceConfig(n_images=6, batch_size=4, layers=("convs.2",))
    job = gd.compute_relevance(gen, clip, stats, cfg)
    next(job)  # "starting"
    step = next(job)
    assert isinstance(step, gd.Progress) and step.done == 2  # one channel x two images
    assert encoded == [4]  # both signs of each: one call of the batch size


def test_a_partial_saved_with_another_image_chunk_resumes_as_saved(gen, clip, stats):
    # The image chunk follows the batch size: a partial saved with another one (an older
    # version, or --batch-size) restarted its layer while the progress still counted the
    # saved work, and ran past 100 % with a negative time left.
    layers = ("convs.2",)
    state = gd.RelevanceState()
    first = gd.compute_relevance(gen, clip, stats,
                                 gd.RelevanceConfig(n_images=6, batch_size=64, layers=layers),
                                 state=state)
    next(p for p in first if isinstance(p, gd.Progress) and p.done > 0)
    assert state.current is not None and state.current.image_chunk == 6
    progress, rel = run_job(gd.compute_relevance(
        gen, clip, stats, gd.RelevanceConfig(n_images=6, batch_size=8, layers=layers),
        state=state))
    assert progress[-1].done == progress[-1].total and progress[-1].fraction == 1.0
    assert all(p.eta_s is None or p.eta_s >= 0 for p in progress)
    whole = run_job(gd.compute_relevance(gen, clip, stats, gd.RelevanceConfig(
        n_images=6, batch_size=8, layers=layers)))[1]
    assert torch.allclose(rel.vectors, whole.vectors, atol=1e-5)


def _throw_cancel_at(job, when):
    """What a job runner does on cancel: Cancelled() thrown in where the job waits, at
    the first Progress that `when` accepts. Returns the Cancelled the job raised."""
    for item in job:
        if isinstance(item, gd.Progress) and when(item):
            with pytest.raises(pc.Cancelled) as stopped:
                job.throw(pc.Cancelled())
            return stopped.value
    raise AssertionError("the job ended before the cancel")


def test_a_cancel_thrown_into_the_relevance_says_its_progress_is_saved(gen, clip):
    # the window's cancel (Cancelled thrown in at a yield) ended with no note, though the
    # relevance so far was saved
    stopped = _throw_cancel_at(precompute(gen, clip), lambda p: "convs.0" in p.message)
    assert "progress saved, run again to resume" in str(stopped)
    assert pc.partial_summary(gen, "gen-hash", "clip-hash", STATS_SAMPLES, CFG)[0] >= 32


def test_a_cancel_thrown_into_the_sampling_says_its_samples_are_saved(gen, clip, tmp_path):
    entry = pc.covariation_cache("tiny-gen", "tiny-clip", 24, 0.7, root=tmp_path)
    job = pc.covariation_job(gen, clip, entry, n_samples=24, psi=0.7)
    stopped = _throw_cancel_at(job, lambda p: p.done > 0)
    assert str(stopped).startswith("co-variation cancelled at ")
    assert "progress saved, run again to resume" in str(stopped)
    assert entry.partial_path.exists()


@pytest.mark.parametrize("phase", ["relevance", "co-variation"])
def test_a_window_precompute_cancelled_says_its_progress_is_saved(tmp_path, phase):
    # The window's job runs the pack's precompute, whose plain loops kept the runner's
    # cancel from the phase at work: the job ended with no note though progress was kept.
    from editor.core.checkpoints import save_generator
    from editor.engine.packs import ClipSource, open_pack

    gen_path = save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=4),
                              tmp_path / "g.safetensors")
    clip_path = make_tiny_clip().save(tmp_path / "clip.safetensors")
    pack = open_pack(gen_path, ClipSource(path=str(clip_path)), stats_samples=100,
                     relevance_config=gd.RelevanceConfig(n_images=2, layers=("conv1",)))
    stopped = _throw_cancel_at(pack.precompute(),
                               lambda p: f"{phase}: " in p.message)
    assert "progress saved, run again to resume" in str(stopped)


def test_relay_passes_a_thrown_cancel_on_to_the_job_it_relays():
    def inner():
        try:
            yield gd.Progress(1, 2, "half")
        except pc.Cancelled:
            raise pc.Cancelled("half kept") from None
        yield gd.Progress(2, 2, "all")
        return "done"

    relayed = pc.relay(inner(), lambda p: gd.Progress(p.done, p.total, "relayed " + p.message))
    assert next(relayed).message == "relayed half"
    with pytest.raises(pc.Cancelled, match="half kept"):
        relayed.throw(pc.Cancelled())

    def result_last():
        yield gd.Progress(1, 1, "x")
        yield "result"

    def outer():  # `yield from` relay gives the last item that is not a Progress
        yield (yield from pc.relay(result_last()))

    assert [getattr(x, "message", x) for x in outer()] == ["x", "result"]


def test_cli_precompute_out_of_memory_says_the_progress_is_kept_and_what_to_change(
        tmp_path, capsys, monkeypatch):
    from editor.cli import main
    from editor.core.checkpoints import save_generator

    def out_of_memory(*_a, **_k):
        yield from ()
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB. GPU 0 "
                                     "has a total capacity of 7.79 GiB of which 100.00 MiB is "
                                     "free. PYTORCH_CUDA_ALLOC_CONF=...")

    monkeypatch.setattr(pc, "precompute_pack", out_of_memory)
    gen_path = save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=4),
                              tmp_path / "g.safetensors")
    clip_path = make_tiny_clip().save(tmp_path / "clip.safetensors")
    assert main(["precompute", "--generator", str(gen_path), "--clip-checkpoint",
                 str(clip_path), "--n-images", "2", "--stats-samples", "100", "--batch-size",
                 "8"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("atelier precompute: error: out of GPU memory (asked for 512.00 MiB more; "
                   "100.00 MiB of 7.79 GiB free on GPU 0); progress saved: run again with a "
                   "smaller --batch-size (this run: 8)")


def test_a_gpu_jobs_batch_follows_its_free_memory(monkeypatch):
    # A fixed 2 GB budget gave 2 renders per 1024 px call on an 80 GB GPU as on a laptop.
    from types import SimpleNamespace

    from editor.core.generator import GeneratorConfig

    ffhq = SimpleNamespace(config=GeneratorConfig(resolution=1024),
                           w_avg=torch.zeros(1, device="meta"))
    assert gd.suggested_batch_size(ffhq) == 2  # not a GPU: the CPU's budget
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (70 * gib, 80 * gib))
    assert gd.default_budget_mb(torch.device("cuda:0")) == 32768  # half the free, at most 32 GB
    assert gd.suggested_batch_size(ffhq, gd.default_budget_mb(torch.device("cuda:0"))) == 32
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1 * gib, 80 * gib))
    assert gd.default_budget_mb(torch.device("cuda:0")) == gd.CPU_BUDGET_MB  # never less

    def no_driver(device=None):
        raise RuntimeError("Found no NVIDIA driver on your system")

    monkeypatch.setattr(torch.cuda, "mem_get_info", no_driver)
    assert gd.default_budget_mb(torch.device("cuda:0")) == gd.CPU_BUDGET_MB


# --------------------------------------------------------------------------- long runs


def _seconds_per_pair(gen) -> dict[int, float]:
    index = {s.name: i for i, s in enumerate(gen.style_specs)}
    return {index["conv1"]: 4.0, index["convs.0"]: 2.0, index["convs.2"]: 1.0}


def test_the_time_left_weighs_each_layers_pairs_by_their_cost(gen, clip, stats, monkeypatch):
    """A pair of an early layer renders nearly all the generator, one of a late layer its
    last layers (at 1024 px 16.7 s against 4.3 s a pair): the time left counts the pairs
    still to do at their own cost, not every one at the rate of the layer under way
    (2,800 h shown at conv1). Here a fake clock runs each pair for its layer's seconds and
    the cost model says the same."""
    seconds = _seconds_per_pair(gen)
    now = [0.0]
    monkeypatch.setattr(gd, "time", SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(gd, "pair_costs", lambda g, c, layers: {i: seconds[i] for i in layers},
                        raising=False)
    real = gd._layer_job

    def timed(gen_, clip_, codes, stats_, layer, config, state):
        for units in real(gen_, clip_, codes, stats_, layer, config, state):
            now[0] += units * seconds[layer]
            yield units

    monkeypatch.setattr(gd, "_layer_job", timed)
    progress, _ = run_job(gd.compute_relevance(gen, clip, stats, CFG))
    after_conv1 = [p for p in progress if "conv1" in p.message][-1]
    assert after_conv1.done == 32
    # 32 pairs at 2 s and 32 at 1 s; counted at conv1's 4 s a pair it said 256 s
    assert after_conv1.eta_s == pytest.approx(32 * 2.0 + 32 * 1.0)
    assert progress[1].eta_s == pytest.approx(16 * 4.0 + 32 * 2.0 + 32 * 1.0)
    # what the Progress counts, for a caller's estimate before the job
    assert progress[-1].total == gd.relevance_work(gen, CFG) == 3 * 16 * 2


def test_the_cost_model_makes_early_layers_dearer_and_counts_the_encode_once(clip):
    big = make_tiny_generator(resolution=64, channel_max=32)
    layers = gd.selected_layers(big.style_specs, None)
    with_clip = gd.pair_costs(big, clip, layers)
    costs = [with_clip[i] for i in layers]
    assert all(a > b > 0 for a, b in zip(costs, costs[1:], strict=False))
    assert costs[0] > 3 * costs[-1]  # most of the generator against its last layers
    encode = gd._encode_cost(clip)
    assert encode > 0  # the same for every layer
    without = gd.pair_costs(big, object(), layers)  # an encoder that shows no tower
    assert all(with_clip[i] - without[i] == pytest.approx(encode) for i in layers)


def test_the_order_or_repetition_of_layers_does_not_change_the_pack(gen, clip):
    def key(*layers):
        return pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES,
                             gd.RelevanceConfig(n_images=2, layers=layers)).key

    assert key("conv1", "convs.0") == key("convs.0", "conv1") == key("convs.0", "conv1",
                                                                     "conv1")
    assert key("conv1", "conv1") == key("conv1")
    assert key("convs.10", "convs.2") == key("convs.2", "convs.10")  # not the text order
    # a selection typed in generator order keeps the key it always had
    assert gd.RelevanceConfig(layers=("conv1", "convs.0")).to_dict()["layers"] == \
        ["conv1", "convs.0"]
    # hours into a run, a restart with the layers in another order resumes it
    typed = gd.RelevanceConfig(n_images=2, batch_size=32, layers=("convs.2", "conv1",
                                                                  "convs.0", "convs.2"))
    first = CountingClip(clip, stop_after=4)
    with pytest.raises(pc.Cancelled):
        run_job(precompute(gen, first, cancel=first.should_stop, config=typed))
    second = CountingClip(clip)
    progress, data = run_job(precompute(gen, second, config=CFG))
    assert progress[0].message == "relevance: resuming" and second.calls == 6 - 4
    assert data.relevance.vectors.shape == (48, 32)


def test_the_bundled_demo_pack_still_loads_under_its_key():
    from editor.core.cache import stored_keys
    from editor.engine.packs import DEMO_DIRECTIONS, DEMO_RELEVANCE, DEMO_STATS_SAMPLES

    (key,) = stored_keys(pc.PACK_KIND, pc.PACK_VERSION, DEMO_DIRECTIONS)
    assert key["relevance"] == DEMO_RELEVANCE.to_dict()
    data = pc.load_pack_data(key["generator"], key["clip"], DEMO_STATS_SAMPLES, DEMO_RELEVANCE,
                             key["sampler"], DEMO_DIRECTIONS)
    assert data is not None and len(data.relevance.channels) > 0


def test_a_second_precompute_of_the_same_pack_is_refused_while_one_runs(gen, clip):
    first = precompute(gen, clip)
    for item in first:
        if isinstance(item, gd.Progress) and "layer convs.0" in item.message:
            break
    entry = pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES, CFG, pc.DEFAULT_SAMPLER)
    assert entry.lock_path.exists()
    second = CountingClip(clip)
    with pytest.raises(pc.EntryBusy, match=rf"another precompute of this pack is running "
                                           rf"\(pid {os.getpid()}\)"):
        run_job(precompute(gen, second))
    assert second.calls == 0  # refused before any work
    # another process too (the window and a command, two commands)
    script = ("import sys\nfrom pathlib import Path\nfrom editor.core.cache import "
              "TensorCache, EntryBusy\n"
              f"e = TensorCache({entry.kind!r}, {entry.key_parts!r}, {entry.version}, "
              f"Path({str(entry.dir.parent)!r}))\n"
              "try:\n    with e.lock('precompute'):\n        sys.exit(3)\n"
              "except EntryBusy as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"another precompute of this pack is running (pid {os.getpid()})" in out.stdout
    # another pack is not held up, and the first goes on to the end
    run_job(precompute(gen, clip, config=gd.RelevanceConfig(n_images=1, layers=("conv1",))))
    _, data = run_job(first)
    assert data is not None and entry.path.exists() and not entry.lock_path.exists()
    assert run_job(precompute(gen, clip))[1].from_cache


def test_a_partial_further_along_from_another_run_is_not_overwritten(gen, clip):
    entry = pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES, CFG, pc.DEFAULT_SAMPLER)
    # a run that started before the other saved anything (where there are no locks)
    late = gd.RelevanceState()
    writer = pc._PartialWriter(entry, gen, late, 60.0, CFG, lambda: 0.0)
    first = CountingClip(clip, stop_after=4)
    with pytest.raises(pc.Cancelled):
        run_job(precompute(gen, first, cancel=first.should_stop))
    further = entry.partial_path.read_bytes()
    late.done[0] = F.normalize(torch.ones(16, 32), dim=-1)  # one layer: 32 pairs against 64
    assert not writer.maybe_save(force=True)
    assert entry.partial_path.read_bytes() == further
    late.done.update({i: F.normalize(torch.ones(16, 32), dim=-1)
                      for i in gd.selected_layers(gen.style_specs, CFG.layers)})
    assert writer.maybe_save(force=True)  # further along now (96 pairs): saved


def test_a_nan_relevance_stops_at_the_step_that_gives_it(gen, clip):
    # --k-sigma 1e308 ran to 100% (hours on a real model), then said NaN
    counting = CountingClip(clip)
    cfg = gd.RelevanceConfig(n_images=2, layers=CFG.layers, batch_size=32, k_sigma=1e39)
    with pytest.raises(ValueError, match=r"NaN or infinity.*k_sigma 1e\+39") as raised:
        run_job(precompute(gen, counting, config=cfg))
    assert counting.calls == 1  # the first generator call of 6
    assert "(layer conv1)" in str(raised.value)
    entry = pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES, cfg, pc.DEFAULT_SAMPLER)
    assert not entry.partial_path.exists() and not entry.path.exists()


def test_a_resumed_pack_reports_the_time_of_every_run(gen, clip, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(pc, "time", SimpleNamespace(monotonic=lambda: now[0],
                                                    time_ns=time.time_ns))
    first = CountingClip(clip, stop_after=4)

    def cancel():  # each step is 50 s of work
        now[0] += 50.0
        return first.should_stop()

    with pytest.raises(pc.Cancelled):
        run_job(precompute(gen, first, cancel=cancel))
    entry = pc.pack_cache("gen-hash", "clip-hash", STATS_SAMPLES, CFG, pc.DEFAULT_SAMPLER)
    before = entry.load_partial()[1].get("seconds")
    now[0] = 1e6  # run again a day later; this run takes no time on the fake clock
    _, data = run_job(precompute(gen, clip))
    assert data.info["seconds"] >= 200  # was 0: this run's alone
    assert data.info["seconds"] == pytest.approx(before)


def test_a_pack_on_the_usual_clip_picked_as_its_installed_file_is_named_alone(tmp_path):
    """Models ▸ Model packs lists the zoo's ViT-B-32/openai file first, by its path: a real
    generator paired with it is on its usual CLIP, yet its precompute was titled
    "Precompute directions for g with <that CLIP>", as if it were another one."""
    from editor.core import zoo
    from editor.core.checkpoints import save_generator
    from editor.engine.packs import REFERENCE_CLIP, ClipSource, open_pack

    gen_path = save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=4),
                              tmp_path / "g.safetensors")
    path = zoo.models_dir() / "clip-vit-b-32-openai" / "clip.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    make_tiny_clip().save(path)  # (a stand-in for ViT-B-32.pt)
    zoo._record(zoo.InstalledModel(
        name="clip-vit-b-32-openai", path=path, sha256="0" * 64, size=path.stat().st_size,
        verified=False, entry="clip-vit-b-32-openai", kind="clip", format="open_clip",
        source="test", added="2026-12-07T00:00:00+00:00"))
    usual = open_pack(gen_path, ClipSource(path=str(path), arch=REFERENCE_CLIP.arch))
    assert usual.title == "g"
    other = make_tiny_clip(seed=1).save(tmp_path / "other.safetensors")
    assert open_pack(gen_path, ClipSource(path=str(other))).title == "g with tiny-clip"


def test_a_reread_never_shows_the_pack_without_its_directions(tmp_path, monkeypatch):
    """reread runs on the render thread after every precompute job while the window reads
    pack.data: it held None while the imported directions were read again from the disk
    (the window saw a pack without directions meanwhile) (helper-151)."""
    from editor.core.checkpoints import save_generator
    from editor.engine import packs
    from editor.engine.packs import ClipSource, open_pack

    gen_path = save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=4),
                              tmp_path / "g.safetensors")
    clip_path = make_tiny_clip().save(tmp_path / "clip.safetensors")
    pack = open_pack(gen_path, ClipSource(path=str(clip_path)))
    imported = SimpleNamespace(save_error=None)  # stands in for an imported fs3.npy
    pack.data = imported
    seen = []

    def load_imported_pack(*_args):
        seen.append(pack.data)
        return imported

    monkeypatch.setattr(packs, "find_computed_pack", lambda *a, **k: None)
    monkeypatch.setattr(pc, "load_imported_pack", load_imported_pack)
    pack.reread()
    assert seen and all(held is imported for held in seen)
    assert pack.data is imported


@pytest.mark.parametrize("psi", [0.0, -0.0])
def test_a_relevance_config_refuses_psi_zero(psi):
    # the CLI refused --psi 0; a config built by any other caller ran the whole job and
    # saved a pack of zero directions (every base image the average face)
    with pytest.raises(ValueError, match="psi 0 makes every base image the average face"):
        gd.RelevanceConfig(psi=psi)
    assert gd.RelevanceConfig(psi=-0.7).psi == -0.7  # a negative truncation still spreads


def test_a_guessed_phase_that_measures_its_own_time_left_is_believed():
    # a discovery's labelling (its size a guess, at the sampling's rate) said "about 20 s
    # left" for four minutes: its own measured time left was put aside for the guess
    phases = gd.JobPhases({"sampling": 100, "labelling": 10, "ranking": 5},
                          guessed={"labelling", "ranking"})
    assert phases.report("sampling", gd.Progress(50, 100, "s", 50.0)).eta_s == \
        pytest.approx(50 + 15 * 1.0)  # 1 s a unit, measured
    assert phases.report("labelling", gd.Progress(1, 60, "l")).eta_s == \
        pytest.approx(10 * 59 / 60 + 5)  # no time of its own yet: the guess
    measured = phases.report("labelling", gd.Progress(2, 60, "l", 290.0))
    assert measured.eta_s == pytest.approx(290 + 5)  # its own, then the rest at the rate
    assert phases.rate == 1.0  # a guessed phase never sets the rate
    # no counted phase measured (the samples were kept): the phase's own time, and the
    # later phases at its own rate; "ETA --" all through the labelling before
    kept = gd.JobPhases({"sampling": 100, "labelling": 10, "ranking": 5},
                        guessed={"labelling", "ranking"})
    kept.skip("sampling")
    assert kept.report("labelling", gd.Progress(1, 60, "l")).eta_s is None
    assert kept.report("labelling", gd.Progress(30, 60, "l", 40.0)).eta_s == \
        pytest.approx(40 + 5 * 40 / 5)
    assert kept.rate is None
