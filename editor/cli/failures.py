"""The one line a command prints for an error it reports without a traceback."""

from __future__ import annotations

from editor.core.errors import is_out_of_memory, out_of_memory_text


def failure_line(e: BaseException) -> str:
    """Running out of memory is reported (on a CPU torch raises it as a plain
    RuntimeError); any other RuntimeError is a bug, and goes on as a traceback."""
    if is_out_of_memory(e):
        return out_of_memory_text(e)
    if isinstance(e, RuntimeError):
        raise e
    return str(e) or type(e).__name__
