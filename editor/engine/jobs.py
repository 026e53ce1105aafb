"""Long work (precompute, downloads, later training and inversion) as background jobs.

A job is a title and a function `fn(token)`. `token` is a JobToken: a threading.Event that
is set when the user cancels (pass it on as `cancel=`), with `report(Progress)` for work
that reports through callbacks. `fn` either returns a result, or returns an iterator (a
generator) of Progress items; then the last non-Progress item, or the generator's return
value, is the result. The result is handed over by `job_finished` only: a Job keeps no
reference to it, since ended jobs stay listed (an inversion's pictures, an export's
frames) long after their receivers took what they needed.

Each job runs on its own QThread. The worker thread never emits the public signals: it
leaves its newest Progress in a slot and posts one queued event when it ends; the runner,
on the UI thread, polls the slots on a timer (at most one job_progress per job and tick,
and always the newest) and emits everything from the UI thread. So the UI never drowns in
progress events and every receiver, lambdas included, runs on the UI thread.

Cancel is cooperative: job.cancel() sets the token. A job that raises Cancelled, stops
early after the token was set, or fails after it was set, ends as cancelled, not failed;
the Cancelled's message (what the job kept: "2 of 5 files written") is the job's note. A
generator is stopped by raising Cancelled where it waits, so that it can say so. A job
whose work is in place (token.commit()) ends as finished whatever comes after.

A runner given the window's InteractionGate pauses a generator job between its steps while
the user waits for a render, so that a drag keeps the cores (see interaction.py).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot

from editor.core.errors import error_message
from editor.methods.global_directions import Progress
from editor.methods.precompute import Cancelled

from .compute_threads import parallel_worker_thread
from .interaction import InteractionGate

log = logging.getLogger(__name__)

RUNNING, FINISHED, FAILED, CANCELLED = "running", "finished", "failed", "cancelled"
PROGRESS_INTERVAL_MS = 50  # at most ~20 progress signals per second per job

JobFn = Callable[["JobToken"], Any]

_ids = itertools.count(1)
# Threads that did not stop within cancel_all's wait: kept referenced so that Python never
# destroys a QThread that is still running (Qt aborts the process when that happens).
_orphans: list[QThread] = []
ORPHAN_EXIT_WAIT_MS = 30_000
_exit_status = 0  # what the program was ending with, for an exit that skips Python's


def note_exit_status(status: int) -> None:
    """The status the program is about to end with (the window's app.exec()): an exit
    that gives up on a stuck job ends with it, not with 0."""
    global _exit_status
    _exit_status = int(status)


def _wait_for_orphans() -> None:
    """At exit, before Python destroys the orphaned QThreads: wait for them to end, since
    destroying a running QThread aborts the process. Their jobs were cancelled, so they
    stop on their own (a download within a second or so); one stuck in a step that cannot
    look at its token (hashing a big file, one long generator call) is given up on after a
    while, not waited for forever.

    Given up on, the process ends at once with a clean exit: letting Python finish would
    destroy the running QThread, which Qt answers with an abort (exit 134, a core dump).
    Nothing is lost by stopping such a job mid-step: its files are written under temporary
    names and renamed into place, and a precompute or a download resumes next time."""
    deadline = time.monotonic() + ORPHAN_EXIT_WAIT_MS / 1000
    for thread in _orphans:
        if thread.isRunning():
            log.warning("waiting for a cancelled job to stop before exiting")
            thread.wait(max(0, int((deadline - time.monotonic()) * 1000)))
    if any(thread.isRunning() for thread in _orphans):
        log.warning("a cancelled job did not stop within %d s; exiting without it",
                    ORPHAN_EXIT_WAIT_MS // 1000)
        _exit_now()


def _exit_now() -> None:
    """End the process without Python's finalisation (which would destroy the QThreads
    still running), after flushing what it would have flushed."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(_exit_status)


atexit.register(_wait_for_orphans)


