"""The job runner (background threads, throttled progress, cooperative cancel) and the
jobs panel that shows it."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import Qt, QTimer

from editor.core.errors import CheckpointError
from editor.engine.jobs import (
    CANCELLED,
    FAILED,
    FINISHED,
    RUNNING,
    Cancelled,
    JobRunner,
    OneAtATime,
    Progress,
    RateEta,
    error_details,
    error_message,
)
from editor.ui.jobs_panel import JobsPanel, format_eta_text
from tests.conftest import make_tiny_clip, make_tiny_generator

TIMEOUT_MS = 10_000


@pytest.fixture
def runner(qtbot):
    r = JobRunner()
    yield r
    assert r.cancel_all(wait_ms=TIMEOUT_MS), "a test left a job thread running"


class Recorder:
    """Collects the runner's signals in arrival order, and the thread each came on."""

    def __init__(self, runner: JobRunner):
        self.events: list[tuple] = []
        self.threads: set[int] = set()
        runner.job_started.connect(lambda j: self._add("started", j))
        runner.job_progress.connect(lambda j, p: self._add("progress", j, p))
        runner.job_finished.connect(lambda j, r: self._add("finished", j, r))
        runner.job_failed.connect(lambda j, m: self._add("failed", j, m))
        runner.job_cancelled.connect(lambda j: self._add("cancelled", j))
        runner.job_ended.connect(lambda j: self._add("ended", j))

    def _add(self, *event):
        self.threads.add(threading.get_ident())
        self.events.append(event)

    def kinds(self, job):
        return [e[0] for e in self.events if e[1] is job]

    def progress(self, job):
        return [e[2] for e in self.events if e[0] == "progress" and e[1] is job]

    def result(self, job):
        """What job_finished handed over for the job (a Job keeps no result)."""
        return next(e[2] for e in self.events if e[0] == "finished" and e[1] is job)


def counting_job(n: int, step_s: float = 0.0, result="done"):
    def run(cancel):
        for i in range(1, n + 1):
            if step_s:
                time.sleep(step_s)
            yield Progress(i, n, f"step {i}")
        yield result

    return run


def test_a_job_yielding_progress_finishes_with_its_result(qtbot, runner):
    rec = Recorder(runner)
    with qtbot.waitSignal(runner.job_finished, timeout=TIMEOUT_MS) as blocker:
        job = runner.submit("count", counting_job(20, 0.005, result={"answer": 42}))
    assert blocker.args == [job, {"answer": 42}]
    assert job.state == FINISHED
    assert rec.kinds(job)[0] == "started" and rec.kinds(job)[-2:] == ["finished", "ended"]
    assert rec.threads == {threading.get_ident()}  # every signal arrived on the UI thread
    assert runner.active_jobs() == []


def test_progress_arrives_in_order_throttled_and_the_last_one_always(qtbot, runner):
    rec = Recorder(runner)
    n = 20_000  # far more than the panel could show
    with qtbot.waitSignal(runner.job_ended, timeout=TIMEOUT_MS):
        job = runner.submit("many", counting_job(n))
    done = [p.done for p in rec.progress(job)]
    assert done, "no progress was delivered"
    assert done == sorted(set(done))  # in order, no repeats
    assert done[-1] == n and job.progress.done == n
    assert len(done) < n / 10  # throttled, not one signal per item
    assert rec.kinds(job).index("finished") > max(
        i for i, k in enumerate(rec.kinds(job)) if k == "progress")


def test_the_return_value_of_a_generator_is_the_result(qtbot, runner):
    def gen(cancel):
        yield Progress(1, 2)
        return "returned"

    with qtbot.waitSignal(runner.job_finished, timeout=TIMEOUT_MS) as blocker:
        runner.submit("returns", gen)
    assert blocker.args[1] == "returned"


def test_a_plain_callable_and_callback_progress(qtbot, runner):
    rec = Recorder(runner)

    def plain(token):
        token.report(Progress(3, 4, "three of four"))
        return 7

    with qtbot.waitSignal(runner.job_finished, timeout=TIMEOUT_MS) as blocker:
        job = runner.submit("plain", plain)
    assert blocker.args[1] == 7
    assert [p.message for p in rec.progress(job)] == ["three of four"]


