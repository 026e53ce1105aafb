"""argparse types that refuse bad numbers when the command line is read, before any model
loads: a NaN strength or a zero scale is a usage error, not a traceback after a render."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

from .paths import holds_undecoded_bytes

# Every command picks its device as the window does, so a file exported from the window
# replays on the device it was rendered on (a replay is exact on the same device).
DEVICE_HELP = "auto (CUDA if present, as the window does; the default), cpu, cuda or cuda:N"


def non_empty(text: str) -> str:
    """A file, folder or model name: an empty one (`--json "$OUT"` with OUT unset) is a
    usage error. It read as the option left out (the demo generator opened, no JSON
    written, the user cache written), or, for precompute's CLIP, as a traceback."""
    if not text:
        raise argparse.ArgumentTypeError("an empty name (an unset shell variable?)")
    return text


def prompt_text(text: str) -> str:
    """Words typed on the command line. Under LANG=C (UTF-8 mode and locale coercion off)
    Python reads non-ASCII argv bytes as lone surrogates: "😎" reached CLIP as an unknown
    word "����" and the recipe kept it. The terminal's bytes are UTF-8 in practice, so they
    are read as such; text without surrogates (any other locale) is kept as it is."""
    if not holds_undecoded_bytes(text):
        return text
    return os.fsencode(text).decode("utf-8", "replace")


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not above 0")
    return value


def float_within(low: float, high: float) -> Callable[[str], float]:
    """A finite float type for argparse within [low, high]."""

    def parse(text: str) -> float:
        value = finite_float(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range (use {low:g} to {high:g})")
        return value

    parse.__name__ = "float"
    return parse


def int_at_least(minimum: int, maximum: int | None = None,
                 why: str = "") -> Callable[[str], int]:
    """An int type for argparse within [minimum, maximum]; `why` the bound is what it is,
    said with it."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else \
                f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"{text} is out of range (use {bound}"
                                             + (f": {why})" if why else ")"))
        return value

    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


# More threads than cores only slow torch down; 100,000 made GNU OpenMP fail at start
# ("libgomp: Out of memory allocating ... bytes"), after the models had loaded.
THREADS_PER_CORE = 4


def max_threads() -> int:
    return THREADS_PER_CORE * (os.cpu_count() or 1)


# --threads: from 1 to THREADS_PER_CORE per CPU core of this machine
thread_count = int_at_least(1, max_threads(), f"at most {THREADS_PER_CORE} per CPU core, "
                            f"and this machine has {os.cpu_count() or 1}")
THREADS_HELP = f"CPU threads for torch (at most {THREADS_PER_CORE} per CPU core)"


def device_name(text: str) -> str:
    """A --device this machine has (pick_device's check, "auto" included): `--device cuda`
    without a GPU is a usage error before any model loads, not a traceback after."""
    from editor.core.devices import pick_device  # torch loads only once a device is read
    from editor.core.errors import AtelierError

    try:
        return str(pick_device(text))
    except AtelierError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def existing_file(text: str) -> str:
    """A file to read (a model's weights): a folder or a missing file is a usage error."""
    if os.path.isdir(non_empty(text)):
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file")
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return text


def power_of_two(text: str) -> int:
    """A generator's resolution: a power of two from 4 (GeneratorConfig's rule, read with
    the command line instead of after the runs before the one that builds it)."""
    value = int_at_least(4)(text)
    if value & (value - 1):
        raise argparse.ArgumentTypeError(f"{text} is not a power of two")
    return value