class JobToken(threading.Event):
    """The cancel flag handed to a job, plus a thread-safe way to report progress."""

    def __init__(self) -> None:
        super().__init__()
        self.latest: Progress | None = None  # one slot; assignment is atomic in CPython
        self.committed = False

    def report(self, progress: Progress) -> None:
        self.latest = progress

    def commit(self) -> None:
        """The job's work is in place (a model recorded, a file renamed into place): a
        cancel from now on changes nothing, and the job ends as finished, not cancelled."""
        self.committed = True


class OneAtATime:
    """Jobs that run one at a time, in the order they were wrapped (inversions: each
    takes every core and, at 1024 px, gigabytes; and results landing in the order they
    happened to finish made the last picture dropped not the last one used). A wrapped
    job waits for its turn on its own thread, saying so, and can be cancelled meanwhile."""

    def __init__(self) -> None:
        self._turns: list[object] = []  # the wrapped jobs not ended, in order
        self._changed = threading.Condition()

    def wrap(self, fn: JobFn, waiting: str) -> JobFn:
        """`fn` as a job that first waits until the jobs wrapped before it have ended
        (reporting `waiting` meanwhile)."""
        turn = object()
        with self._changed:
            self._turns.append(turn)

        def release() -> None:
            with self._changed:
                self._turns.remove(turn)
                self._changed.notify_all()

        def in_turn(token: JobToken) -> Any:
            try:
                with self._changed:
                    if self._turns[0] is not turn:
                        token.report(Progress(0, 1, waiting))
                    while self._turns[0] is not turn:
                        if token.is_set():
                            raise Cancelled("cancelled before it started")
                        self._changed.wait(0.1)
                value = fn(token)
            except BaseException:
                release()
                raise
            if not isinstance(value, Iterator):
                release()
                return value
            holding = _held_until_done(value, release)
            next(holding)  # started: its end, a cancel or a close releases the turn
            return holding

        return in_turn


def _held_until_done(items: Iterator, release: Callable[[], None]) -> Iterator:
    try:
        yield None  # taken by the caller: a generator never started runs no finally
        return (yield from items)
    finally:
        release()


class Job:
    """A handle on one job. Its state changes on the UI thread only."""

    def __init__(self, title: str, fn: JobFn, key: str | None = None):
        self.id = next(_ids)
        self.title = title
        self.key = key
        self.fn = fn
        self.state = RUNNING
        self.progress: Progress | None = None  # the last one delivered
        self.error: str | None = None  # the one-line message of a failed job
        # what its failure says beyond that line (the error it was raised from), if anything
        self.details: str | None = None
        # what a cancelled job says it kept, or what a finished one did not do, if anything
        self.note: str | None = None
        self.started_at = time.monotonic()
        self.ended_at: float | None = None
        self.token = JobToken()
        self._outcome: tuple[str, Any] | None = None  # written by the worker thread

    def cancel(self) -> None:
        """Ask the job to stop; it ends as cancelled once it notices."""
        if self.state == RUNNING:
            self.token.set()

    @property
    def cancel_requested(self) -> bool:
        return self.token.is_set()

    @property
    def is_active(self) -> bool:
        return self.state == RUNNING

    @property
    def elapsed_s(self) -> float:
        return (self.ended_at or time.monotonic()) - self.started_at

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.title!r} {self.state}>"


def error_details(e: BaseException) -> str | None:
    """What a failure says beyond error_message's line, for a box's details: the whole of
    its own message when the line left some out, and the message of the error it was
    raised from (a short line raised from the whole story); None when there is no more."""
    line, own = error_message(e), str(e).strip()
    parts = [own] if own and own not in line else []
    cause = e.__cause__
    if cause is not None and str(cause).strip() and str(cause).strip() not in parts:
        parts.append(str(cause).strip())
    return "\n\n".join(parts) or None


