"""Times for people to read: the progress lines' clock and an estimate's rough size."""
from __future__ import annotations

import math


def clock_duration(seconds: float) -> str:
    """A progress line's time, "1h02m" where it is hours and "3m05s" below: a first-use
    precompute of a large generator on a CPU is days of work, unreadable as seconds."""
    if not math.isfinite(seconds):  # no rate yet
        return "--"
    s = int(max(0.0, seconds) + 0.5)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def rough_duration(seconds: float) -> str:
    """A time for an estimate, in the unit a person plans with: "66 days", "3.2 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"
