"""The render worker: latest request wins, stale work is dropped, failures don't kill it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from editor.engine.compose import EditingContext
from editor.engine.render_types import RenderRequest
from editor.engine.render_worker import RenderWorker
from editor.engine.renderer import Renderer, to_uint8_image
from editor.engine.session import Edit, Session, Source
from tests.conftest import make_tiny_generator


class _Collector:
    def __init__(self):
        self.results = []
        self.arrival = {}

    def __call__(self, result):
        self.results.append(result)
        self.arrival[result.seq] = time.perf_counter()


@pytest.fixture
def worker(qtbot):
    gen = make_tiny_generator(resolution=32)
    w = RenderWorker(Renderer(EditingContext(gen), device="cpu"))
    collector = _Collector()
    w.rendered.connect(collector)
    w.start()
    yield w, collector, gen
    w.stop()


def _session(gen, alpha: float) -> Session:
    n = sum(s.channels for s in gen.style_specs)
    delta = [0.0] * n
    delta[3] = 1.0
    edit = Edit("delta", {"delta": delta}, strength=alpha, id="e1")
    return Session(source=Source(seed=4)).add_edit(edit)


def test_fast_slider_drag_ends_on_the_last_value(worker, qtbot):
    w, collector, gen = worker
    ctx = EditingContext(gen)
    one = time.perf_counter()
    ctx.render(_session(gen, 0.0))
    one_render = time.perf_counter() - one
    requests = []
    for i in range(300):
        req = RenderRequest(_session(gen, -10 + 20 * i / 299), interactive=True)
        w.submit(req)
        requests.append(req)
    last_event = time.perf_counter()
    last = requests[-1]
    qtbot.waitUntil(lambda: last.seq in collector.arrival, timeout=20_000)
    lag = collector.arrival[last.seq] - last_event
    # stale requests were dropped, not queued: far fewer renders than events
    assert len(collector.results) < 100
    newest = max(collector.results, key=lambda r: r.seq)
    assert newest.seq == last.seq
    expected = to_uint8_image(ctx.render(last.session))
    assert np.array_equal(newest.image, expected)
    # the last image arrives within about one render (plus the one possibly in flight)
    assert lag < 3 * one_render + 0.5, (lag, one_render)


def test_stopping_waits_for_a_long_render_and_draws_nothing_after_it(qtbot):
    # a CPU's 1024 px render takes seconds: the window waited 5 s, then its thread was
    # destroyed still running, and Qt aborted the process as it quit
    gen = make_tiny_generator(resolution=8, channel_max=16)
    renderer = Renderer(EditingContext(gen), device="cpu")
    started, rendered = [], []
    render = renderer.render

    def slow(request, preview=False):
        started.append(request.seq)
        if len(started) == 1:
            time.sleep(5.5)
        rendered.append(request.seq)
        return render(request, preview)

    renderer.render = slow
    w = RenderWorker(renderer)
    w.start()
    w.submit(RenderRequest(_session(gen, 1.0)))
    qtbot.waitUntil(lambda: bool(started), timeout=10_000)
    w.submit(RenderRequest(_session(gen, 2.0)))  # waiting behind it as the window closes
    w.stop()
    assert w._thread.isFinished()
    assert rendered == started[:1]  # the one waiting was not drawn for nobody


def test_a_failed_render_is_reported_and_the_worker_keeps_serving(worker, qtbot, tmp_path):
    w, collector, gen = worker
    bad = RenderRequest(Session(source=Source(kind="wplus",
                                              wplus_path=str(tmp_path / "missing.npy"))))
    w.submit(bad)
    qtbot.waitUntil(lambda: any(r.seq == bad.seq for r in collector.results), timeout=10_000)
    failed = next(r for r in collector.results if r.seq == bad.seq)
    assert not failed.ok and "missing.npy" in failed.error
    good = RenderRequest(_session(gen, 1.0))
    w.submit(good)
    qtbot.waitUntil(lambda: any(r.seq == good.seq for r in collector.results), timeout=10_000)
    ok = next(r for r in collector.results if r.seq == good.seq)
    assert ok.ok and ok.image.shape == (32, 32, 3) and ok.image.flags.owndata


def _saved_tiny(tmp_path):
    from editor.core.checkpoints import save_generator

    return str(save_generator(make_tiny_generator(resolution=32), tmp_path / "t.safetensors"))


def test_a_failure_setting_up_a_model_is_reported_and_the_worker_keeps_serving(
        worker, qtbot, tmp_path, monkeypatch):
    w, collector, gen = worker
    loaded, failed = [], []
    w.model_loaded.connect(loaded.append)
    w.model_failed.connect(failed.append)
    w.load_model(_saved_tiny(tmp_path))
    qtbot.waitUntil(lambda: bool(loaded), timeout=10_000)

    def broken(*args, **kwargs):
        raise RuntimeError("moving the model failed")

    monkeypatch.setattr(w.renderer, "set_context", broken)
    w.refresh_pack()  # after a precompute job
    qtbot.waitUntil(lambda: len(failed) == 1, timeout=10_000)
    w.load_model(_saved_tiny(tmp_path))
    qtbot.waitUntil(lambda: len(failed) == 2, timeout=10_000)
    assert all("moving the model failed" in m for m in failed)
    monkeypatch.undo()
    good = RenderRequest(_session(gen, 1.0))
    w.submit(good)
    qtbot.waitUntil(lambda: any(r.seq == good.seq for r in collector.results), timeout=10_000)
    assert next(r for r in collector.results if r.seq == good.seq).ok


def test_running_out_of_memory_opening_a_model_says_so(worker, qtbot, tmp_path,
                                                       monkeypatch):
    # it was "unexpected error while opening ...: OutOfMemoryError: CUDA out of memory"
    import torch

    import editor.engine.render_worker as render_worker

    w, collector, gen = worker
    failed = []
    w.model_failed.connect(failed.append)

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(render_worker, "open_pack", out_of_memory)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)  # no GPU here
    w.load_model(_saved_tiny(tmp_path), device=torch.device("cuda", 0))
    qtbot.waitUntil(lambda: bool(failed), timeout=10_000)
    assert failed[0].startswith("there is not enough GPU memory on cuda:0 for opening ")
    assert "View ▸ Device" in failed[0] and "unexpected" not in failed[0]
    monkeypatch.setattr(render_worker, "open_pack", lambda *a, **k: out_of_memory(
        RuntimeError("DefaultCPUAllocator: can't allocate memory")))
    w.load_model(_saved_tiny(tmp_path))
    qtbot.waitUntil(lambda: len(failed) == 2, timeout=10_000)
    assert failed[1].startswith("there is not enough memory for opening ")
    good = RenderRequest(_session(gen, 1.0))  # the model before still renders
    w.submit(good)
    qtbot.waitUntil(lambda: any(r.seq == good.seq for r in collector.results), timeout=10_000)
    assert next(r for r in collector.results if r.seq == good.seq).ok


def _out_of_memory_render(monkeypatch, error: Exception, device: str) -> tuple[str, list]:
    """Render with a generator that fails as `error`, holding a tensor as its layers do:
    (the message, whether that tensor was alive each time the CUDA cache was emptied)."""
    import weakref

    import torch

    gen = make_tiny_generator(resolution=32)
    held = []

    def synthesize(*args, **kwargs):
        activation = torch.empty(1000)
        held.append(weakref.ref(activation))
        # a new one: the caller's would keep its traceback, and the tensor, after the render
        raise type(error)(*error.args)

    monkeypatch.setattr(gen, "synthesize", synthesize)
    seen = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: seen.append(held[-1]() is not None))
    renderer = Renderer(EditingContext(gen), device="cpu")
    renderer.device = torch.device(device)  # the render fails before it is used
    result = renderer.render(RenderRequest(_session(gen, 1.0)))
    return result.error, seen


def test_out_of_gpu_memory_frees_the_failed_render_and_says_what_to_do(monkeypatch):
    import torch

    message, seen = _out_of_memory_render(
        monkeypatch, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
        "cuda")
    assert seen == [False]  # the cache was emptied once the tensors were gone
    assert message.startswith("out of GPU memory")
    assert "cancel it" in message and "View ▸ Device" in message  # as the menu is named


def test_out_of_cpu_memory_gets_the_same_short_message(monkeypatch):
    message, _ = _out_of_memory_render(
        monkeypatch, RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to "
                                  "allocate 8000000000 bytes."), "cpu")
    assert message.startswith("out of memory: a running job") and "GPU" not in message


def test_the_unedited_picture_is_drawn_once_per_resolution_while_edits_change():
    # With one kept, a drag's previews and full frames each drew it again: four
    # syntheses a value on a big model instead of two
    gen = make_tiny_generator(resolution=32)
    renderer = Renderer(EditingContext(gen), device="cpu", preview_res=16)
    drawn = []
    synthesize = gen.synthesize

    def counting(code, *a, **k):
        drawn.append(k.get("max_res"))
        return synthesize(code, *a, **k)

    gen.synthesize = counting
    befores = {}
    for alpha in (0.5, 1.0, 1.5, 2.0):
        for preview in (True, False):
            result = renderer.render(RenderRequest(_session(gen, alpha), interactive=True,
                                                   compare=True), preview=preview)
            befores.setdefault(preview, result.before)
            assert np.array_equal(result.before, befores[preview])
    assert befores[True].shape[0] == 16 and befores[False].shape[0] == 32
    assert len(drawn) == 8 + 2  # each value's two frames, the unedited one per resolution
    # another source draws it again
    renderer.render(RenderRequest(Session(source=Source(seed=5)), compare=True))
    assert len(drawn) == 12


def test_letting_go_after_the_last_value_was_drawn_in_full_draws_nothing_again(worker, qtbot):
    # the hand let go of a slider whose last value had its full frame already: the same
    # picture was rendered again (1.7 s on a 512 px model), holding up the next change
    w, collector, gen = worker
    session = _session(gen, 2.0)
    w.submit(RenderRequest(session, interactive=True))
    qtbot.waitUntil(lambda: any(not r.preview for r in collector.results), timeout=10_000)
    drawn = []
    synthesize = gen.synthesize
    gen.synthesize = lambda *a, **k: drawn.append(1) or synthesize(*a, **k)
    settled = RenderRequest(session)
    w.submit(settled)
    qtbot.waitUntil(lambda: settled.seq in collector.arrival, timeout=10_000)
    again = next(r for r in collector.results if r.seq == settled.seq)
    assert drawn == [] and not again.preview
    assert np.array_equal(again.image, to_uint8_image(EditingContext(gen).render(session)))
    compared = RenderRequest(session, compare=True)  # the unedited picture too: drawn
    w.submit(compared)
    qtbot.waitUntil(lambda: compared.seq in collector.arrival, timeout=10_000)
    assert drawn and next(r for r in collector.results if r.seq == compared.seq).before \
        is not None


# ---------------------------------------------------------------- the CLIP after the picture

def _pack_files(tmp_path):
    """A tiny generator and CLIP with their directions computed (text edits work)."""
    from editor.core.checkpoints import save_generator
    from editor.engine.packs import ClipSource, open_pack
    from editor.methods.global_directions import RelevanceConfig
    from tests.conftest import make_tiny_clip

    gen = str(save_generator(make_tiny_generator(resolution=8, channel_max=16),
                             tmp_path / "g.safetensors"))
    clip = str(make_tiny_clip().save(tmp_path / "clip.safetensors"))
    options = {"relevance_config": RelevanceConfig(n_images=3), "stats_samples": 500}
    for _ in open_pack(gen, ClipSource(path=clip), **options).precompute():
        pass
    return gen, ClipSource(path=clip), options


def _loading(w, monkeypatch, load_clip):
    """Open signals' records, with packs.load_clip replaced by `load_clip(real, ...)`."""
    from editor.engine import packs

    real = packs.load_clip
    monkeypatch.setattr(packs, "load_clip", lambda *a, **k: load_clip(real, *a, **k))
    events = {"loaded": [], "clip": [], "failed": []}
    w.model_loaded.connect(events["loaded"].append)
    w.clip_loaded.connect(events["clip"].append)
    w.model_failed.connect(events["failed"].append)
    return events


