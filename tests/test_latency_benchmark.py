"""benchmarks/latency.py: the drag bookkeeping on a tiny generator (no timing assertions)."""

from __future__ import annotations

import torch

from benchmarks import latency as lat
from editor.engine.compose import EditingContext
from editor.engine.renderer import Renderer
from editor.engine.session import Edit, Source
from tests.conftest import make_tiny_generator


def _drag(qapp, resolution: int, preview_res: int, interactive: bool, n: int = 12):
    gen = make_tiny_generator(resolution=resolution)
    edit = Edit("delta", {"delta": lat.random_delta(gen)}, id="drag")
    sessions = lat.drag_sessions(Source(seed=1), edit, lat.drag_values(n))
    renderer = Renderer(EditingContext(gen), device="cpu", preview_res=preview_res)
    return lat.measure_drag(renderer, sessions, interval_s=0.002, interactive=interactive,
                            settle_s=0.02, timeout_s=30), sessions


def _check_bookkeeping(drag, sessions) -> None:
    assert drag.finished
    assert drag.events == len(sessions) == len(drag.order) == len(drag.posted)
    assert drag.order == sorted(drag.order)  # posted in order
    assert drag.in_order()  # every image is for the same or a newer request
    assert drag.errors == 0
    assert drag.delivered + drag.dropped == drag.events
    assert drag.frames >= drag.delivered
    assert drag.order[-1] in drag.first_images()  # the last value is always shown
    assert len(drag.latencies_ms()) == drag.delivered
    assert all(ms >= 0 for ms in drag.latencies_ms())
    assert drag.final_ms() >= 0
    assert all(a.seq in drag.posted for a in drag.arrivals)


def test_a_drag_without_previews(qapp):
    drag, sessions = _drag(qapp, resolution=16, preview_res=256, interactive=True)
    _check_bookkeeping(drag, sessions)
    assert not any(a.preview for a in drag.arrivals)
    assert drag.frames == drag.delivered  # one image per delivered request
    assert drag.median_timing("styles_ms") >= 0


def test_a_drag_with_previews_ends_at_full_resolution(qapp):
    drag, sessions = _drag(qapp, resolution=32, preview_res=8, interactive=True)
    _check_bookkeeping(drag, sessions)
    last = [a for a in drag.arrivals if a.seq == drag.order[-1]]
    assert last[0].preview and not last[-1].preview
    assert drag.arrivals[-1].seq == drag.order[-1] and not drag.arrivals[-1].preview


def test_rows_table_and_goals(qapp):
    drag, _ = _drag(qapp, resolution=16, preview_res=256, interactive=False, n=4)
    row = lat.Row("tiny", "cpu", 16, "delta", drag, bare_ms=1e6)
    lat.judge(row, demo=True, full_1024=False)
    assert row.passed is True  # p95 far below 1.5 x an enormous bare time, < 50 ms
    row.bare_ms = 1e-6
    lat.judge(row, demo=True, full_1024=False)
    assert row.passed is False
    table = lat.format_table([row])
    assert "tiny" in table and "p95/bare" in table
    assert lat.drag_values(3) == [-8.0, 0.0, 8.0]


def test_a_drag_beside_a_busy_job_with_and_without_the_gate(qapp):
    gen = make_tiny_generator(resolution=16)
    edit = Edit("delta", {"delta": lat.random_delta(gen)}, id="drag")
    cfg = lat.Config("tiny", EditingContext(gen), Source(seed=1), edit, True, 256)
    for gated in (False, True):
        row, rate = lat.drag_beside_job(cfg, torch.device("cpu"), lat.drag_values(8),
                                        interval_s=0.002, settle_s=0.02, bare_ms=1.0,
                                        gated=gated)
        _check_bookkeeping(row.drag, [None] * 8)
        assert row.config == "tiny + job" + (", gated" if gated else "")
        assert rate >= 0.0


def test_the_busy_job_yields_a_progress_step_per_batch():
    gen = make_tiny_generator(resolution=8)
    fn = lat.busy_job(gen, batch=2)
    token = lat.JobToken()
    steps = fn(token)
    first, second = next(steps), next(steps)
    assert isinstance(first, lat.Progress) and (first.done, second.done) == (1, 2)
    assert len(fn.step_times) == 2
    token.set()
    assert next(steps, None) is None  # a cancelled job stops at its next step
