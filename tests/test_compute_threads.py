"""Which threads run parallel CPU kernels: a serial UI thread, workers with the cores."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from editor import cli
from editor.engine import compute_threads
from editor.engine.compose import EditingContext
from editor.engine.jobs import FINISHED, JobRunner
from editor.engine.render_types import RenderRequest
from editor.engine.render_worker import RenderWorker
from editor.engine.renderer import Renderer
from editor.engine.session import Session, Source
from tests.conftest import make_tiny_generator


@pytest.fixture
def serial_ui(monkeypatch):
    """serial_ui_thread() on this (the test's main) thread with 3 threads to hand out;
    the thread count and the module's memory are restored afterwards."""
    before = torch.get_num_threads()
    monkeypatch.setattr(compute_threads, "_worker_threads", None)
    torch.set_num_threads(3)
    compute_threads.serial_ui_thread()
    yield 3
    torch.set_num_threads(before)


def _threads_seen_by(fn_runner) -> int:
    """torch.get_num_threads() as seen inside the thread fn_runner runs its callable on."""
    seen = {}

    def probe():
        seen["n"] = torch.get_num_threads()
        seen["thread"] = threading.get_ident()

    fn_runner(probe)
    assert seen["thread"] != threading.get_ident()
    return seen["n"]


def test_the_ui_thread_becomes_serial_and_workers_get_the_count_it_had(serial_ui):
    assert torch.get_num_threads() == 1
    assert compute_threads.worker_threads() == serial_ui
    # a plain new thread would take the count last set anywhere (1): workers set theirs
    plain = _threads_seen_by(lambda fn: _join(threading.Thread(target=fn)))
    assert plain == 1
    assert _threads_seen_by(compute_threads.call_on_worker_thread) == serial_ui


def _join(thread: threading.Thread) -> None:
    thread.start()
    thread.join()


def test_calling_serial_ui_thread_again_keeps_the_first_count(serial_ui):
    compute_threads.serial_ui_thread()
    assert compute_threads.worker_threads() == serial_ui
    assert torch.get_num_threads() == 1


def test_without_a_serial_ui_thread_workers_use_torchs_count(monkeypatch):
    monkeypatch.setattr(compute_threads, "_worker_threads", None)
    assert _threads_seen_by(compute_threads.call_on_worker_thread) == torch.get_num_threads()


def test_call_on_worker_thread_returns_and_raises():
    assert compute_threads.call_on_worker_thread(lambda: 41 + 1) == 42

    def fails():
        raise ValueError("from the worker")

    with pytest.raises(ValueError, match="from the worker"):
        compute_threads.call_on_worker_thread(fails)


class _CountingRenderer(Renderer):
    """Records the thread count each render ran with."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.threads_seen: list[int] = []

    def render(self, request, preview=False):
        self.threads_seen.append(torch.get_num_threads())
        return super().render(request, preview)


def test_the_render_worker_renders_with_the_worker_count(qtbot, serial_ui):
    renderer = _CountingRenderer(EditingContext(make_tiny_generator(resolution=16)),
                                 device="cpu")
    worker = RenderWorker(renderer)
    worker.start()
    try:
        with qtbot.waitSignal(worker.rendered, timeout=10_000) as blocker:
            worker.submit(RenderRequest(Session(source=Source(seed=1))))
        assert blocker.args[0].ok
    finally:
        worker.stop()
    assert renderer.threads_seen == [serial_ui]
    assert torch.get_num_threads() == 1  # the UI thread stayed serial


def test_a_job_runs_with_the_worker_count(qtbot, serial_ui):
    runner = JobRunner()
    with qtbot.waitSignal(runner.job_finished, timeout=10_000) as finished:
        job = runner.submit("count threads", lambda token: torch.get_num_threads())
    assert job.state == FINISHED and finished.args[1] == serial_ui
    assert runner.cancel_all(wait_ms=10_000)


def test_the_window_process_gets_the_interactive_openmp_settings(monkeypatch):
    for key in cli.INTERACTIVE_OPENMP_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(cli, "_run_gui", lambda args: 0)
    assert cli.main([]) == 0
    for key, value in cli.INTERACTIVE_OPENMP_ENV.items():
        assert os.environ[key] == value


def test_a_users_openmp_setting_wins_and_headless_commands_keep_the_default(monkeypatch):
    key = next(iter(cli.INTERACTIVE_OPENMP_ENV))
    monkeypatch.setenv(key, "12345")
    cli.prepare_interactive_process()
    assert os.environ[key] == "12345"
    monkeypatch.delenv(key)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert key not in os.environ
