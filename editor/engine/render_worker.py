"""A render worker thread with a one-slot mailbox: the latest request wins.

The UI posts requests as fast as the hand moves; the worker keeps only the newest pending
one, so the image never lags behind a drag and always ends on the final value. Results
come back through a queued Qt signal; the UI ignores any older than what it shows.
"""

from __future__ import annotations

import dataclasses
import threading

import torch
from PySide6.QtCore import QObject, QThread, Signal

from editor.core.errors import AtelierError, is_out_of_memory

from .compute_threads import parallel_worker_thread
from .interaction import InteractionGate
from .packs import ClipSource, OpenPack, default_clip_source, open_pack
from .render_types import RenderRequest, RenderResult
from .renderer import DEVICE_MENU, Renderer


class _Mailbox:
    """One slot guarded by a condition variable; put() replaces what is there."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item: RenderRequest | None = None
        self._closed = False

    def put(self, item: RenderRequest) -> None:
        with self._cond:
            self._item = item
            self._cond.notify()

    def take(self, timeout: float | None = None) -> RenderRequest | None:
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def wait_for_item(self, timeout: float) -> bool:
        """Wait up to `timeout` for an item without taking it."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            return self._item is not None

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class _LoopThread(QThread):
    """A QThread running one Python callable; no event loop is needed in it."""

    def __init__(self, target):
        super().__init__()
        self._target = target

    def run(self) -> None:
        self._target()


