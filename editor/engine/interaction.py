"""Background jobs step aside while the user waits for a picture.

On a CPU a job's kernels and the render worker's share the cores. With a job synthesising
32-image batches beside it, a slider drag on the demo pack went from about 6 ms per frame
to p50 19 / p95 37 ms. So the render worker reports what it does to an InteractionGate,
and a job, between two of its steps (its Progress items), waits while a render is in
flight or was asked for within the last `quiet_s`. A drag then has the cores, and the job
goes on when the hand rests. Work inside one step still overlaps with a render.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class InteractionGate:
    """Shared by the render worker (mark, begin, end) and the job threads (wait_quiet)."""

    def __init__(self, quiet_s: float = 0.3, clock: Callable[[], float] = time.monotonic):
        self.quiet_s = quiet_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_request = -math.inf
        self._in_flight = 0

    def mark(self) -> None:
        """A render was asked for (called as the request is posted)."""
        with self._lock:
            self._last_request = self._clock()

    def begin(self) -> None:
        with self._lock:
            self._in_flight += 1

    def end(self) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def busy_for(self) -> float:
        """Seconds until the gate is quiet if nothing new happens (inf while rendering)."""
        with self._lock:
            if self._in_flight:
                return math.inf
            return max(0.0, self._last_request + self.quiet_s - self._clock())

    def wait_quiet(self, cancelled: threading.Event | None = None,
                   poll_s: float = 0.02) -> float:
        """Block until the gate is quiet or `cancelled` is set; the seconds waited."""
        waiter = cancelled if cancelled is not None else threading.Event()  # never set
        t0 = time.monotonic()
        while (left := self.busy_for()) > 0:
            if waiter.wait(min(left, poll_s)):
                break
        return time.monotonic() - t0
