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