class RenderWorker(QObject):
    """Owns a Renderer on a background QThread.

    While a request is interactive and the model is large, a preview resolution is rendered
    first; the full resolution follows once no newer request arrived for `settle_s`."""

    rendered = Signal(object)  # RenderResult
    model_loaded = Signal(object)  # OpenPack (the UI treats it as opaque plain data)
    # the OpenPack of the model loaded last, now with its CLIP (or clip_error) and its
    # directions: model_loaded came with the generator alone (clip_pending), to draw sooner
    clip_loaded = Signal(object)
    model_failed = Signal(str)  # a message for the user

    def __init__(self, renderer: Renderer, settle_s: float = 0.12, parent=None,
                 interaction: InteractionGate | None = None):
        """`interaction`, shared with the JobRunner, hears of every request and render,
        so that jobs step aside while the user waits for a picture."""
        super().__init__(parent)
        self.renderer = renderer
        self.settle_s = settle_s
        self.interaction = interaction
        self._mailbox = _Mailbox()
        self._thread = _LoopThread(self._loop)
        self._load_lock = threading.Lock()
        self._pending_load: tuple[str, ClipSource | None, torch.device | None, dict] | None \
            = None
        self._refresh = False
        self.pack: OpenPack | None = None  # written on the worker thread only
        self._last_full: RenderResult | None = None  # worker thread only
        # worker thread only: the device the pack's CLIP is still to be loaded on, and
        # whether a picture of the pack was drawn since it opened
        self._clip_due: torch.device | None = None
        self._drawn = False

    def start(self) -> None:
        self._thread.start()

    def submit(self, request: RenderRequest) -> None:
        if self.interaction is not None:
            self.interaction.mark()
        self._mailbox.put(request)

    def load_model(self, path: str, clip: ClipSource | None = None,
                   device: torch.device | None = None, **pack_options) -> None:
        """Load a generator and its CLIP (by default the demo CLIP for the demo generator,
        otherwise ViT-B/32 if it is installed) on the worker thread; the UI hears
        model_loaded or model_failed. A CLIP that cannot be loaded leaves a pack that
        samples and renders but cannot do text edits (pack.clip_error says why).
        `device` (default: the renderer's) becomes the renderer's once the pack loaded
        there: a failure leaves the old model rendering where it was.
        `pack_options` go to open_pack (relevance_config, stats_samples)."""
        clip = clip if clip is not None else default_clip_source(path)
        with self._load_lock:
            self._pending_load = (path, clip, device, pack_options)
        self._mailbox.wake()

    def refresh_pack(self) -> None:
        """Re-read the pack's precomputed data (after a precompute job finished)."""
        with self._load_lock:
            self._refresh = True
        self._mailbox.wake()

    def stop(self, timeout_ms: int | None = None) -> None:
        """Stop once the render or load in flight is done (default: however long it
        takes). A window that gave up after 5 s, on a CPU's multi-second 1024 px render,
        let its thread be destroyed running, and Qt aborted the process as it quit."""
        self._mailbox.close()
        if timeout_ms is None:
            self._thread.wait()
        else:
            self._thread.wait(timeout_ms)

    def _loop(self) -> None:
        parallel_worker_thread()
        while not self._mailbox.closed:
            self._load_pending_model()
            # the CLIP comes after the first picture, not between model_loaded and the
            # request that follows it
            if self._clip_due is not None and self._drawn:
                self._load_pending_clip()
            request = self._mailbox.take(timeout=0.5)
            if self._mailbox.closed:  # stopping: nobody will see it
                continue
            if request is None:  # idle (no picture asked for): the CLIP waits no longer
                if self._clip_due is not None and not self._superseded():
                    self._load_pending_clip()
                continue
            if self._clip_due is not None and request.session.needs_clip:
                self._load_pending_clip()  # held until there, not failed for want of it
                if self._superseded():  # the next model's model_loaded asks again
                    continue
            if (again := self._already_drawn(request)) is not None:
                self.rendered.emit(again)
                continue
            if self.renderer.needs_preview(request):
                self.rendered.emit(self._render(request, preview=True))
                # settle: render full resolution only if the hand has stopped
                if self._mailbox.wait_for_item(self.settle_s) or self._mailbox.closed:
                    continue
            result = self._render(request, preview=False)
            self._last_full = result if result.error is None else None
            self._drawn = True
            self.rendered.emit(result)

    def _already_drawn(self, request: RenderRequest) -> RenderResult | None:
        """The last full frame again, under this request's number, where the request asks
        for that very picture: the hand letting go of a slider whose last value was drawn
        in full already (on a big model, seconds of work that held up the next change)."""
        last = self._last_full
        if (last is None or request.interactive or last.generation != request.generation
                or last.session != request.session or (request.compare and last.before is None)):
            return None
        return dataclasses.replace(last, seq=request.seq,
                                   before=last.before if request.compare else None)

    def _render(self, request: RenderRequest, preview: bool) -> RenderResult:
        gate = self.interaction
        if gate is not None:
            gate.begin()
        try:
            return self.renderer.render(request, preview=preview)
        finally:
            if gate is not None:
                gate.end()

    def _load_pending_model(self) -> None:
        with self._load_lock:
            pending, self._pending_load = self._pending_load, None
            refresh, self._refresh = self._refresh, False
        if pending is not None or refresh:  # another model or its data: pictures differ
            self._last_full = None
        if pending is not None:
            device = pending[2] if pending[2] is not None else self.renderer.device
            self._reporting_failure(f"opening {pending[0]}", lambda: self._open(*pending),
                                    device)
        elif refresh and self.pack is not None and not self.pack.clip_pending:
            # (a pending CLIP's load reads the data anyway)
            self._reporting_failure("reloading the pack's data", self._refresh_pack,
                                    self.renderer.device)

    def _reporting_failure(self, doing: str, action, device: torch.device) -> None:
        """Run `action` (on `device`); a failure becomes model_failed, never the end of
        this thread."""
        try:
            action()
            return
        except AtelierError as e:
            message = str(e)
        except Exception as e:  # noqa: BLE001 - a bug must not kill the worker thread
            message = _out_of_memory_message(doing, device) if is_out_of_memory(e) else \
                f"unexpected error while {doing}: {type(e).__name__}: {e}"
        if device.type == "cuda":  # what the failed work held goes back to the GPU (out
            torch.cuda.empty_cache()  # of the except block: its traceback held it)
        if not self._superseded():
            self.model_failed.emit(message)

    def _superseded(self) -> bool:
        """Whether another model was asked for while this one loaded: the window waits for
        that one, and took this one's end for it (it let the other be removed meanwhile)."""
        with self._load_lock:
            return self._pending_load is not None

    def _open(self, path: str, clip: ClipSource | None, device: torch.device | None,
              options: dict) -> None:
        device = device if device is not None else self.renderer.device
        pack = open_pack(path, clip, device, require_clip=False, defer_clip=True, **options)
        if self._superseded():  # the next turn of the loop loads that one
            return
        self.renderer.set_context(pack.context(), device)
        self.pack = pack
        self._clip_due, self._drawn = device, False
        self.model_loaded.emit(pack)

    def _load_pending_clip(self) -> None:
        """The second half of _open: the pack's CLIP and directions. One that cannot be
        read gives a pack with clip_error, as open_pack does; any other failure is
        model_failed's."""
        device, self._clip_due = self._clip_due, None
        self._reporting_failure(f"loading the CLIP of {self.pack.model.path}",
                                lambda: self._take_clip(device), device)

    def _take_clip(self, device: torch.device) -> None:
        full = self.pack.with_clip(device, require_clip=False)
        if self._superseded():  # should the next model fail to open, this one's comes
            self._clip_due = device  # again
            return
        self.renderer.set_context(full.context(), device)
        self.pack = full
        self._last_full = None  # drawn without the CLIP's identity in its recipe
        self.clip_loaded.emit(full)

    def _refresh_pack(self) -> None:
        self.pack.reread()
        self.renderer.set_context(self.pack.context())
        self.model_loaded.emit(self.pack)


def _out_of_memory_message(doing: str, device: torch.device) -> str:
    if device.type == "cuda":
        return (f"there is not enough GPU memory on {device} for {doing}: a running job may "
                f"be using it (wait for it or cancel it), or choose the CPU ({DEVICE_MENU})")
    return (f"there is not enough memory for {doing}: a running job may be using it (wait "
            "for it or cancel it), or close other programs")
