"""Plain data that crosses between the UI thread and the render worker.

Requests are frozen snapshots: the worker never reads live UI state. Results carry a
finished 8-bit image that owns its memory, never a tensor.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .session import Session

_request_ids = itertools.count(1)


def next_request_id() -> int:
    return next(_request_ids)


@dataclass(frozen=True)
class RenderRequest:
    session: Session  # an immutable snapshot of the document
    interactive: bool = False  # True while a control is moving: a preview may come first
    compare: bool = False  # also hand back the unedited source image (before/after view)
    generation: int = 0  # bumped when the model changes; older results are ignored
    seq: int = field(default_factory=next_request_id)


@dataclass
class RenderResult:
    seq: int
    generation: int
    image: np.ndarray | None  # (H, W, 3) uint8, C-contiguous, owns its memory
    preview: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    edit_status: dict = field(default_factory=dict)  # edit id -> compose.EditStatus
    before: np.ndarray | None = None  # the source without edits, when the request asked
    session: Session | None = None  # the request's snapshot: what the picture shows
    platform: dict | None = None  # renderer.rendering_platform: what drew it

    @property
    def ok(self) -> bool:
        return self.error is None and self.image is not None