def test_cancel_mid_job_stops_it_for_real(qtbot, runner):
    counter = [0]
    stopped_cleanly = threading.Event()

    def endless(cancel):
        try:
            while True:  # ignores the token itself: the runner must stop pulling items
                counter[0] += 1
                time.sleep(0.002)
                yield Progress(counter[0], 0, "spinning")
        finally:
            stopped_cleanly.set()  # close() ran the generator's cleanup

    rec = Recorder(runner)
    job = runner.submit("endless", endless)
    qtbot.waitUntil(lambda: counter[0] > 20, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(runner.job_cancelled, timeout=TIMEOUT_MS):
        job.cancel()
    assert job.state == CANCELLED
    assert "failed" not in rec.kinds(job) and "finished" not in rec.kinds(job)
    assert stopped_cleanly.is_set()
    at_cancel = counter[0]
    qtbot.wait(150)
    assert counter[0] == at_cancel  # the counter stopped increasing


def test_a_callable_that_notices_the_token_ends_cancelled(qtbot, runner):
    started = threading.Event()

    def polite(cancel):
        started.set()
        while not cancel.wait(0.01):
            pass
        return "partial"

    job = runner.submit("polite", polite)
    assert started.wait(5)
    with qtbot.waitSignal(runner.job_cancelled, timeout=TIMEOUT_MS):
        job.cancel()
    assert job.state == CANCELLED


def test_an_exception_fails_the_job_with_a_one_line_message(qtbot, runner, caplog):
    def broken(cancel):
        yield Progress(1, 3, "first")
        raise ValueError("the model has 7 layers,\nnot 9")

    with qtbot.waitSignal(runner.job_failed, timeout=TIMEOUT_MS) as blocker:
        job = runner.submit("broken", broken)
    assert blocker.args == [job, "ValueError: the model has 7 layers,"]
    assert job.state == FAILED and job.error == "ValueError: the model has 7 layers,"
    assert "Traceback" in caplog.text and "broken" in caplog.text  # logged in full


def test_a_failed_job_keeps_what_its_line_left_out_as_details(qtbot, runner):
    # A download's box needed the zoo's whole message, which the runner dropped after the
    # first line; the Models dialog kept it in a module-level dict on the side.
    def short_line_from_the_whole_story(cancel):
        try:
            raise OSError("could not reach example.org: no name\nTry again later.")
        except OSError as e:
            raise CheckpointError("offline") from e

    with qtbot.waitSignal(runner.job_failed, timeout=TIMEOUT_MS) as blocker:
        job = runner.submit("download", short_line_from_the_whole_story)
    assert blocker.args == [job, "offline"]
    assert job.details == "could not reach example.org: no name\nTry again later."


def test_error_details():
    assert error_details(CheckpointError("x.pt is empty")) is None  # the line says it all
    assert error_details(KeyError("w_avg")) is None
    assert error_details(RuntimeError()) is None
    assert error_details(ValueError("7 layers,\nnot 9")) == "7 layers,\nnot 9"
    try:
        raise CheckpointError("short") from ValueError("the whole story")
    except CheckpointError as e:
        assert error_details(e) == "the whole story"
    try:
        raise CheckpointError("short\nmore") from CheckpointError("short\nmore")
    except CheckpointError as e:
        assert error_details(e) == "short\nmore"  # said once


def test_error_messages():
    from editor.core.errors import CheckpointError

    assert error_message(CheckpointError("x.pt is empty")) == "x.pt is empty"
    assert error_message(KeyError("w_avg")) == "KeyError: 'w_avg'"
    assert error_message(RuntimeError()) == "RuntimeError"
    assert error_message(MemoryError()) == "out of memory"
    assert error_message(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried "
                                      "to allocate 8 bytes")) == \
        "out of memory (asked for 8 bytes more)"


def test_running_out_of_gpu_memory_is_one_short_line():
    # torch's paragraph (allocator settings, reserved memory...) filled the status bar and
    # the jobs panel's row
    import torch

    cuda = torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.15 "
        "GiB of which 3.06 MiB is free. Including non-PyTorch memory, this process has 79.14 "
        "GiB memory in use. Of the allocated memory 77.90 GiB is allocated by PyTorch, and "
        "600.12 MiB is reserved by PyTorch but unallocated. If reserved but unallocated memory "
        "is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid "
        "fragmentation.  See documentation for Memory Management")
    assert error_message(cuda) == ("out of GPU memory (asked for 2.00 GiB more; 3.06 MiB of "
                                   "79.15 GiB free on GPU 0)")
    assert error_message(RuntimeError("CUDA error: out of memory")) == \
        "out of GPU memory: CUDA error: out of memory"
    assert error_message(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling "
                                      "`cublasCreate(handle)`")).startswith("out of GPU memory")


def test_raising_cancelled_counts_as_cancelled(qtbot, runner):
    def gives_up(cancel):
        yield Progress(1, 2)
        raise Cancelled("stopped; finished layers saved")

    with qtbot.waitSignal(runner.job_cancelled, timeout=TIMEOUT_MS):
        job = runner.submit("gives up", gives_up)
    assert job.state == CANCELLED and job.error is None


def test_an_error_after_cancel_counts_as_cancelled(qtbot, runner):
    """E.g. zoo.download raises its own DownloadCancelled once the token is set."""

    def download(cancel):
        while not cancel.wait(0.01):
            pass
        raise OSError("download of x cancelled; 3 MB kept")

    job = runner.submit("download", download)
    qtbot.wait(50)
    with qtbot.waitSignal(runner.job_cancelled, timeout=TIMEOUT_MS):
        job.cancel()
    assert job.state == CANCELLED


