"""Models ▸ Import StyleCLIP directions: the official StyleCLIP's precomputed fs3.npy as the
open pack's directions, instead of a precompute of hours. Picks the file, runs the import
(a check of a few channels, seconds to a minute) as a job, and where the file does not
match the pack's models asks before keeping it anyway.

Kept out of the main window: it needs only the window, its job runner and its pack.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QWidget

from editor.engine.jobs import Job, JobRunner
from editor.engine.packs import OpenPack, RefusedImport, same_pack
from editor.methods.precompute import PackData
from editor.methods.styleclip_files import Agreement

TITLE = "Import StyleCLIP directions"
FILE_FILTER = "StyleCLIP directions (fs3.npy *.npy);;All files (*)"


class StyleClipImportFlow(QObject):
    """`job_key(pack)` is the key the pack's precompute runs under: an import and a
    precompute of the same pack never run together, and the window re-reads the pack's
    data when either ends."""

    def __init__(self, window: QMainWindow, jobs: JobRunner,
                 pack: Callable[[], OpenPack | None], job_key: Callable[[OpenPack], str],
                 last_dir: Callable[[], str],
                 remember_dir: Callable[[str], None] = lambda path: None):
        super().__init__(window)
        self.window = window
        self.jobs = jobs
        self._pack = pack
        self._job_key = job_key
        self._last_dir = last_dir
        self._remember_dir = remember_dir
        self._packs: dict[int, OpenPack] = {}  # job id -> the pack it imports into
        # a failure is the window's to show (its box for the precompute key's jobs): a box
        # of this flow's as well said it twice
        jobs.job_finished.connect(self._on_finished)
        jobs.job_ended.connect(lambda job: self._packs.pop(job.id, None))

    def start(self, path: str | None = None, force: bool = False) -> Job | None:
        """Ask for the file (unless given) and start importing it into the open pack;
        None if not started."""
        pack = self._pack()
        if pack is None or pack.clip is None:
            QMessageBox.information(
                self.window, TITLE, "Open the generator the file was made for, with the "
                "CLIP model it was made with (StyleCLIP's files: ViT-B/32), first.")
            return None
        if pack.data is not None and not pack.data.imported_from:
            # a quick try's pack (`atelier precompute --layers convs.15`) is not "over every
            # layer": said as the status bar says it
            how = (f"with {other}" if (other := pack.other_settings()) else
                   "over every layer")
            QMessageBox.information(
                self.window, TITLE, f"{pack.name}'s directions were computed here, {how}; "
                "they are used instead of an imported file.")
            return None
        key = self._job_key(pack)
        if self.jobs.find(key) is not None:
            self.window.statusBar().showMessage(
                f"{pack.name}'s directions are being computed or imported (see the Jobs "
                "panel)", 6000)
            return None
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self.window, TITLE, self._last_dir(),
                                                  FILE_FILTER)
            if not path:
                return None
            self._remember_dir(path)  # the next dialog starts there, as the others do
        job = self.jobs.submit(
            f"Import {Path(path).name} for {pack.name}",
            lambda token: pack.import_styleclip(path, force=force, cancel=token), key=key)
        self._packs[job.id] = pack
        return job

    def _on_finished(self, job: Job, result: object) -> None:
        pack = self._packs.get(job.id)
        if pack is None:
            return
        status = self.window.statusBar()
        if isinstance(result, RefusedImport):
            name = Path(result.fs3_path).name
            job.note = f"not imported: it does not fit {pack.name}"  # not "finished"
            if not same_pack(self._pack(), pack):  # the answer would go to another pack
                status.showMessage(f"{name} was not imported: it does not fit {pack.name}",
                                   15000)
                return
            # over the window's "…: done" (its slot runs first): nothing was imported yet
            status.showMessage(f"{name} does not fit {pack.name}", 15000)
            # asked once the job has ended: a question in this slot held the job
            # "running" in the Jobs panel, with a Cancel that did nothing, until answered
            QTimer.singleShot(0, self, lambda: self._ask_import_anyway(pack, result))
        elif isinstance(result, PackData):
            # short: the status bar's right side holds the model and the timings
            agreement = result.info.get("agreement")
            check = (f", check {Agreement.from_dict(agreement).median:.2f}" if agreement
                     else "")
            forced = " although it does not fit" if result.info.get("forced") else ""
            # not cached (the window's box says why): gone when the window closes
            kept = ", until the window closes" if result.save_error else ""
            status.showMessage(
                f"Imported {result.imported_from} into {pack.name}{forced}{kept}: "
                f"{len(result.relevance.channels)} channels{check}", 15000)

    def _ask_import_anyway(self, pack: OpenPack, refused: RefusedImport) -> None:
        name = Path(refused.fs3_path).name
        box = import_anyway_box(self.window, pack.name, refused)
        box.exec()
        yes = box.clickedButton() is box.button(QMessageBox.StandardButton.Yes)
        box.deleteLater()
        if not yes:
            self.window.statusBar().showMessage(f"{name} was not imported into {pack.name}",
                                                8000)
        elif not same_pack(self._pack(), pack):  # another opened while the box was up
            self.window.statusBar().showMessage(
                f"{name} was not imported: {pack.name} is no longer open", 8000)
        else:
            self.start(refused.fs3_path, force=True)


def import_anyway_box(parent: QWidget, pack_name: str, refused: RefusedImport) -> QMessageBox:
    """The question for a file that does not fit: a plain sentence first; the check's
    numbers (the method's message, as the CLI prints it) one click away in the details.
    No is the default: Enter must not keep a file that would make edits wrong."""
    if refused.kind == "statistics":
        what = Path(refused.stats_path or refused.fs3_path).name
        lead = (f"{what} does not fit this generator: it was made for another generator "
                "or another truncation.")
        harm = "Its statistics would make every edit the wrong size."
    else:
        lead = (f"{Path(refused.fs3_path).name} does not fit these models: it was made for "
                "another generator or CLIP.")
        harm = "Its edits would move channels this generator does not use for what the " \
            "prompt says."
    box = QMessageBox(QMessageBox.Icon.Question, TITLE, lead,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setInformativeText(f"Import it into {pack_name} anyway? {harm}")
    box.setDetailedText(f"{refused.message}.")  # (it starts with a file's name)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    return box
