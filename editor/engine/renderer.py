"""The Qt-free renderer: turns a RenderRequest into a RenderResult with the loaded model.

It never raises: a failure (out of memory, a NaN, a bad model) becomes `result.error`, so
the worker that calls it keeps serving.
"""

from __future__ import annotations

import time
import traceback

import numpy as np
import torch

from editor.core.errors import AtelierError
from editor.core.generator import Generator

from .compose import EditError, EditingContext, EditStatus
from .render_types import RenderRequest, RenderResult


def pick_device(preferred: str | None = None) -> torch.device:
    """The device named ("cpu", "cuda", "cuda:1"; None or "auto": CUDA if present), checked
    to exist here: AtelierError otherwise."""
    if not preferred or preferred == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(preferred)
    except (RuntimeError, ValueError):
        raise AtelierError(f"unknown device {preferred!r}; use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise AtelierError(f"device {preferred!r} is not supported; use cpu, cuda or cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise AtelierError(f"device {preferred!r} asked for, but no CUDA device is "
                               "available")
        if device.index is not None and device.index >= count:
            raise AtelierError(f"device {preferred!r} asked for, but there are only {count} "
                               "CUDA devices")
    return device


def to_uint8_image(img: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [-1, 1] -> (H, W, 3) uint8 that owns its memory."""
    if not torch.isfinite(img).all():
        raise FloatingPointError("the generator produced NaN or infinite values")
    x = ((img[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return np.ascontiguousarray(x.permute(1, 2, 0).cpu().numpy()).copy()


class Renderer:
    """Holds the editing context (models on their device) and renders requests."""

    def __init__(self, context: EditingContext | None = None, device: str | None = None,
                 preview_res: int = 256):
        self.device = pick_device(device)
        self.preview_res = preview_res
        self.context: EditingContext | None = None
        self._before: tuple[tuple, np.ndarray] | None = None  # (source key, image)
        self.set_context(context)

    def set_context(self, context: EditingContext | None) -> None:
        if context is not None:
            context.generator.to(self.device)
        self.context = context
        self._before = None

    def set_generator(self, generator: Generator | None) -> None:
        self.set_context(EditingContext(generator) if generator is not None else None)

    @property
    def generator(self) -> Generator | None:
        return self.context.generator if self.context is not None else None

    def needs_preview(self, request: RenderRequest) -> bool:
        g = self.generator
        return bool(request.interactive and g is not None
                    and g.img_resolution > self.preview_res)

    @torch.no_grad()
    def render(self, request: RenderRequest, preview: bool = False) -> RenderResult:
        t0 = time.perf_counter()
        try:
            ctx = self.context
            if ctx is None:
                raise RuntimeError("no generator is loaded")
            statuses: dict[str, EditStatus] = {}
            code = ctx.compose(request.session, statuses)
            t1 = time.perf_counter()
            img = ctx.generator.synthesize(code, noise_mode=request.session.noise_mode,
                                           max_res=self.preview_res if preview else None)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            array = to_uint8_image(img)
            t3 = time.perf_counter()
            before = self._before_image(request, preview) if request.compare else None
            timings = {"styles_ms": (t1 - t0) * 1e3, "synthesis_ms": (t2 - t1) * 1e3,
                       "convert_ms": (t3 - t2) * 1e3, "total_ms": (t3 - t0) * 1e3}
            return RenderResult(request.seq, request.generation, array, preview, timings,
                                edit_status=statuses, before=before)
        except (EditError, AtelierError) as e:
            return self._failure(request, preview, t0, str(e))
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            return self._failure(request, preview, t0,
                                 "out of GPU memory: try a smaller preview or the CPU")
        except Exception as e:  # noqa: BLE001 - any failure becomes data; the worker keeps serving
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            return self._failure(request, preview, t0, detail)

    def _before_image(self, request: RenderRequest, preview: bool) -> np.ndarray:
        """The unedited source at the same resolution, kept while only edits change."""
        ctx = self.context
        session = request.session
        key = (session.source, session.noise_mode, preview)
        if self._before is None or self._before[0] != key:
            img = ctx.generator.synthesize(ctx.source_code(session.source),
                                           noise_mode=session.noise_mode,
                                           max_res=self.preview_res if preview else None)
            self._before = (key, to_uint8_image(img))
        return self._before[1]

    @staticmethod
    def _failure(request: RenderRequest, preview: bool, t0: float, message: str
                 ) -> RenderResult:
        return RenderResult(request.seq, request.generation, None, preview,
                            {"total_ms": (time.perf_counter() - t0) * 1e3}, error=message)
