"""Which threads run PyTorch's parallel CPU kernels in the editor.

PyTorch parallelises CPU kernels with OpenMP, and OpenMP gives every thread that runs a
parallel kernel its own team of helper threads, kept for the life of that thread. Once a
process holds more such threads than the machine has cores, GNU OpenMP stops letting idle
helpers spin between kernels, and each of the hundreds of small kernels in one synthesis
then pays a system call to wake them. On the 2-core CPU a demo frame took 6.9 ms on the
render worker when the UI thread had once run a parallel kernel (model loading, a test
render), against 5.6 ms when the worker's team had the cores to itself.

So the editor keeps its UI thread serial (it never needs a parallel kernel: models load
and render on the worker, long work runs as jobs) and lets the render worker and the jobs
use the cores. Command-line tools do not call this: their one thread has the cores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")

_worker_threads: int | None = None


def serial_ui_thread() -> None:
    """Call on the UI thread before any tensor work: remember torch's thread count for
    the workers, and run this thread's own kernels on one thread."""
    global _worker_threads
    if _worker_threads is None:
        _worker_threads = torch.get_num_threads()
    torch.set_num_threads(1)


def worker_threads() -> int:
    """The thread count a worker's kernels use: torch's own, as it was before the UI
    thread was made serial."""
    return _worker_threads if _worker_threads is not None else torch.get_num_threads()


def parallel_worker_thread() -> None:
    """Call first on a worker thread: its kernels use `worker_threads()` threads (a new
    thread would otherwise take the count last set anywhere, 1 after serial_ui_thread)."""
    torch.set_num_threads(worker_threads())


def call_on_worker_thread(fn: Callable[[], T]) -> T:
    """fn() on a new thread set up as a worker (for measuring what the render worker
    would see, from a serial UI thread); its exception, if any, is raised here."""
    out: dict[str, object] = {}

    def run() -> None:
        parallel_worker_thread()
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            out["error"] = e

    thread = threading.Thread(target=run, name="atelier-measure")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]