@pytest.mark.parametrize("stopped", ["download", "import"])
def test_a_cancelled_download_or_import_says_what_it_kept(qtbot, runner, stopped):
    # the Jobs panel said "cancelled after 3 s": the partial file kept for resuming (or
    # that nothing was installed) was said nowhere
    from editor.core import zoo

    raised = {"download": zoo.DownloadCancelled("download of x cancelled; 3 MB kept in "
                                                "x.part; download again to resume"),
              "import": zoo.ImportCancelled("import of x cancelled; nothing was installed")}

    def work(cancel):
        while not cancel.wait(0.01):
            pass
        raise raised[stopped]

    job = runner.submit(stopped, work)
    qtbot.wait(50)
    with qtbot.waitSignal(runner.job_cancelled, timeout=TIMEOUT_MS):
        job.cancel()
    assert job.state == CANCELLED and job.note == str(raised[stopped])


def test_a_key_keeps_two_runs_of_the_same_work_apart(qtbot, runner):
    release = threading.Event()

    def slow(cancel):
        release.wait(5)
        return "once"

    first = runner.submit("precompute demo", slow, key="precompute:demo")
    second = runner.submit("precompute demo", slow, key="precompute:demo")
    other = runner.submit("precompute other", slow, key="precompute:other")
    assert second is first and other is not first
    assert runner.find("precompute:demo") is first
    assert len(runner.active_jobs()) == 2
    release.set()
    qtbot.waitUntil(lambda: not runner.active_jobs(), timeout=TIMEOUT_MS)
    third = runner.submit("precompute demo", slow, key="precompute:demo")
    assert third is not first  # the key is free again once the job ended
    qtbot.waitUntil(lambda: third.state == FINISHED, timeout=TIMEOUT_MS)


def test_jobs_taking_turns_run_one_at_a_time_in_their_order(qtbot, runner):
    # Four pictures dropped at once were inverted at once (four times the memory, each
    # with a share of the cores) and landed in the order they happened to finish
    turns, lock = OneAtATime(), threading.Lock()
    ran, overlapped = [], []

    def work(name, steps=3):
        def run(token):
            if not lock.acquire(blocking=False):
                overlapped.append(name)
                lock.acquire()
            try:
                for i in range(steps):
                    time.sleep(0.01)
                    yield Progress(i + 1, steps)
                ran.append(name)
            finally:
                lock.release()
            return name
        return run

    def plain(token):
        ran.append("plain")
        return "plain"

    rec = Recorder(runner)
    jobs = [runner.submit(n, work(n), turns=turns, waiting="waiting for the one before")
            for n in ("a", "b", "c")]
    jobs.append(runner.submit("plain", plain, turns=turns))
    qtbot.waitUntil(lambda: not runner.active_jobs(), timeout=TIMEOUT_MS)
    assert ran == ["a", "b", "c", "plain"] and overlapped == []
    assert [rec.result(j) for j in jobs] == ["a", "b", "c", "plain"]
    # a job that waited said so
    assert "waiting for the one before" in [p.message for p in rec.progress(jobs[2])]


def test_a_job_cancelled_while_waiting_its_turn_ends_and_gives_it_up(qtbot, runner):
    turns, release = OneAtATime(), threading.Event()

    def held(token):
        release.wait(5)
        return "first"

    first = runner.submit("first", held, turns=turns)
    waiting = runner.submit("waiting", lambda token: "never", turns=turns)
    after = runner.submit("after", lambda token: "after", turns=turns)
    time.sleep(0.2)
    waiting.cancel()
    qtbot.waitUntil(lambda: waiting.state == CANCELLED, timeout=TIMEOUT_MS)
    assert waiting.note == "cancelled before it started" and after.state == RUNNING
    release.set()
    qtbot.waitUntil(lambda: after.state == FINISHED, timeout=TIMEOUT_MS)
    assert first.state == FINISHED


@pytest.mark.parametrize("how", ["cancelled before its first step", "failed", "finished"])
def test_a_turn_is_given_up_however_its_job_ends(qtbot, runner, how):
    turns = OneAtATime()

    def progress():
        yield Progress(1, 1)
        return "done"

    def steps(token):
        if how == "failed":
            raise RuntimeError("broken")
        if how == "cancelled before its first step":
            token.set()  # as a cancel that comes before the runner pulls the first item
        return progress()

    first = runner.submit("first", steps, turns=turns)
    qtbot.waitUntil(lambda: not first.is_active, timeout=TIMEOUT_MS)
    second = runner.submit("second", lambda token: "second", turns=turns)
    qtbot.waitUntil(lambda: second.state == FINISHED, timeout=TIMEOUT_MS)


