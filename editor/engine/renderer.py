"""The Qt-free renderer: turns a RenderRequest into a RenderResult with the loaded model.

It never raises: a failure (out of memory, a NaN, a bad model) becomes `result.error`, so
the worker that calls it keeps serving.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import traceback

import numpy as np
import torch

from editor.core.errors import AtelierError, is_out_of_memory, short_reason
from editor.core.generator import Generator

from .compose import EditError, EditingContext, EditStatus
from .render_types import RenderRequest, RenderResult

log = logging.getLogger(__name__)

# what the window's menu calls the CPU choice: the advice after a failed render names it
DEVICE_MENU = "View ▸ Device"


def pick_device(preferred: str | None = None) -> torch.device:
    """The device named ("cpu", "cuda", "cuda:1"; None or "auto": CUDA if it can run this
    torch build's kernels, see auto_device), checked to exist here: AtelierError otherwise."""
    if not preferred or preferred == "auto":
        return auto_device()[0]
    try:
        device = torch.device(preferred)
    except (RuntimeError, ValueError):
        raise AtelierError(f"unknown device {preferred!r}; use auto, cpu, cuda or cuda:N") \
            from None
    if device.type not in ("cpu", "cuda"):
        raise AtelierError(f"device {preferred!r} is not supported; use auto, cpu, cuda or "
                           "cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise AtelierError(f"device {preferred!r} asked for, but no CUDA device is "
                               "available")
        if device.index is not None and device.index >= count:
            raise AtelierError(f"device {preferred!r} asked for, but there are only {count} "
                               "CUDA devices")
        device, reason = usable_cuda(device.index)
        if device is None:
            raise AtelierError(f"device {preferred!r} cannot be used: {reason}")
    return device


@functools.cache
def auto_device() -> tuple[torch.device, str | None]:
    """CUDA if present and usable, else the CPU, with why a GPU present was passed over.
    torch.cuda.is_available() is true for a GPU the wheel has no kernels for (an older
    card under a newer CUDA build), and then every render fails with "no kernel image is
    available". Checked once a process (the probe starts CUDA); the reason is logged."""
    if not torch.cuda.is_available():
        return torch.device("cpu"), None
    device, reason = usable_cuda(None)
    if device is not None:
        return device, None
    reason = f"rendering on the CPU: {reason}"
    log.warning(reason)
    return torch.device("cpu"), reason


@functools.cache
def usable_cuda(index: int | None) -> tuple[torch.device | None, str | None]:
    """(CUDA device `index`, None), the current one for None, where it runs this torch
    build's kernels; else (None, why not). Asked once a process per device: the probe
    starts CUDA, which is what fails with a broken driver (is_available() said yes)."""
    try:
        device = torch.device("cuda", torch.cuda.current_device() if index is None else index)
    except (RuntimeError, AssertionError) as e:
        return None, f"CUDA could not start: {short_reason(e)}"
    reason = _cuda_unusable(device)
    return (device, None) if reason is None else (None, reason)


def _cuda_unusable(device: torch.device) -> str | None:
    """Why this torch build cannot run kernels on `device`, or None."""
    try:
        name = torch.cuda.get_device_name(device)
        major, minor = torch.cuda.get_device_capability(device)
        arch_list = torch.cuda.get_arch_list()
        if arch_list and not _has_kernels_for(10 * major + minor, arch_list):
            return (f"{name} (sm_{major}{minor}) is not supported by this PyTorch build "
                    f"(it has kernels for {' '.join(arch_list)})")
        # what the arch list does not tell: a driver too old, a card in a bad state
        torch.zeros(1, device=device).add_(1).item()
    except (RuntimeError, AssertionError) as e:
        return f"a test kernel failed on {device}: {short_reason(e)}"
    return None


def _has_kernels_for(capability: int, arch_list: list[str]) -> bool:
    """Whether compiled code for sm_XY runs on a device of `capability` (10 * major +
    minor): a binary for the same major and an older or equal minor, or PTX ("compute_XY")
    for an older or equal capability, which the driver compiles."""
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)[a-z]?", arch)
        if match is None:
            continue
        code = int(match[2])
        if code <= capability and (match[1] == "compute" or code // 10 == capability // 10):
            return True
    return False


def resolve_device(choice: str) -> tuple[str, torch.device, str | None]:
    """A user's device choice ("auto", "cpu", "cuda", "cuda:N") as (the choice as the
    window's menu names it, the device, why auto passed a GPU over or None); AtelierError
    for a device that is not here."""
    if not choice or choice == "auto":
        return ("auto", *auto_device())
    device = pick_device(choice)  # "cuda": the current device, by number as the menu has it
    if device.type == "cpu":  # "cpu:3" is the one CPU
        device = torch.device("cpu")
    return str(device), device, None


def device_choices() -> list[tuple[str, str]]:
    """(choice, label) for each device a user may pick: auto, the CPU, each CUDA device."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [("auto", "Auto"), ("cpu", "CPU"), *(
        (f"cuda:{i}", f"CUDA {i}" + (f": {name}" if (name := _cuda_name(i)) else ""))
        for i in range(count))]


def _cuda_name(device: torch.device | int) -> str | None:
    try:
        return torch.cuda.get_device_name(device)
    except (RuntimeError, AssertionError):  # a driver that does not answer
        log.debug("no name for %s", device)
        return None


def rendering_platform(device: torch.device) -> dict[str, str]:
    """What drew a picture, for its recipe: the same recipe replays to the same pixels
    on the same kind of device and torch; elsewhere they may differ slightly (GPU
    kernels sum in other orders)."""
    name = device.type
    if device.type == "cuda":  # a driver that answers no more: still drawn
        name = _cuda_name(device) or name
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
