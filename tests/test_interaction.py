"""Jobs step aside while the user waits for a picture: the gate, and its wiring into the
render worker and the job runner."""

from __future__ import annotations

import math
import threading
import time

import pytest

from editor.engine.compose import EditingContext
from editor.engine.interaction import InteractionGate
from editor.engine.jobs import CANCELLED, FINISHED, JobRunner, Progress
from editor.engine.render_types import RenderRequest
from editor.engine.render_worker import RenderWorker
from editor.engine.renderer import Renderer
from editor.engine.session import Session, Source
from tests.conftest import make_tiny_generator

TIMEOUT_MS = 10_000


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_gate_is_busy_while_rendering_and_for_quiet_s_after_a_request():
    clock = FakeClock()
    gate = InteractionGate(quiet_s=0.3, clock=clock)
    assert gate.busy_for() == 0.0  # nothing asked for yet
    gate.mark()
    assert gate.busy_for() == pytest.approx(0.3)
    clock.now += 0.2
    assert gate.busy_for() == pytest.approx(0.1)
    gate.begin()
    assert gate.busy_for() == math.inf  # a render in flight, however long ago the request
    clock.now += 5.0
    assert gate.busy_for() == math.inf
    gate.end()
    assert gate.busy_for() == 0.0
    gate.end()  # an unmatched end does not make a later render look finished
    gate.begin()
    assert gate.busy_for() == math.inf


def test_wait_quiet_returns_at_once_when_quiet_and_when_cancelled():
    gate = InteractionGate(quiet_s=0.05)
    assert gate.wait_quiet() < 0.05
    gate.begin()  # busy for good
    cancelled = threading.Event()
    threading.Timer(0.1, cancelled.set).start()
    waited = gate.wait_quiet(cancelled)
    assert 0.09 <= waited < 5.0


def test_wait_quiet_waits_for_the_render_to_end():
    gate = InteractionGate(quiet_s=0.0)
    gate.begin()
    threading.Timer(0.15, gate.end).start()
    assert 0.14 <= gate.wait_quiet() < 5.0


def _stepping_job(steps_done: list[int], n: int = 5):
    def fn(token):
        for i in range(n):
            steps_done.append(i)
            yield Progress(i + 1, n, f"step {i + 1}")
        return "done"
    return fn


def test_a_job_pauses_between_steps_while_a_render_is_in_flight(qtbot):
    gate = InteractionGate(quiet_s=0.0)
    runner = JobRunner(interaction=gate)
    steps: list[int] = []
    gate.begin()  # the user is waiting for a picture
    job = runner.submit("steps", _stepping_job(steps))
    time.sleep(0.3)
    assert steps == []  # the job waits before its first step
    assert job.state == "running"
    with qtbot.waitSignal(runner.job_finished, timeout=TIMEOUT_MS) as finished:
        gate.end()
    assert steps == [0, 1, 2, 3, 4] and finished.args == [job, "done"]
    assert runner.cancel_all(wait_ms=TIMEOUT_MS)


def test_a_paused_job_can_still_be_cancelled(qtbot):
    gate = InteractionGate(quiet_s=0.0)
    runner = JobRunner(interaction=gate)
    steps: list[int] = []
    gate.begin()
    job = runner.submit("steps", _stepping_job(steps))
    time.sleep(0.1)
    job.cancel()
    qtbot.waitUntil(lambda: job.state == CANCELLED, timeout=TIMEOUT_MS)
    assert steps == []
    assert runner.cancel_all(wait_ms=TIMEOUT_MS)


def test_without_a_gate_jobs_run_as_before(qtbot):
    runner = JobRunner()
    steps: list[int] = []
    job = runner.submit("steps", _stepping_job(steps))
    qtbot.waitUntil(lambda: job.state == FINISHED, timeout=TIMEOUT_MS)
    assert steps == [0, 1, 2, 3, 4]


class _GateWatchingRenderer(Renderer):
    """Records how busy the gate was while each render ran."""

    def __init__(self, gate: InteractionGate, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = gate
        self.busy_during: list[float] = []

    def render(self, request, preview=False):
        self.busy_during.append(self.gate.busy_for())
        return super().render(request, preview)


def test_the_render_worker_marks_requests_and_holds_the_gate_while_rendering(qtbot):
    clock = FakeClock()
    gate = InteractionGate(quiet_s=0.3, clock=clock)
    renderer = _GateWatchingRenderer(gate, EditingContext(make_tiny_generator(resolution=16)),
                                     device="cpu")
    worker = RenderWorker(renderer, interaction=gate)
    worker.start()
    try:
        with qtbot.waitSignal(worker.rendered, timeout=TIMEOUT_MS) as blocker:
            worker.submit(RenderRequest(Session(source=Source(seed=3))))
        assert blocker.args[0].ok
    finally:
        worker.stop()
    assert renderer.busy_during == [math.inf]
    assert gate.busy_for() == pytest.approx(0.3)  # the request's mark; the render ended
    clock.now += 1.0
    assert gate.busy_for() == 0.0