def test_the_first_picture_comes_before_the_clip_and_a_text_edit_waits_for_it(
        worker, qtbot, tmp_path, monkeypatch):
    import threading

    from editor.engine.editor_state import EditDefaults, new_draft

    w, collector, _ = worker
    gen, clip, options = _pack_files(tmp_path)
    loading, release = threading.Event(), threading.Event()

    def held(real, *args, **kwargs):
        loading.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    events = _loading(w, monkeypatch, held)
    w.load_model(gen, clip, **options)
    qtbot.waitUntil(lambda: bool(events["loaded"]), timeout=20_000)
    first = events["loaded"][0]
    assert first.clip_pending and first.clip is None and first.clip_error is None
    plain = RenderRequest(Session(source=Source(seed=4)))
    w.submit(plain)
    qtbot.waitUntil(lambda: any(r.seq == plain.seq for r in collector.results), timeout=20_000)
    assert next(r for r in collector.results if r.seq == plain.seq).ok
    qtbot.waitUntil(loading.is_set, timeout=20_000)  # after the picture, not before it
    edit = new_draft("face", "face with glasses", EditDefaults(auto_beta=True), strength=4.0)
    text = RenderRequest(Session(source=Source(seed=4)).add_edit(edit))
    w.submit(text)
    qtbot.wait(300)
    assert not events["clip"] and all(r.seq != text.seq for r in collector.results)
    drawn_before_clip = []
    w.clip_loaded.connect(lambda _: drawn_before_clip.append(
        any(r.seq == text.seq for r in collector.results)))
    release.set()
    qtbot.waitUntil(lambda: any(r.seq == text.seq for r in collector.results), timeout=20_000)
    assert drawn_before_clip == [False]  # held until the CLIP came, then drawn with it
    full = events["clip"][0]
    assert full.model is first.model and full.clip is not None and not full.clip_pending
    assert full.has_directions and not events["failed"]
    result = next(r for r in collector.results if r.seq == text.seq)
    assert result.ok and result.edit_status[edit.id].error is None