def test_cancel_all_waits_for_the_threads(qtbot):
    runner = JobRunner()
    rec = Recorder(runner)
    stopped = []

    def worker(cancel):
        try:
            while True:
                time.sleep(0.005)
                yield Progress(0, 0)
        finally:  # saving partial work takes a moment; cancel_all must wait for it
            time.sleep(0.1)
            stopped.append(True)

    jobs = [runner.submit(f"job {i}", worker) for i in range(3)]
    qtbot.waitUntil(lambda: all(j.token.latest is not None for j in jobs), timeout=TIMEOUT_MS)
    assert runner.cancel_all(wait_ms=TIMEOUT_MS)
    assert len(stopped) == 3  # returned only after every thread ended
    assert runner.active_jobs() == []
    assert all(j.state == CANCELLED for j in jobs)
    assert sum(k == "cancelled" for k, *_ in rec.events) == 3  # delivered during cancel_all
    qtbot.wait(50)  # the threads' own queued end events change nothing afterwards
    assert sum(k == "cancelled" for k, *_ in rec.events) == 3


def test_the_event_loop_stays_responsive_while_a_job_runs(qtbot, runner):
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))

    def busy(cancel):  # pure Python work that holds the GIL as much as it can
        t_end = time.monotonic() + 0.6
        x = 0
        while time.monotonic() < t_end:
            for i in range(2000):
                x += i * i
            yield Progress(1, 2)
        return x

    timer.start()
    try:
        with qtbot.waitSignal(runner.job_finished, timeout=TIMEOUT_MS):
            job = runner.submit("busy", busy)
    finally:
        timer.stop()
    during = [t for t in ticks if job.started_at <= t <= job.ended_at]
    # a blocked loop would tick once at most; a busy machine may slow it, not stop it
    assert len(during) >= 5, f"the UI thread ran only {len(during)} timer ticks in 0.6 s"


def test_rate_eta():
    eta = RateEta(min_elapsed_s=0.0)
    first = eta.progress(100, 1100, "resumed")
    assert first.eta_s is None  # no rate yet
    time.sleep(0.05)
    later = eta.progress(200, 1100)
    assert later.total == 1100 and later.eta_s is not None and later.eta_s > 0
    assert RateEta().progress(5, None).total == 0  # unknown size: no fraction, no ETA


def test_eta_text():
    assert format_eta_text(None) == ""
    assert format_eta_text(4) == "a few seconds left"
    assert format_eta_text(42) == "about 40 s left"
    assert format_eta_text(185) == "about 3 min left"
    assert format_eta_text(2 * 3600 + 600) == "about 2 h 10 min left"


def test_eta_text_of_an_estimate_that_is_no_number_or_absurd():
    # nan raised ValueError and inf OverflowError inside the progress slot: the row's
    # update was lost
    assert format_eta_text(float("nan")) == ""
    assert format_eta_text(float("inf")) == ""
    assert format_eta_text(99 * 3600) == "about 99 h left"
    assert format_eta_text(10**9) == "more than 999 days left"


def test_eta_text_of_weeks_of_work_is_in_days():
    # a 1024 px precompute on a CPU (about 78 days) read "more than 99 h left" throughout
    assert format_eta_text(100 * 3600) == "about 4 days left"
    assert format_eta_text(78 * 86400) == "about 78 days left"


def test_a_listed_ended_job_does_not_keep_its_result_alive(qtbot, runner):
    # The panel keeps the last 20 ended jobs; each held its result (an inversion's
    # pictures, an export's frames: megabytes each) for as long as it was listed.
    import gc
    import weakref

    class Pictures:
        pass

    made: list[weakref.ref] = []

    def inverting(_token):
        pictures = Pictures()
        made.append(weakref.ref(pictures))
        return pictures

    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    received = []
    runner.job_finished.connect(lambda j, result: received.append(type(result)))
    with qtbot.waitSignal(runner.job_ended, timeout=TIMEOUT_MS):
        job = runner.submit("Invert", inverting)
    assert received == [Pictures]  # handed over to the receivers
    assert panel.row(job).state_label.text() == "done"  # still listed
    gc.collect()
    assert made[0]() is None


def test_an_ended_job_keeps_its_progress_without_the_payload(qtbot, runner):
    # The jobs panel keeps the last ended jobs: each held its last progress with an
    # inversion's preview pictures.
    import dataclasses

    import numpy as np

    @dataclasses.dataclass
    class Preview(Progress):
        pictures: list = dataclasses.field(default_factory=list)

    def inverting(_token):
        yield Preview(3, 4, "step 3", 12.0, [np.zeros((64, 64, 3), np.uint8)])
        yield "latent"

    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    rec = Recorder(runner)
    with qtbot.waitSignal(runner.job_ended, timeout=TIMEOUT_MS):
        job = runner.submit("Invert", inverting)
    assert job.progress == Progress(3, 4, "step 3", 12.0)
    assert type(job.progress) is Progress and type(job.token.latest) is Progress
    assert rec.result(job) == "latent" and panel.row(job).state_label.text() == "done"


