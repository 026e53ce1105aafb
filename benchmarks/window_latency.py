"""Slider-to-image latency in the running editor window (offscreen), demo pack by default.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/window_latency.py [--events 150]

It opens the real MainWindow, types a prompt, then moves the α slider like a hand (one
step every --interval-ms, as mouse-move events arrive) and records, for every frame the
canvas shows, the time from the slider change that produced it to the moment the window
put it on the canvas. Prints p50/p95 over shown frames, the final-value latency (last
event -> its image on the canvas), how many intermediate values were skipped (stale
requests dropped by design) and one bare synthesis for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if not __package__:  # run as a file: the checkout (benchmarks.latency) is not on the path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from editor.cli import prepare_interactive_process  # noqa: E402
from editor.core.arg_types import int_at_least, positive_float, thread_count  # noqa: E402

prepare_interactive_process()  # the editor's OpenMP settings, before torch loads


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int_at_least(1), default=150)
    p.add_argument("--interval-ms", type=positive_float, default=16.0)
    p.add_argument("--target", default="a cartoon face with sunglasses")
    p.add_argument("--threads", type=thread_count, default=2)
    args = p.parse_args(argv)

    import torch
    from PySide6.QtCore import QSettings

    from editor.engine.compute_threads import serial_ui_thread
    from editor.ui.app import init_application
    from editor.ui.main_window import MainWindow

    torch.set_num_threads(args.threads)
    serial_ui_thread()  # as run_app: the render worker gets the cores
    app = init_application()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      "/tmp/atelier-window-latency-settings")
    win = MainWindow()
    try:
        return drag_and_report(win, app, args)
    finally:
        # the render worker stopped on every way out: a thread left running aborted
        # Python's exit (a core dump after a traceback or Ctrl-C)
        win.document.undo_stack.setClean()  # a benchmark's drag is not work to save
        win.close()


def drag_and_report(win, app, args: argparse.Namespace) -> int:
    import torch
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    # the engine benchmark's percentile (the same p50/p95) and its Ctrl-C in a drag
    from benchmarks.latency import ctrl_c_quits, percentile
    from editor.engine.compute_threads import call_on_worker_thread

    win.resize(1280, 820)
    win.show()

    def wait(cond, timeout=60.0) -> None:
        end = time.perf_counter() + timeout
        while not cond():
            if time.perf_counter() > end:
                raise TimeoutError("the window did not render in time")
            app.processEvents()
            time.sleep(0.001)

    wait(lambda: win.pack is not None and win.last_result is not None)
    if not win.pack.has_directions:
        print("this pack has no precomputed directions; run `atelier precompute` first",
              file=sys.stderr)
        return 1
    pp = win.prompt_panel
    pp.target.setText(args.target)
    pp.target.editingFinished.emit()
    seq = win.last_request.seq
    wait(lambda: win.last_result.seq >= seq)

    posted: dict[int, float] = {}
    shown: dict[int, float] = {}
    win.worker.rendered.connect(lambda r: shown.setdefault(r.seq, time.perf_counter()))
    slider = pp.alpha.slider
    slider.setSliderDown(True)
    lo, hi = slider.minimum(), slider.maximum()
    ticks = [round(lo + (hi - lo) * (0.2 + 0.6 * i / max(1, args.events - 1)))
             for i in range(args.events)]
    # the hand, as a precise timer in the window's own event loop: between events the UI
    # thread sleeps as in the real editor (an earlier loop woke it every millisecond to
    # poll; with it, p50 was 7.3 ms against 6.7 here, 4 runs each on the 2-core CPU)
    pending = iter(ticks)
    drag = QEventLoop()

    def move_hand() -> None:
        tick = next(pending, None)
        if tick is None:
            hand.stop()
            drag.quit()
            return
        t_event = time.perf_counter()  # the change and its render request follow
        slider.setValue(tick)
        # a tick the slider already shows makes no new request: the one shown keeps the
        # time of the event that made it (overwritten, its latency read short)
        posted.setdefault(win.last_request.seq, t_event)

    hand = QTimer()
    hand.setTimerType(Qt.TimerType.PreciseTimer)
    hand.setInterval(max(1, round(args.interval_ms)))
    hand.timeout.connect(move_hand)
    move_hand()
    hand.start()
    with ctrl_c_quits(drag):  # in the hand's slot, Ctrl-C was printed and the drag went on
        drag.exec()
    last_event = max(posted.values())
    final = win.last_request.seq
    wait(lambda: final in shown)
    slider.setSliderDown(False)
    lat = [(shown[s] - posted[s]) * 1e3 for s in posted if s in shown]

    shown_last_ms = (shown[final] - last_event) * 1e3
    name = win.pack.name
    model = win.pack.model
    win.document.undo_stack.setClean()  # a benchmark's drag is not work to save
    win.close()  # stops the render worker: the bare synthesis below has the cores alone
    QApplication.processEvents()

    @torch.no_grad()
    def bare_synthesis_ms() -> float:
        gen = model.generator
        code = gen.styles(gen.mapping(model.z_for_seed(0), psi=1.0))
        gen.synthesize(code, noise_mode="const")  # warm-up on this thread
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            gen.synthesize(code, noise_mode="const")
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    bare = call_on_worker_thread(bare_synthesis_ms)  # a thread set up as the worker's
    print(f"window latency, {name}, {args.events} α events every "
          f"{args.interval_ms:g} ms, {args.threads} threads")
    # events on a tick the slider already shows make no request: count the requests
    print(f"  frames shown       {len(lat)} of {len(posted)} requests (the rest were stale)")
    print(f"  p50 / p95          {percentile(lat, 50):.1f} / {percentile(lat, 95):.1f} ms")
    print(f"  final value shown  {shown_last_ms:.1f} ms after the last event")
    print(f"  bare synthesis     {bare:.1f} ms (median of 30); p95 / bare = "
          f"{percentile(lat, 95) / bare:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
