"""Bring your own picture, in the window: load it, crop it, invert it as a job (watching
the reconstruction form on the canvas), then make it the source, undoably.

Kept out of the main window: it needs only the window's pack, job runner, canvas, status
bar, document (which one is open) and a way to change the source.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QObject, Qt, SignalInstance
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox

from editor.core.errors import AtelierError
from editor.core.image_io import LoadedImage, load_image
from editor.engine.inverting import InversionPreview, InvertedImage, invert_image
from editor.engine.jobs import CANCELLED, Job, JobRunner, OneAtATime
from editor.engine.packs import OpenPack, same_generator
from editor.engine.session import Source

from .canvas import Canvas
from .crop_dialog import choose_crop, crop_key
from .document import Document
from .notices import cannot_open_image_text, failed_job_text, notice, show_warning
from .qimages import qimage_from_array

JOB_PREFIX = "invert:"


def _model_gone(label: str, pack: OpenPack) -> str:
    return (f"{label} was inverted into {pack.name}, which is no longer open; open it again "
            "and invert the picture there.")


class InversionFlow(QObject):
    """`refresh()` asks the window to show the document again: the reconstruction forming
    on the canvas is a preview, and the document's own picture returns when the user
    changes something or the job ends without a result to use.

    An inversion lands in the `document` it was started for: when that one was replaced
    meanwhile (another session opened, a new model's history), the finished inversion is
    offered to the document open then instead of taking its source unasked."""

    def __init__(self, window: QMainWindow, jobs: JobRunner, canvas: Canvas,
                 pack: Callable[[], OpenPack | None], use_source: Callable[[Source, str], None],
                 document_changed: SignalInstance, refresh: Callable[[], None],
                 document: Document):
        super().__init__(window)
        self._document = document
        self.window = window
        self.jobs = jobs
        self.canvas = canvas
        self._pack = pack
        self._use_source = use_source
        self._refresh = refresh
        self._packs: dict[int, OpenPack] = {}  # job id -> the pack it inverts into
        self._documents: dict[int, int] = {}  # job id -> the document it is for
        self._previewing: set[int] = set()     # jobs whose previews may take the canvas
        self._started: set[int] = set()        # jobs that have sent a preview
        # job id -> (the picture's name, the status line its start showed)
        self._said: dict[int, tuple[str, str]] = {}
        # several pictures dropped at once are inverted one after another, in their order
        self._turns = OneAtATime()
        self._together: list[str] = []         # the pictures opened together (numbered)
        self._painted = False                  # a preview hides the document's picture
        jobs.job_progress.connect(self._on_progress)
        jobs.job_finished.connect(self._on_finished)
        jobs.job_failed.connect(self._on_failed)
        jobs.job_ended.connect(self._on_ended)
        document_changed.connect(self._stop_previews)

    def start(self, path: str, name: str | None = None) -> Job | None:
        """Load, crop (the user's square) and start inverting; None if it did not start.
        `name` is what the picture is called (its file's name by default)."""
        pack = self._pack()
        name = name or Path(path).name
        if pack is None:
            QMessageBox.information(self.window, "Open image", "Open a generator first.")
            return None
        running = self.jobs.find(JOB_PREFIX + str(path))
        if running is not None:
            self.window.statusBar().showMessage(f"{name} is already being inverted", 4000)
            return None
        try:
            loaded = self._read(path, name)
        except AtelierError as e:
            QMessageBox.warning(self.window, "Cannot open the image",
                                cannot_open_image_text(e, name))
            return None
        resolution = pack.model.generator.img_resolution
        box = choose_crop(self.window, loaded.rgb, crop_key(path), resolution, loaded.notes,
                          name, self._place(path))
        if box is None:
            return None
        pack = self._pack()  # another model may have opened while the dialog was up
        if pack is None:
            return None
        waits = bool(self._packs)  # an inversion of this window's has not ended
        job = self.jobs.submit(
            f"Invert {name}",
            lambda token: invert_image(pack, loaded.rgb, box, name, cancel=token),
            key=JOB_PREFIX + str(path), turns=self._turns,
            waiting="waiting for the inversion before it")
        self._packs[job.id] = pack
        self._documents[job.id] = self._document.generation
        self._previewing.add(job.id)  # one runs at a time: its previews show
        said = (f"{name} is inverted after the pictures before it (Jobs panel to cancel)"
                if waits else
                f"Inverting {name}: finding the latent that draws it (Jobs panel to cancel)")
        self._said[job.id] = name, said
        self.window.statusBar().showMessage(said, 6000)
        return job

    @contextmanager
    def numbered(self, paths: Sequence[str]) -> Iterator[None]:
        """Pictures opened together (several dropped at once): meanwhile each crop dialog
        says which of them it is for, "(2 of 3)". `paths`: the pictures among the files."""
        self._together = [os.path.abspath(p) for p in paths]
        try:
            yield
        finally:
            self._together = []

    def _place(self, path: str) -> tuple[int, int] | None:
        """(i, n): the picture is the i-th of n opened together; None if opened alone."""
        path = os.path.abspath(path)
        if len(self._together) < 2 or path not in self._together:
            return None
        return self._together.index(path) + 1, len(self._together)

    def _read(self, path: str, name: str) -> LoadedImage:
        """The picture, read with a busy cursor and a word in the status bar: a big photo
        takes seconds (a 14000 px PNG about 8), which looked like a hang."""
        bar = self.window.statusBar()
        bar.showMessage(f"Reading {name}…")
        bar.repaint()
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            return load_image(path)
        finally:
            QApplication.restoreOverrideCursor()
            bar.clearMessage()

    def _on_progress(self, job: Job, progress) -> None:
        if not isinstance(progress, InversionPreview):
            return
        self._started.add(job.id)
        if job.id in self._previewing and progress.previews \
                and same_generator(self._packs.get(job.id), self._pack()):
            # the document's picture is not what the canvas shows now: it says so
            self.canvas.set_image(qimage_from_array(progress.previews[0]),
                                  caption=f"{job.title}: preview, {progress.fraction:.0%}")
            self._painted = True

    @property
    def previewing(self) -> bool:
        """Whether the canvas shows an inversion forming, not the document's picture."""
        return self._painted

    def _stop_previews(self, *_args) -> None:
        """The user changed the document: show their picture, not the running job's (one
        still waiting for its turn shows its own once it starts)."""
        self._previewing -= self._started
        self._painted = False  # the change renders the document anyway

    def _on_failed(self, job: Job, message: str) -> None:
        # minutes of work ended: a line in the jobs panel is easily missed, as an export's
        # failure would be
        if job.id in self._packs:
            # not waited on: a box held the runner's job_ended (the job showed as running)
            show_warning(self.window, "Inversion failed",
                         f"{job.title}: {failed_job_text(message)}")

    def _on_ended(self, job: Job) -> None:
        name, said = self._said.pop(job.id, ("", None))
        bar = self.window.statusBar()
        if job.state == CANCELLED and bar.currentMessage() == said:
            # "Inverting …" stayed for the rest of its 6 s after the job had stopped
            bar.showMessage(f"Inversion of {name} cancelled", 4000)
        self._packs.pop(job.id, None)
        self._documents.pop(job.id, None)
        self._started.discard(job.id)
        if job.id in self._previewing:
            self._previewing.discard(job.id)
            if self._painted:  # cancelled, failed or discarded: the preview must go
                self._painted = False
                self._refresh()

    def _on_finished(self, job: Job, result) -> None:
        pack = self._packs.get(job.id)
        if pack is None or not isinstance(result, InvertedImage):
            return
        label = result.source.label
        if not same_generator(pack, self._pack()):
            # not waited on: a box held the runner's job_ended (the job showed as running)
            notice(self.window, "Inversion finished", _model_gone(label, pack)).open()
            return
        if self._documents.get(job.id) != self._document.generation:
            self._offer(pack, result)
            return
        self._apply(result)

    def _apply(self, result: InvertedImage) -> None:
        self._use_source(result.source, f"Invert {result.source.label}")
        q = result.quality
        clip = "" if q.clip_similarity is None else f", CLIP similarity {q.clip_similarity:.3f}"
        self.window.statusBar().showMessage(
            f"{result.source.label}: reconstructed at PSNR {q.psnr_db:.1f} dB, SSIM "
            f"{q.ssim:.3f}{clip} ({result.seconds:.0f} s)", 20000)

    def _offer(self, pack: OpenPack, result: InvertedImage) -> QMessageBox:
        """The document the inversion was started for is gone (another one opened, or a
        new history began): minutes of work are neither put into the document open now
        unasked nor dropped unsaid."""
        label = result.source.label
        box = notice(
            self.window, "Inversion finished",
            f"{label} finished inverting after the document it was started for was "
            "replaced, so the document open now was left as it is.\n\nUse the inverted "
            f"{label} as this document's source? (Undo takes it back; Discard drops the "
            "inversion.)", QMessageBox.Icon.Question, QMessageBox.StandardButton.NoButton)
        use = box.addButton("Use as Source", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Discard)
        box.setDefaultButton(use)
        use.clicked.connect(lambda: self._use_offered(pack, result))
        self.window.statusBar().showMessage(
            f"Inversion of {label} finished for another document: not applied", 20000)
        box.open()
        return box

    def _use_offered(self, pack: OpenPack, result: InvertedImage) -> None:
        if same_generator(pack, self._pack()):
            self._apply(result)
        else:  # another model opened while the question was up
            notice(self.window, "Inversion not used",
                   _model_gone(result.source.label, pack)).open()