# --------------------------------------------------------------------------- the panel


def test_the_panel_shows_progress_and_its_cancel_button_cancels(qtbot, runner):
    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    assert panel.empty_label.isVisibleTo(panel)

    def slow(cancel):
        i = 0
        while not cancel.is_set():
            i += 1
            yield Progress(min(i, 90), 100, f"layer {i}", eta_s=185.0)
            time.sleep(0.005)

    job = runner.submit("Precompute demo", slow)
    row = panel.row(job)
    assert row is not None and row.title_label.text() == "Precompute demo"
    assert not panel.empty_label.isVisibleTo(panel)
    qtbot.waitUntil(lambda: row.progress_bar.value() > 0, timeout=TIMEOUT_MS)
    assert row.progress_bar.maximum() > 0
    qtbot.waitUntil(lambda: "about 3 min left" in row.detail_label.text(), timeout=TIMEOUT_MS)
    assert "layer" in row.detail_label.text()
    assert row.cancel_button.isVisibleTo(row)

    with qtbot.waitSignal(runner.job_cancelled, timeout=TIMEOUT_MS):
        qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    assert job.state == CANCELLED
    assert row.state_label.text() == "cancelled"
    assert not row.cancel_button.isVisibleTo(row)
    assert panel.clear_button.isEnabled()


def test_the_panel_shows_finished_and_failed_and_clears_them(qtbot, runner):
    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    release = threading.Event()

    def waits(cancel):
        release.wait(5)
        return 1

    def fails(cancel):
        raise RuntimeError("CUDA out of patience")

    with qtbot.waitSignal(runner.job_finished, timeout=TIMEOUT_MS):
        ok = runner.submit("works", lambda cancel: 1)
    with qtbot.waitSignal(runner.job_failed, timeout=TIMEOUT_MS):
        bad = runner.submit("fails", fails)
    running = runner.submit("still running", waits)
    assert [r.job for r in panel.rows()] == [running, bad, ok]  # newest first
    assert panel.row(ok).state_label.text() == "done"
    assert panel.row(ok).progress_bar.value() == panel.row(ok).progress_bar.maximum()
    assert panel.row(bad).state_label.text() == "failed"
    assert "CUDA out of patience" in panel.row(bad).detail_label.text()
    assert panel.row(running).state_label.text() == RUNNING

    panel.clear_button.click()
    assert [r.job for r in panel.rows()] == [running]
    release.set()
    qtbot.waitUntil(lambda: running.state == FINISHED, timeout=TIMEOUT_MS)


def test_running_jobs_stay_above_ended_ones_and_two_rows_and_more_show(qtbot, runner):
    # Newest first, a job that finished after a running one had started hid it in a panel
    # one row high.
    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    first, second = threading.Event(), threading.Event()
    a = runner.submit("a", lambda cancel: first.wait(5))
    b = runner.submit("b", lambda cancel: second.wait(5))
    assert [r.job for r in panel.rows()] == [b, a]
    with qtbot.waitSignal(runner.job_ended, timeout=TIMEOUT_MS):
        second.set()
    assert [r.job for r in panel.rows()] == [a, b]  # the ended one moved below
    with qtbot.waitSignal(runner.job_ended, timeout=TIMEOUT_MS):
        c = runner.submit("c", lambda cancel: 1)
    assert [r.job for r in panel.rows()] == [a, c, b]  # the last to end first
    # room for two whole rows and part of a third
    rows = [r.sizeHint().height() for r in panel.rows()]
    assert panel._scroll.minimumHeight() >= rows[0] + rows[1] + rows[2] // 3
    assert panel._scroll.minimumHeight() < sum(rows)
    with qtbot.waitSignal(runner.job_ended, timeout=TIMEOUT_MS):
        first.set()
    assert [r.job for r in panel.rows()] == [a, c, b]