def _run_job(job: Job, gate: InteractionGate | None = None) -> tuple[str, Any]:
    """The job's body, on the worker thread: the outcome as (state, result; a cancelled
    job's is its note, or None; a failed job's its line and details)."""
    token = job.token
    try:
        value = job.fn(token)
        if isinstance(value, Iterator):
            value = _drain(value, token, gate)
        return (CANCELLED, None) if token.is_set() and not token.committed else (FINISHED, value)
    except Cancelled as e:
        return CANCELLED, str(e) or None
    except Exception as e:  # noqa: BLE001 - any error ends the job, never the program
        if token.is_set():  # e.g. a download's own cancel exception
            log.debug("job %r stopped with %r after cancel", job.title, e)
            return CANCELLED, None
        log.error("job %r failed", job.title, exc_info=e)
        return FAILED, (error_message(e), error_details(e))


def _drain(items: Iterator, token: JobToken, gate: InteractionGate | None = None) -> Any:
    """Pull items until the end, or until cancelled (then the generator is stopped, which
    lets it save partial work in its finally blocks). A committed job is pulled to its
    end: its work is in place, and what is left hands over its result. With a gate, each
    next step waits while the user waits for a render."""
    result = None
    while True:
        if gate is not None:
            gate.wait_quiet(token)
        if token.is_set() and not token.committed:
            _stop(items)
            return result
        try:
            item = next(items)
        except StopIteration as stop:
            return stop.value if stop.value is not None else result
        if isinstance(item, Progress):
            token.report(item)
        else:
            result = item


def _stop(items: Iterator) -> None:
    """Stop a cancelled generator: Cancelled raised where it waits, so that it can say
    what it kept (that Cancelled, or any error, propagates); one that goes on anyway, or
    an iterator that is no generator, is closed."""
    throw = getattr(items, "throw", None)
    if throw is not None:
        try:
            throw(Cancelled())
        except StopIteration:
            return
    close = getattr(items, "close", None)
    if close is not None:
        close()


class _JobThread(QThread):
    ended = Signal(object)  # the Job; queued to the runner on the UI thread

    def __init__(self, job: Job, parent: QObject, gate: InteractionGate | None = None):
        super().__init__(parent)
        self.job = job
        self.gate = gate

    def run(self) -> None:
        parallel_worker_thread()
        self.job._outcome = _run_job(self.job, self.gate)
        self.ended.emit(self.job)


