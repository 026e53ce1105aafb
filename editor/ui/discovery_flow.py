"""Discovered directions in the window: fill the panel for the open pack (shipped or cached
discovery), run discovery as a job when asked, switch the transfer, add a direction to the
edit stack (undoably, at the slider's strength).

Kept out of the main window: it needs only the panel, the job runner, the open pack and a
way to add an edit.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMainWindow

from editor.core.paths import cache_dir
from editor.engine.discovered import (
    DirectionEntry,
    available_method,
    cached_discovery,
    discovery_job,
    entry_edit,
    to_entries,
)
from editor.engine.jobs import Job, JobRunner
from editor.engine.packs import OpenPack, same_pack
from editor.engine.session import Edit
from editor.methods.global_directions import Progress

from .directions_panel import DirectionsPanel

JOB_PREFIX = "discover:"


class DiscoveryFlow(QObject):
    def __init__(self, window: QMainWindow, jobs: JobRunner, panel: DirectionsPanel,
                 pack: Callable[[], OpenPack | None], add_edit: Callable[[Edit, str], None]):
        super().__init__(window)
        self.window = window
        self.jobs = jobs
        self.panel = panel
        self._pack = pack
        self._add_edit = add_edit
        self.discovery = None  # the open pack's, once known
        self._job: Job | None = None
        self._job_pack: OpenPack | None = None
        panel.discover_requested.connect(self.start)
        panel.method_changed.connect(lambda _m: self._show())
        panel.add_requested.connect(self.add)
        jobs.job_progress.connect(self._on_progress)
        jobs.job_finished.connect(self._on_finished)
        jobs.job_ended.connect(self._on_ended)

    def pack_changed(self, pack: OpenPack) -> None:
        """A pack was opened: show its discovery if it has one."""
        if pack.clip is None:
            self.discovery = None
            self._show_unavailable(pack)
            return
        self.discovery = cached_discovery(pack)
        self._show()
        if self._job is not None and self._job.is_active:
            # the same models opened again (or refreshed after a precompute) are its own
            self.panel.set_running(None, "discovering…" if same_pack(self._job_pack, pack)
                                   else "still discovering for the previous pack")

    def _show_unavailable(self, pack: OpenPack) -> None:
        self.panel.set_unavailable(f"it needs a CLIP model ({pack.clip_error})")

    def _show(self) -> None:
        if self.discovery is None:
            self.panel.set_directions([])
            return
        entries = to_entries(self.discovery, self.panel.current_method())
        fallback = available_method(self.discovery)
        if not entries and fallback is not None:
            # e.g. a pack without global directions has no style transfer: show the w one
            self.panel.set_method(fallback)  # emits method_changed, which shows it
            return
        self.panel.set_directions(entries)

    def start(self) -> Job | None:
        pack = self._pack()
        if pack is None or pack.clip is None:
            return None
        if self._job is not None and self._job.is_active:
            return self._job
        # "Discover again" recomputes (into the user cache) instead of reloading the result
        root = cache_dir() / "packs" if self.discovery is not None else None
        self._job = self.jobs.submit(
            f"Discover directions for {pack.name}",
            lambda token: discovery_job(pack, cancel=token, root=root),
            key=JOB_PREFIX + pack.model.content_hash)
        self._job_pack = pack
        self.panel.set_running(None, "sampling images…")
        return self._job

    def add(self, entry: DirectionEntry, strength: float) -> None:
        pack = self._pack()
        # the edit remembers its generator: on another one its channels mean other things
        self._add_edit(entry_edit(entry, strength, pack.model.content_hash if pack else None),
                       f"Add {entry.title}")

    def _on_progress(self, job: Job, progress) -> None:
        if job is self._job and isinstance(progress, Progress):
            self.panel.set_running(progress.fraction, progress.message)

    def _on_finished(self, job: Job, result) -> None:
        if job is not self._job:
            return
        if same_pack(self._job_pack, self._pack()):
            self.discovery = result
            self._show()
        self.window.statusBar().showMessage(
            f"Discovered {len(result.directions)} directions", 6000)

    def _on_ended(self, job: Job) -> None:
        if job is self._job:
            self._job = None
            pack = self._pack()
            if pack is not None and pack.clip is None:
                self._show_unavailable(pack)  # Discover would do nothing: keep the reason
            elif self.discovery is None:
                self.panel.set_idle()
            else:
                self._show()