def test_a_clip_that_cannot_be_read_comes_as_clip_error_and_other_failures_as_model_failed(
        worker, qtbot, tmp_path, monkeypatch):
    from editor.core.errors import ClipError

    w, collector, gen = worker
    path = _saved_tiny(tmp_path)
    failure: list[Exception] = [ClipError("the CLIP file is damaged")]

    def broken(real, *args, **kwargs):
        raise failure[0]

    events = _loading(w, monkeypatch, broken)
    w.load_model(path)  # nothing drawn: the CLIP loads once the worker is idle
    qtbot.waitUntil(lambda: bool(events["clip"]), timeout=20_000)
    pack = events["clip"][0]
    assert pack.clip is None and not pack.clip_pending
    assert pack.clip_error == "the CLIP file is damaged" and not events["failed"]
    failure[0] = RuntimeError("a bug")
    w.load_model(path)
    qtbot.waitUntil(lambda: bool(events["failed"]), timeout=20_000)
    qtbot.wait(1500)  # idle turns of the loop: the CLIP is not tried again
    assert len(events["failed"]) == 1 and "RuntimeError: a bug" in events["failed"][0]
    assert len(events["clip"]) == 1 and len(events["loaded"]) == 2
    good = RenderRequest(_session(gen, 1.0))  # the generator still draws
    w.submit(good)
    qtbot.waitUntil(lambda: any(r.seq == good.seq for r in collector.results), timeout=10_000)
    assert next(r for r in collector.results if r.seq == good.seq).ok