class JobRunner(QObject):
    """Runs jobs on background threads; every signal is emitted on the UI thread."""

    job_started = Signal(object)  # Job
    job_progress = Signal(object, object)  # Job, Progress
    job_finished = Signal(object, object)  # Job, result
    job_failed = Signal(object, str)  # Job, one-line message
    job_cancelled = Signal(object)  # Job
    job_ended = Signal(object)  # Job, after any of the three above

    def __init__(self, parent: QObject | None = None,
                 progress_interval_ms: int = PROGRESS_INTERVAL_MS,
                 interaction: InteractionGate | None = None):
        """With `interaction` (shared with the render worker), a job that yields Progress
        steps pauses between steps while the user waits for a render."""
        super().__init__(parent)
        self.interaction = interaction
        self._threads: dict[int, _JobThread] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(progress_interval_ms)
        self._timer.timeout.connect(self._deliver_progress)
        app = QCoreApplication.instance()
        if app is not None:  # a safety net: the window should call cancel_all itself
            app.aboutToQuit.connect(self.cancel_all)

    def submit(self, title: str, fn: JobFn, *, key: str | None = None,
               turns: OneAtATime | None = None, waiting: str = "waiting") -> Job:
        """Start `fn(token)` on a new thread. With a `key`, while a job with the same key
        runs, that job is returned instead of starting a second one. With `turns`, it
        waits (saying `waiting`) until the jobs submitted before it with them ended."""
        if key is not None and (running := self.find(key)) is not None:
            return running
        job = Job(title, fn if turns is None else turns.wrap(fn, waiting), key)
        thread = _JobThread(job, self, self.interaction)
        thread.ended.connect(self._on_ended, Qt.ConnectionType.QueuedConnection)
        self._threads[job.id] = thread
        self.job_started.emit(job)
        thread.start()
        self._timer.start()
        return job

    def active_jobs(self) -> list[Job]:
        return [t.job for t in self._threads.values()]

    def find(self, key: str) -> Job | None:
        """The running job with this key, if any."""
        return next((j for j in self.active_jobs() if j.key == key), None)

    def cancel_all(self, wait_ms: int = 5000) -> bool:
        """Cancel every job and wait up to `wait_ms` in all for their threads (for closing
        the window). Jobs that stopped end now, with their signals. False if some thread
        was still running; it is kept alive until it ends on its own."""
        threads = list(self._threads.values())
        for thread in threads:
            thread.job.cancel()
        deadline = time.monotonic() + wait_ms / 1000
        for thread in threads:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if thread.wait(left_ms):
                self._on_ended(thread.job)
        stuck = list(self._threads.values())
        for thread in stuck:
            log.warning("job %r did not stop within %d ms", thread.job.title, wait_ms)
            thread.setParent(None)
            _orphans.append(thread)
        return not stuck

    @Slot()
    def _deliver_progress(self) -> None:
        for job in self.active_jobs():
            self._flush_progress(job)
        if not self._threads:
            self._timer.stop()

    def _flush_progress(self, job: Job) -> None:
        latest = job.token.latest
        if latest is not None and latest is not job.progress:
            job.progress = latest
            self.job_progress.emit(job, latest)

    @Slot(object)
    def _on_ended(self, job: Job) -> None:
        thread = self._threads.pop(job.id, None)
        if thread is None:  # already ended by cancel_all
            return
        thread.wait()  # run() returns right after posting this event
        thread.deleteLater()
        self._flush_progress(job)  # the last progress arrives before the end
        state, payload = job._outcome or (FAILED, ("the job ended without an outcome", None))
        job.state, job.ended_at, job.fn, job._outcome = state, time.monotonic(), None, None
        if state == FINISHED:
            self.job_finished.emit(job, payload)
        elif state == CANCELLED:
            job.note = payload
            self.job_cancelled.emit(job)
        else:
            job.error, job.details = payload
            self.job_failed.emit(job, job.error)
        self.job_ended.emit(job)
        # the ended job stays listed (the jobs panel keeps the last ones): not with the
        # payload of its last progress (an inversion's preview pictures)
        job.progress = job.token.latest = _plain(job.progress)
        if not self._threads:
            self._timer.stop()


def _plain(progress: Progress | None) -> Progress | None:
    """What every Progress says (done, total, message, time left), without what a kind of
    progress carries besides."""
    if progress is None or type(progress) is Progress:
        return progress
    return Progress(progress.done, progress.total, progress.message, progress.eta_s)


class RateEta:
    """Progress with a time-left estimate from the rate since the first report (work done
    before it, like a resumed download's bytes, does not count toward the rate)."""

    def __init__(self, min_elapsed_s: float = 1.0):
        self.min_elapsed_s = min_elapsed_s  # no estimate from the first noisy moments
        self._start: tuple[float, int] | None = None

    def progress(self, done: int, total: int | None, message: str = "") -> Progress:
        now = time.monotonic()
        if self._start is None:
            self._start = (now, done)
        t0, d0 = self._start
        elapsed, ran = now - t0, done - d0
        eta = None
        if total and ran > 0 and elapsed >= self.min_elapsed_s:
            eta = max(0.0, (total - done) * elapsed / ran)
        return Progress(done, total or 0, message, eta)


__all__ = ["CANCELLED", "FAILED", "FINISHED", "RUNNING", "Cancelled", "Job", "JobRunner",
           "JobToken", "Progress", "RateEta", "error_details", "error_message"]