def test_a_job_ended_unfinished_shows_no_stalled_progress_bar(qtbot, runner):
    # A failed or cancelled job left an empty bar without text, which looked stalled.
    panel = JobsPanel(runner)
    qtbot.addWidget(panel)

    def fails(cancel):
        yield Progress(1, 4, "step 1")
        raise RuntimeError("disk on fire")

    def stops(cancel):
        yield Progress(2, 5, "step 2")
        cancel.wait(5)
        yield Progress(2, 5, "step 2")

    with qtbot.waitSignal(runner.job_failed, timeout=TIMEOUT_MS):
        bad = runner.submit("fails", fails)
    row = panel.row(bad)
    assert not row.progress_bar.isVisibleTo(row)
    assert row.state_label.text() == "failed" and "disk on fire" in row.detail_label.text()
    job = runner.submit("stops", stops)
    qtbot.waitUntil(lambda: panel.row(job).progress_bar.value() > 0, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(runner.job_cancelled, timeout=TIMEOUT_MS):
        job.cancel()
    row = panel.row(job)
    assert not row.progress_bar.isVisibleTo(row)
    assert row.state_label.text() == "cancelled"
    assert "(40% done)" in row.detail_label.text()  # how far it got, in words


def test_a_panel_made_later_lists_the_jobs_already_running(qtbot, runner):
    release = threading.Event()
    job = runner.submit("early", lambda cancel: release.wait(5))
    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    assert panel.row(job) is not None
    release.set()
    qtbot.waitUntil(lambda: panel.row(job).state_label.text() == "done", timeout=TIMEOUT_MS)


def test_the_real_precompute_runs_as_a_job(qtbot, runner):
    """The generator job the GUI runs for a new pack, on tiny models: progress, then the
    PackData as the result."""
    from editor.methods import global_directions as gd
    from editor.methods import precompute as pc

    gen, clip = make_tiny_generator(channel_max=16, seed=1), make_tiny_clip()
    config = gd.RelevanceConfig(n_images=2, layers=("conv1", "convs.0"), batch_size=32)
    rec = Recorder(runner)

    def job(cancel):
        return pc.precompute_pack(gen, clip, "gen-hash", "clip-hash", 64, config,
                                  cancel=cancel)

    with qtbot.waitSignal(runner.job_finished, timeout=60_000) as blocker:
        submitted = runner.submit("Precompute tiny", job, key="precompute:tiny")
    assert isinstance(blocker.args[1], pc.PackData)
    progress = rec.progress(submitted)
    assert progress and progress[-1].done == progress[-1].total


def test_exiting_with_a_job_that_outlived_cancel_all_waits_for_it_instead_of_aborting():
    # A job slower to stop than cancel_all's wait is orphaned; when the program then exits,
    # Qt aborted it ("QThread: Destroyed while thread is still running", SIGABRT).
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import time\n"
        "from PySide6.QtCore import QCoreApplication\n"
        "from editor.engine.jobs import JobRunner\n"
        "app = QCoreApplication([])\n"
        "runner = JobRunner()\n"
        "def slow_to_stop(token):\n"
        "    token.wait()\n"
        "    time.sleep(0.5)\n"
        "job = runner.submit('slow', slow_to_stop)\n"
        "print('stopped in time:', runner.cancel_all(wait_ms=50), flush=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert "stopped in time: False" in proc.stdout
    assert "Destroyed while thread" not in proc.stderr


def test_exiting_with_a_job_that_outlives_the_exit_wait_ends_cleanly():
    # A cancelled job still inside one step (a long generator call, hashing a big file)
    # when the exit wait ran out: Python then destroyed its running QThread and Qt aborted
    # the process (exit 134, a core dump) after the window had closed.
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import logging, time\n"
        "from PySide6.QtCore import QCoreApplication\n"
        "from editor.engine import jobs\n"
        "logging.basicConfig()\n"
        "app = QCoreApplication([])\n"
        "runner = jobs.JobRunner()\n"
        "jobs.ORPHAN_EXIT_WAIT_MS = 200\n"
        "def deaf_to_cancel(token):\n"
        "    time.sleep(30)\n"
        "job = runner.submit('deaf', deaf_to_cancel)\n"
        "print('stopped in time:', runner.cancel_all(wait_ms=50), flush=True)\n"
        "print('last words', end='')\n"  # unflushed: the exit must still write it
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("last words")
    assert "Destroyed while thread" not in proc.stderr
    assert "did not stop within" in proc.stderr
    # a program ending with a failure still says so (the early exit said 0)
    failing = script + "\njobs.note_exit_status(3)\nraise SystemExit(3)\n"
    proc = subprocess.run([sys.executable, "-c", failing], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 3, proc.stderr
    assert "did not stop within" in proc.stderr


def test_the_panel_has_no_tab_stop_that_shows_nothing(qtbot, runner):
    # Its scroll area took the focus on Tab, showing no focus and doing nothing.
    from PySide6.QtWidgets import QWidget

    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    stops = [w for w in panel.findChildren(QWidget)
             if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isVisibleTo(panel)]
    assert stops == [panel.clear_button]


def test_cancelling_with_the_keyboard_keeps_the_focus_in_the_jobs(qtbot, runner):
    # Space on Cancel greyed the button, and Qt passed the focus out of the panel.
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QLineEdit, QVBoxLayout, QWidget

    window = QWidget()
    elsewhere = QLineEdit()  # what the focus went to
    panel = JobsPanel(runner)
    layout = QVBoxLayout(window)
    layout.addWidget(panel)
    layout.addWidget(elsewhere)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    assert QTest.qWaitForWindowActive(window)

    def slow(cancel):
        while not cancel.is_set():
            time.sleep(0.005)
            yield Progress(1, 10, "working")

    job = runner.submit("Precompute demo", slow)
    button = panel.row(job).cancel_button
    qtbot.waitUntil(button.isVisible, timeout=TIMEOUT_MS)  # rows are shown by the loop
    button.setFocus()
    assert QApplication.focusWidget() is button
    QTest.keyClick(button, Qt.Key.Key_Space)
    assert panel.isAncestorOf(QApplication.focusWidget())
    qtbot.waitUntil(lambda: not job.is_active, timeout=TIMEOUT_MS)


def test_a_job_whose_work_is_committed_finishes_though_cancelled_after(qtbot, runner):
    # An import recorded its model, then a cancel came: the job said "cancelled" about a
    # model that was installed.
    committed, cancelled = threading.Event(), threading.Event()

    def installs(token):
        token.commit()
        committed.set()
        assert cancelled.wait(5)
        return "installed"

    job = runner.submit("install", installs)
    assert committed.wait(5)
    with qtbot.waitSignal(runner.job_finished, timeout=TIMEOUT_MS) as blocker:
        job.cancel()
        cancelled.set()
    assert job.state == FINISHED and blocker.args[1] == "installed"


def _export_setup():
    """A tiny context and a seed session with one edit, as the window's exports get."""
    import torch

    from editor.engine.compose import EditingContext
    from editor.engine.session import Edit, Session, Source

    ctx = EditingContext(make_tiny_generator(resolution=16))
    g = ctx.generator
    n = g.styles(g.mapping(torch.zeros(1, g.z_dim), psi=1.0)).num_channels
    edit = Edit(kind="delta", params={"delta": [0.3] * n}, strength=1.0, name="lift",
                id="lift")
    return ctx, Session(source=Source(seed=3, psi=0.8), edits=(edit,))


def _cancel_after_writes(monkeypatch, name: str, tokens: list, writes: int = 1) -> None:
    """`editor.engine.export.<name>` (save_image or save_animation) cancels the job (sets
    its token, as the Cancel button does) right after its `writes`-th file is in place."""
    from editor.engine import export

    real, done = getattr(export, name), [0]

    def write_then_cancel(*args, **kwargs):
        saved = real(*args, **kwargs)
        done[0] += 1
        if done[0] == writes:
            tokens[0].set()
        return saved

    monkeypatch.setattr(export, name, write_then_cancel)


def _export_job(plan, tokens: list):
    from editor.engine.export import run_plan

    ctx, session = _export_setup()

    def run(token):
        tokens.append(token)
        return run_plan(ctx, session, plan, cancel=token)

    return run


@pytest.mark.parametrize(("kind", "writer"), [("image", "save_image"),
                                              ("sweep", "save_animation")])
def test_an_export_cancelled_once_its_file_is_written_finishes_with_it(
        qtbot, runner, tmp_path, monkeypatch, kind, writer):
    # The file was on disk, yet the job said "cancelled" and its warnings were lost.
    from editor.engine.export import ExportPlan, ExportResult

    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    tokens: list = []
    _cancel_after_writes(monkeypatch, writer, tokens)
    plan = ExportPlan(kind=kind, path=str(tmp_path / "out"), edit_id="lift", frames=3,
                      format="PNG" if kind == "image" else "GIF")
    rec = Recorder(runner)
    with qtbot.waitSignal(runner.job_ended, timeout=60_000):
        job = runner.submit(f"Export {kind}", _export_job(plan, tokens))
    assert tokens[0].is_set()  # the cancel came, after the file was written
    assert job.state == FINISHED and isinstance(rec.result(job), ExportResult)
    written = [s.path for s in rec.result(job).saved]
    assert len(written) == 1 and written[0].is_file()
    assert panel.row(job).state_label.text() == "done"


def test_a_batch_cancelled_midway_says_how_many_files_it_wrote(qtbot, runner, tmp_path,
                                                              monkeypatch):
    # It said only "cancelled": its own "after 2 of 5 files" never reached the user.
    from editor.engine.export import ExportPlan

    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    tokens: list = []
    _cancel_after_writes(monkeypatch, "save_image", tokens, writes=2)
    plan = ExportPlan(kind="batch", folder=str(tmp_path), first_seed=0, count=5)
    with qtbot.waitSignal(runner.job_cancelled, timeout=60_000):
        job = runner.submit("Export batch", _export_job(plan, tokens))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed000000.png",
                                                          "seed000001.png"]
    assert job.state == CANCELLED and job.error is None
    assert job.note == "batch cancelled after 2 of 5 files written"
    row = panel.row(job)
    assert row.state_label.text() == "cancelled"
    assert row.detail_label.text().startswith("batch cancelled after 2 of 5 files written")


def test_a_batch_cancelled_after_its_last_file_finishes(qtbot, runner, tmp_path,
                                                        monkeypatch):
    from editor.engine.export import ExportPlan

    tokens: list = []
    _cancel_after_writes(monkeypatch, "save_image", tokens, writes=3)
    plan = ExportPlan(kind="batch", folder=str(tmp_path), first_seed=0, count=3)
    rec = Recorder(runner)
    with qtbot.waitSignal(runner.job_ended, timeout=60_000):
        job = runner.submit("Export batch", _export_job(plan, tokens))
    assert job.state == FINISHED and len(rec.result(job).saved) == 3


def test_a_generator_stopped_by_cancel_can_say_what_it_kept(qtbot, runner):
    started = threading.Event()

    def keeps(cancel):
        for i in range(1, 1000):
            try:
                yield Progress(i, 1000, f"layer {i}")
            except Cancelled:
                raise Cancelled(f"{i} layers saved") from None
            started.set()
            time.sleep(0.002)

    job = runner.submit("keeps", keeps)
    assert started.wait(5)
    with qtbot.waitSignal(runner.job_cancelled, timeout=TIMEOUT_MS):
        job.cancel()
    assert job.state == CANCELLED and job.note.endswith("layers saved")


def test_a_jobs_cancel_button_is_named_after_the_job(qtbot, runner):
    # every row's button was a bare "Cancel" to a screen reader
    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    release = threading.Event()
    job = runner.submit("Download FFHQ", lambda cancel: release.wait(5))
    button = panel.row(job).cancel_button
    assert button.accessibleName() == "Cancel Download FFHQ"
    assert button.toolTip() == "Cancel Download FFHQ"
    release.set()
    qtbot.waitUntil(lambda: not job.is_active, timeout=TIMEOUT_MS)


def test_a_job_queued_behind_another_says_waiting_until_its_turn(qtbot, runner):
    # It said "running" while its own line said "waiting for the inversion before it".
    turns, release = OneAtATime(), threading.Event()
    panel = JobsPanel(runner)
    qtbot.addWidget(panel)

    def second(token):
        yield Progress(1, 2, "inverting")
        return "second"

    first = runner.submit("first", lambda token: release.wait(5), turns=turns)
    queued = runner.submit("second", second, turns=turns,
                           waiting="waiting for the inversion before it")
    qtbot.waitUntil(lambda: "waiting for" in panel.row(queued).detail_label.text(),
                    timeout=TIMEOUT_MS)
    assert panel.row(queued).state_label.text() == "waiting"
    assert panel.row(first).state_label.text() == RUNNING
    release.set()
    qtbot.waitUntil(lambda: queued.state == FINISHED, timeout=TIMEOUT_MS)
    assert panel.row(queued).state_label.text() == "done"


def test_a_job_that_finished_without_doing_its_work_says_what_instead_of_done(qtbot, runner):
    # "not imported: it does not fit ..." was listed as "done" under a full bar.
    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    runner.job_finished.connect(
        lambda job, result: setattr(job, "note", "not imported: it does not fit tiny"))
    with qtbot.waitSignal(runner.job_ended, timeout=TIMEOUT_MS):
        job = runner.submit("Import fs3.npy for tiny", lambda token: None)
    row = panel.row(job)
    assert row.state_label.text() == "not imported"
    assert row.detail_label.text().startswith("not imported: it does not fit tiny (")
    assert not row.progress_bar.isVisibleTo(row)


@pytest.mark.parametrize("long_part", ["title", "message"])
def test_a_long_title_or_file_name_keeps_the_cancel_button_in_view(qtbot, runner, long_part):
    # "Invert <a long file name>", or an export's "rendering <a long file name>", asked for
    # its whole width: in a narrow panel the row scrolled sideways and its Cancel button
    # was out of view
    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    panel.resize(320, 300)
    panel.show()
    release = threading.Event()
    name = "my_grandmother_at_the_seaside_in_1974_scanned_at_600_dpi_v2.png"  # no break
    title = f"Invert {name}" if long_part == "title" else "Export image"

    def run(cancel):
        yield Progress(0, 1, f"rendering {name}" if long_part == "message" else "rendering")
        release.wait(5)

    job = runner.submit(title, run)
    row = panel.row(job)
    qtbot.waitUntil(lambda: row.detail_label.text().startswith("rendering"),
                    timeout=TIMEOUT_MS)
    qtbot.wait(50)  # laid out
    viewport = panel._scroll.viewport()
    right = row.cancel_button.mapTo(viewport, row.cancel_button.rect().topRight()).x()
    assert 0 <= right < viewport.width()
    assert panel._scroll.horizontalScrollBar().maximum() == 0
    assert row.title_label.text() == title  # whole, for its tooltip and a screen reader
    release.set()
    qtbot.waitUntil(lambda: not job.is_active, timeout=TIMEOUT_MS)
