"""The Qt-free renderer: turns a RenderRequest into a RenderResult with the loaded model.

It never raises: a failure (out of memory, a NaN, a bad model) becomes `result.error`, so
the worker that calls it keeps serving.
"""

from __future__ import annotations

import time
import traceback

import numpy as np
import torch

from editor.core.devices import cuda_name, pick_device
from editor.core.errors import AtelierError, is_out_of_memory
from editor.core.generator import Generator

from .compose import EditError, EditingContext, EditStatus
from .render_types import RenderRequest, RenderResult

# what the window's menu calls the CPU choice: the advice after a failed render names it
DEVICE_MENU = "View ▸ Device"


def rendering_platform(device: torch.device) -> dict[str, str]:
    """What drew a picture, for its recipe: the same recipe replays to the same pixels
    on the same kind of device and torch; elsewhere they may differ slightly (GPU
    kernels sum in other orders)."""
    name = device.type
    if device.type == "cuda":  # a driver that answers no more: still drawn
        name = cuda_name(device) or name
    return {"device": device.type, "name": name, "torch": torch.__version__}


def platform_differences(recorded: object, here: dict[str, str]) -> list[str]:
    """How the platform a file's recipe records differs from `here`, in words (none when
    it records none, or a malformed one: a note, not a refusal)."""
    if not isinstance(recorded, dict):
        return []
    labels = {"device": "device", "name": "processor", "torch": "torch"}
    if recorded.get("device") != here["device"]:
        labels.pop("name")  # a CPU's name is "cpu": the device says it already
    return [f"{label} {recorded[key]} there, {here[key]} here" for key, label in labels.items()
            if isinstance(recorded.get(key), str) and recorded[key] != here[key]]


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
        # the unedited picture, per resolution (preview or full): a drag alternates them
        self._before: dict[bool, tuple[tuple, np.ndarray]] = {}  # -> (source key, image)
        self.set_context(context)

    def set_context(self, context: EditingContext | None,
                    device: torch.device | None = None) -> None:
        """Render with `context`, moved to `device` (default: the current one); the device
        changes only with a context that is there (a failed move changes neither)."""
        device = device if device is not None else self.device
        if context is not None:
            context.generator.to(device)
        self.context, self.device = context, device
        self.platform = rendering_platform(device)  # for the recipes of its pictures
        self._before = {}

    def set_generator(self, generator: Generator | None) -> None:
        self.set_context(EditingContext(generator) if generator is not None else None)

    @property
    def generator(self) -> Generator | None:
        return self.context.generator if self.context is not None else None

    def needs_preview(self, request: RenderRequest) -> bool:
        g = self.generator
        return bool(request.interactive and g is not None
                    and g.img_resolution > self.preview_res)

    def render(self, request: RenderRequest, preview: bool = False) -> RenderResult:
        t0 = time.perf_counter()
        out_of_memory = False
        try:
            return self._render(request, preview, t0)
        except (EditError, AtelierError) as e:
            message = str(e)
        except Exception as e:  # noqa: BLE001 - any failure becomes data; the worker keeps serving
            out_of_memory = is_out_of_memory(e)
            message = self._out_of_memory_advice() if out_of_memory else \
                "".join(traceback.format_exception_only(type(e), e)).strip()
        if out_of_memory:
            # only out of the except block: its traceback held the failed render's
            # tensors, which the cache cannot give back while they live
            torch.cuda.empty_cache()  # a no-op where CUDA never started
        return self._failure(request, preview, t0, message)

    def _out_of_memory_advice(self) -> str:
        """The window's renders are small: what fills the memory is mostly a job beside
        them (an inversion, a precompute, an export)."""
        if self.device.type == "cuda":
            return ("out of GPU memory: a running job may be using the GPU memory: wait for "
                    f"it or cancel it, or choose the CPU ({DEVICE_MENU})")
        return "out of memory: a running job may be using the memory: wait for it or cancel it"

    @torch.no_grad()
    def _render(self, request: RenderRequest, preview: bool, t0: float) -> RenderResult:
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
                            edit_status=statuses, before=before, session=request.session,
                            platform=self.platform)

    def _before_image(self, request: RenderRequest, preview: bool) -> np.ndarray:
        """The unedited source at the same resolution, kept while only edits change (one
        per resolution: with one kept, a drag's previews and its full frames each drew
        it again, four syntheses a value instead of two)."""
        ctx = self.context
        session = request.session
        key = (session.source, session.noise_mode)
        kept = self._before.get(preview)
        if kept is None or kept[0] != key:
            img = ctx.generator.synthesize(ctx.source_code(session.source),
                                           noise_mode=session.noise_mode,
                                           max_res=self.preview_res if preview else None)
            kept = self._before[preview] = (key, to_uint8_image(img))
        return kept[1]

    @staticmethod
    def _failure(request: RenderRequest, preview: bool, t0: float, message: str
                 ) -> RenderResult:
        return RenderResult(request.seq, request.generation, None, preview,
                            {"total_ms": (time.perf_counter() - t0) * 1e3}, error=message)
