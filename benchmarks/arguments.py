"""Argument types the benchmarks share beyond editor.core.arg_types (which may not use
the engine)."""

from __future__ import annotations

import argparse

from editor.core.arg_types import non_empty
from editor.engine.export import check_targets


def output_file(text: str) -> str:
    """A file written at the end of a long run (--json): a folder or a place that cannot
    be written is refused before the run, not found after it."""
    try:
        check_targets([non_empty(text)])
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text
