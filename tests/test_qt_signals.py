"""Regression guard for a PySide6 crash: 6.12.0 on CPython 3.11 aborted the interpreter
(bool_dealloc) after a few hundred queued cross-thread signals carrying a bool. The render
engine relies on exactly this traffic, so we send far more than that and count them."""

from __future__ import annotations

import PySide6
from PySide6.QtCore import QObject, QThread, Signal, Slot

N_SIGNALS = 2500


class _Emitter(QObject):
    tick = Signal(int, bool, float)
    done = Signal()

    @Slot()
    def run(self):
        for i in range(N_SIGNALS):
            self.tick.emit(i, i % 2 == 0, i * 0.5)
        self.done.emit()


class _Receiver(QObject):
    def __init__(self):
        super().__init__()
        self.received: list[tuple[int, bool, float]] = []

    @Slot(int, bool, float)
    def on_tick(self, i, flag, value):
        self.received.append((i, flag, value))


def test_pyside6_version_avoids_the_known_crash():
    major, minor, patch = (int(p) for p in PySide6.__version__.split(".")[:3])
    assert (major, minor, patch) != (6, 12, 0)


def test_thousands_of_queued_signals_with_bools_all_arrive(qtbot):
    thread = QThread()
    emitter = _Emitter()
    receiver = _Receiver()
    emitter.moveToThread(thread)
    emitter.tick.connect(receiver.on_tick)  # receiver lives in the main thread: queued
    thread.started.connect(emitter.run)
    try:
        with qtbot.waitSignal(emitter.done, timeout=30_000):
            thread.start()
        qtbot.waitUntil(lambda: len(receiver.received) == N_SIGNALS, timeout=30_000)
    finally:
        thread.quit()
        thread.wait(5_000)
    assert [r[0] for r in receiver.received] == list(range(N_SIGNALS))
    assert all(flag == (i % 2 == 0) for i, flag, _ in receiver.received)
    assert receiver.received[-1][2] == (N_SIGNALS - 1) * 0.5
