"""The "Model packs" dialog: the demo pack, the model zoo and imported files.

Downloads and imports run as jobs on the JobRunner (so they show in the jobs panel and can
be cancelled); nothing touches the network unless the user presses Download. Choosing a
pack emits plain data, `pack_chosen(generator_path, clip_spec)`, for the main window to
open: `clip_spec` holds ClipSource's fields (`ClipSource(**clip_spec)`), or is None for
the engine's default CLIP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from editor.core import zoo
from editor.core.clip_model import describes_itself
from editor.core.errors import AtelierError, ZooDownloadError
from editor.core.model_files import identify_model_file
from editor.core.paths import unwritable_reason
from editor.engine.jobs import FAILED, Job, JobRunner, JobToken, Progress, RateEta
from editor.engine.models import default_generator_path
from editor.engine.packs import ClipSource, default_clip_source, demo_clip_source

from . import settings_values
from .notices import show_warning
from .remembered import remembered_clip

DOWNLOAD_JOB = "download:"  # key prefix of download jobs
OWN_CLIP = "its own CLIP (bundled)"
DEMO_KEY = "demo"
REFERENCE_CLIP_ENTRY = "clip-vit-b-32-openai"  # StyleCLIP's CLIP, listed first
# Without an installed CLIP file: open_clip's own cache (the engine's default for real models)
OPEN_CLIP_FALLBACK = ("ViT-B-32 / openai (open_clip's cache)", {"arch": "ViT-B-32",
                                                                  "tag": "openai"})
OFFLINE = "seem to be offline"  # in zoo's message for a server it could not reach
DOWNLOAD_FAILED = "download failed"
# .bin: open_clip's CLIP weights as Hugging Face names them (open_clip_pytorch_model.bin)
MODEL_FILTER = "Model files (*.pt *.pth *.pkl *.safetensors *.bin);;All files (*)"


# ------------------------------------------------------------------ what can be chosen


def demo_choice() -> tuple[str, dict] | None:
    """The bundled demo pack's generator and CLIP, if the program ships them."""
    path = default_generator_path()
    if path is None:
        return None
    return str(path), dataclasses.asdict(demo_clip_source())


def installed_generators(models: list[zoo.InstalledModel] | None = None
                         ) -> list[zoo.InstalledModel]:
    """Installed files that can serve as generators (files of unknown kind included)."""
    models = zoo.installed() if models is None else models
    return [m for m in models if m.kind != "clip" and m.path.is_file()]


def clip_choices(models: list[zoo.InstalledModel] | None = None,
                 entries: list[zoo.ZooEntry] | None = None) -> list[tuple[str, dict]]:
    """(label, clip_spec) for every installed CLIP file, the reference one first; then
    open_clip's own cache as the last resort."""
    models = zoo.installed() if models is None else models
    entries = zoo.registry_entries()[0] if entries is None else entries
    by_name = {e.name: e for e in entries}
    found = []
    for m in models:
        if m.kind != "clip" or not m.path.is_file():
            continue
        entry = by_name.get(m.entry or m.name)
        arch = entry.arch if entry is not None else m.arch
        # a CLIP the registry does not know: the architecture its weights fit was recorded
        # on import; a file saved by this program carries its own
        if arch is None and (entry is not None or not describes_itself(m.path)):
            continue
        found.append((m.entry != REFERENCE_CLIP_ENTRY,
                      f"{m.name} ({arch})" if arch else m.name,
                      {"path": str(m.path), "arch": arch, "tag": None}))
    found.sort(key=lambda t: t[0])
    return [(label, spec) for _, label, spec in found] + [OPEN_CLIP_FALLBACK]


def opening_clip(generator_path: str) -> dict:
    """The clip spec the window opens this generator with when none is named (as the
    Models menu does): the CLIP it was last used with, else the engine's default."""
    clip = remembered_clip(generator_path) or default_clip_source(generator_path)
    return dataclasses.asdict(clip)


def same_path(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):  # RuntimeError: a loop of links
        return False


def same_clip(a: dict, b: dict) -> bool:
    """Whether two clip specs load the same CLIP: the same file, or the same open_clip
    weights (a file's recorded architecture may differ from the one a caller named)."""
    a_clip, b_clip = ClipSource(**a), ClipSource(**b)
    if a_clip.path or b_clip.path:
        return bool(a_clip.path and b_clip.path) and same_path(a_clip.path, b_clip.path)
    return (a_clip.arch, a_clip.tag) == (b_clip.arch, b_clip.tag)


def _clip_label(spec: dict) -> str:
    """A box entry for a CLIP that is not among the choices (a file outside the cache)."""
    clip = ClipSource(**spec)
    if clip.path:
        return f"{Path(clip.path).name} (outside the model cache)"
    return f"{clip.arch} / {clip.tag} (open_clip's cache)"


def _model_for(entry: zoo.ZooEntry, models: list[zoo.InstalledModel]
               ) -> zoo.InstalledModel | None:
    return next((m for m in models if m.name == entry.name and m.path.is_file()), None) or \
        next((m for m in models if m.entry == entry.name and m.path.is_file()), None)


def _entry_status(entry: zoo.ZooEntry, model: zoo.InstalledModel | None) -> str:
    if model is not None:
        return "installed" if model.verified else "installed (not verified)"
    part = zoo.part_path(entry)
    if part.is_file():
        have = part.stat().st_size
        return (f"partial ({100 * have // entry.size}%)" if entry.size
                else f"partial ({zoo.format_size(have)})")
    return "not installed"


def size_text(n: int | None) -> str:
    """The Size column: a dash where the registry does not know it (zoo.format_size's "?",
    kept for the CLI, stood alone in every generator's row)."""
    return "—" if n is None else zoo.format_size(n)


@dataclass(frozen=True)
class DownloadFailure:
    """A failed download in the window's words: the zoo's message (written for the CLI as
    well: the file named twice, terminal commands) as the details, after a short line."""

    line: str         # the job's error: the Jobs panel and the status bar
    text: str         # the box's first line
    informative: str  # what to do, in the window's terms ("" where the message says it)
    details: str      # the zoo's whole message ("" where it is the text already)


def download_failure(entry: zoo.ZooEntry, message: str) -> DownloadFailure:
    if OFFLINE in message:  # zoo's "could not reach HOST …: we seem to be offline"
        return DownloadFailure(
            "this computer seems to be offline",
            f"Could not download {entry.name}: this computer seems to be offline.",
            f"Connect and try again, or get {entry.filename} on another computer and add "
            "it with Import file… in this dialog.", _sentence_case(message))
    first = _first_sentence(message)
    # the box's line opens a sentence; the job's line goes after "Download failed: "
    return DownloadFailure(first, _sentence_case(first), "",
                           message if first != message else "")


def _first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (outside brackets: "(HTTP 404 …)")."""
    depth = 0
    for i, c in enumerate(text):
        depth += (c == "(") - (c == ")")
        if c == "." and depth == 0 and text[i + 1:i + 2] == " ":
            return text[:i + 1]
    return text


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def download_job(entry: zoo.ZooEntry):
    """A job function: the zoo download, with byte counts turned into Progress items. A
    failure says its short line (DownloadFailure.line), raised from the zoo's whole message
    (the job's details, for the dialog's box)."""

    def run(token: JobToken) -> zoo.InstalledModel:
        on_bytes = _byte_progress(token)
        # a cancel raises DownloadCancelled after the token is set: the runner counts that
        # as cancelled, and the .part file stays for resuming
        # read before it is installed: a file that is not a model is refused, as on import
        try:
            model = zoo.download(entry, progress=on_bytes, cancel=token,
                                 identify=identify_model_file)
        except zoo.DownloadCancelled:
            raise  # not a failure: what it kept ("… kept in …part") is the job's note
        except ZooDownloadError as e:
            raise ZooDownloadError(download_failure(entry, str(e)).line) from e
        token.commit()  # installed: a cancel from now on is too late, the job is done
        return model

    return run


def _cannot_install() -> str | None:
    """Why nothing can be downloaded or imported (the model cache cannot be written: a
    read-only mount), in a sentence; None when it can."""
    folder = zoo.models_dir()
    why = unwritable_reason(folder)
    return None if why is None else f"Nothing can be installed: {folder} ({why.lower()})."


def _bytes_reported(token: JobToken, words: Callable[[int, int | None], str]):
    """A zoo progress callback (bytes done, total) reporting to the job's row, with a time
    left, in `words(done, total)`."""
    eta = RateEta()

    def on_bytes(done: int, total: int | None) -> None:
        token.report(eta.progress(done, total, words(done, total)))

    return on_bytes


def _byte_progress(token: JobToken):
    """A download's progress callback: bytes so far, of the size when known."""
    return _bytes_reported(token, lambda done, total: (
        f"{zoo.format_size(done)} of {zoo.format_size(total)}" if total
        else zoo.format_size(done)))


def _import_words(done: int, total: int | None) -> str:
    """An import's bytes count the file twice (the hash, then the copy): the row says
    which pass, over the file's own size."""
    size = (total or 0) // 2
    step, read = ("checking", done) if done <= size else ("copying", done - size)
    return f"{step} {zoo.format_size(read)} of {zoo.format_size(size)}"


def _import_progress(token: JobToken):
    return _bytes_reported(token, _import_words)


def import_job(path: Path):
    def run(token: JobToken) -> zoo.InstalledModel:
        # read first: a file the editor cannot open is never copied or listed; the hash
        # and the copy report progress and honour a cancel
        model = zoo.import_file(path, identify=identify_model_file, cancel=token,
                                progress=_import_progress(token))
        token.commit()  # recorded: installed, so the job is done, not cancelled
        return model

    return run


# --------------------------------------------------------------------------- the dialog


_DOWNWARD = (QAbstractItemView.CursorAction.MoveDown, QAbstractItemView.CursorAction.MoveNext,
             QAbstractItemView.CursorAction.MovePageDown, QAbstractItemView.CursorAction.MoveEnd)
_UPWARD = (QAbstractItemView.CursorAction.MoveUp, QAbstractItemView.CursorAction.MovePrevious,
           QAbstractItemView.CursorAction.MovePageUp, QAbstractItemView.CursorAction.MoveHome)


class _PackTree(QTreeWidget):
    """The packs under their group headings, which the keys and the mouse pass over: on a
    heading nothing was selected, Use was greyed and the description went blank."""

    @staticmethod
    def _is_heading(index) -> bool:
        return index.isValid() and not index.parent().isValid()  # packs are all in groups

    def _pack_from(self, index, down: bool):
        """The first pack row from `index` on, looking down or up (invalid: none)."""
        while self._is_heading(index):
            index = self.indexBelow(index) if down else self.indexAbove(index)
        return index

    def neighbour(self, index):
        """The pack row below `index` (above it, at the end): invalid where none is."""
        below = self._pack_from(self.indexBelow(index), True)
        return below if below.isValid() else self._pack_from(self.indexAbove(index), False)

    def moveCursor(self, action, modifiers):  # noqa: N802 - Qt override
        index = super().moveCursor(action, modifiers)
        if not self._is_heading(index):
            return index
        if action not in _DOWNWARD and action not in _UPWARD:  # ← on a pack: its heading
            return self.currentIndex()
        down = action in _DOWNWARD
        # on past the heading; at the top or the bottom, back the other way
        for way in (down, not down):
            found = self._pack_from(index, way)
            if found.isValid():
                return found
        return self.currentIndex()

    def keyboardSearch(self, text: str) -> None:  # noqa: N802 - Qt override
        super().keyboardSearch(text)
        current = self.currentIndex()
        if self._is_heading(current):  # a heading's name typed: its first pack
            self.setCurrentIndex(self._pack_from(current, True))

    def mousePressEvent(self, event):  # noqa: N802 - Qt override
        if self._is_heading(self.indexAt(event.position().toPoint())):
            self.setFocus(Qt.FocusReason.MouseFocusReason)  # the selection stays
            event.accept()
            return
        super().mousePressEvent(event)


@dataclass
class _Row:
    key: str
    title: str
    entry: zoo.ZooEntry | None = None
    model: zoo.InstalledModel | None = None
    generator_path: str | None = None  # set when the row can be used as a pack
    clip_spec: dict | None = None  # fixed CLIP (the demo pack); else the combo's choice

    @property
    def uses_clip_box(self) -> bool:
        return bool(self.generator_path) and self.clip_spec is None


GEOMETRY_KEY = "models_dialog/geometry"
IMPORT_DIR_KEY = "models_dialog/import_dir"  # where the last imported file was


class ModelsDialog(QDialog):
    """Lists the packs; Download / Import file… / Remove… / Use. Emits pack_chosen on
    Use."""

    pack_chosen = Signal(str, object)  # generator path, clip spec dict (or None)

    def __init__(self, runner: JobRunner, parent: QWidget | None = None,
                 current_generator: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Model packs")
        geometry = settings_values.byte_array(QSettings(), GEOMETRY_KEY)
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(720, 440)
        self.runner = runner
        self.current_generator = current_generator
        # the generator the window is loading: in use too (removed meanwhile, the window
        # would end up on a model whose file is gone)
        self.loading_generator: str | None = None
        self._rows: dict[str, _Row] = {}
        self._items: dict[str, QTreeWidgetItem] = {}
        self._downloads: dict[str, Job] = {}  # row key -> its running download
        self._imports: dict[int, Path] = {}  # job id -> the file it imports
        self._failed: dict[str, str] = {}  # row key -> why its last download failed

        self.tree = _PackTree()
        self.tree.setAccessibleName("Model packs")
        self.tree.setHeaderLabels(["Model", "Kind", "Size", "Status"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAllColumnsShowFocus(True)  # the focus mark frames the whole row
        self.tree.setColumnWidth(0, 250)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.currentItemChanged.connect(self._show_row_clip)
        self.tree.itemDoubleClicked.connect(self._on_double_click)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setTextFormat(Qt.TextFormat.PlainText)
        self.clip_combo = QComboBox()
        self.clip_combo.setPlaceholderText(OWN_CLIP)  # shown for a pack with its own CLIP
        self.notice = QLabel()
        self.notice.setWordWrap(True)

        self.download_button = QPushButton("&Download")
        self.download_button.clicked.connect(self.download_selected)
        self.import_button = QPushButton("&Import file…")
        self.import_button.clicked.connect(lambda: self.import_file())
        self.remove_button = QPushButton("&Remove…")
        self.remove_button.setToolTip("Delete the selected model's file from the cache (Del)")
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.tree,
                  lambda: self.remove_selected(),
                  context=Qt.ShortcutContext.WidgetShortcut)
        self.use_button = QPushButton("&Use")
        self.use_button.setDefault(True)
        self.use_button.clicked.connect(self.use_selected)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        clip_row = QHBoxLayout()
        clip_label = QLabel("CLIP for text edits:")
        clip_label.setBuddy(self.clip_combo)  # a screen reader names the box by it
        clip_row.addWidget(clip_label)
        clip_row.addWidget(self.clip_combo, 1)
        buttons = QHBoxLayout()
        for b in (self.download_button, self.import_button, self.remove_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.description)
        layout.addLayout(clip_row)
        layout.addWidget(self.notice)
        layout.addLayout(buttons)

        runner.job_progress.connect(self._on_job_progress)
        runner.job_finished.connect(self._on_job_finished)
        runner.job_failed.connect(self._on_job_failed)
        runner.job_ended.connect(self._on_job_ended)
        for job in runner.active_jobs():  # downloads started from an earlier dialog
            if job.key and job.key.startswith(DOWNLOAD_JOB):
                self._downloads["zoo:" + job.key.split(":", 1)[1]] = job
        self.refresh()

    # ---------------------------------------------------------------- listing

    def refresh(self) -> None:
        """Re-read the registry and the installed files (local files only)."""
        selected, clip = self.selected_key(), self.clip_combo.currentData()
        self.tree.clear()
        self._rows.clear()
        self._items.clear()
        self.notice.clear()
        try:
            (entries, problem), models = zoo.registry_entries(), zoo.installed()
        except AtelierError as e:
            entries, models, problem = [], [], str(e)
        # a broken user registry: the built-in and installed models still show; a cache
        # that cannot be written is said now, not after a download's minutes
        notes = [problem, _cannot_install()]
        if any(notes):
            self.notice.setText("\n".join(n for n in notes if n))
        self._fill(entries, models)
        self.clip_combo.clear()
        try:
            choices = clip_choices(models, entries)
        except AtelierError:
            choices = [OPEN_CLIP_FALLBACK]
        for label, spec in choices:
            self.clip_combo.addItem(label, spec)
        self.tree.expandAll()
        for column in (1, 2):
            self.tree.resizeColumnToContents(column)
        if selected and self.select(selected):
            if clip is not None:  # the user's pick for the row outlives a job's refresh
                self.choose_clip(clip)
        else:
            self._select_current()
        self._update_buttons()

    def _fill(self, entries: list[zoo.ZooEntry], models: list[zoo.InstalledModel]) -> None:
        demo = self._group("Demo")
        choice = demo_choice()
        row = _Row(DEMO_KEY, "Demo pack (toy faces, bundled)")
        if choice is not None:
            row.generator_path, row.clip_spec = choice
        if choice is None:
            status = "missing from this installation"
        elif not Path(choice[1]["path"]).is_file():
            status = "ready (its CLIP is missing: no text edits)"
        else:
            status = "ready"
        self._add(demo, row, "generator + CLIP", "", status,
                  "The toy-face world that ships with the program: small, fast, works "
                  "offline.")

        group = self._group("Model zoo (download)")
        for entry in entries:
            model = _model_for(entry, models)
            row = _Row("zoo:" + entry.name, entry.name, entry, model)
            if model is not None and entry.kind == "generator":
                row.generator_path = str(model.path)
            self._add(group, row, entry.kind, size_text(entry.size),
                      _entry_status(entry, model),
                      f"{entry.description}\nLicence: {entry.licence}")

        known = {e.name for e in entries}
        imported = [m for m in models if m.path.is_file()
                    and m.name not in known and (m.entry is None or m.entry not in known)]
        if imported:
            group = self._group("Imported files")
            for m in imported:  # CLIPs too: listed to be removed, not used as packs
                row = _Row("file:" + m.name, m.name, model=m,
                           generator_path=None if m.kind == "clip" else str(m.path))
                self._add(group, row, m.kind or "generator?", size_text(m.size),
                          "imported", f"Imported from {m.source}")

    def _group(self, title: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem(self.tree, [title])
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)  # a heading, not selectable
        font = item.font(0)
        font.setBold(True)
        item.setFont(0, font)
        return item

    def _add(self, group: QTreeWidgetItem, row: _Row, kind: str, size: str, status: str,
             description: str) -> None:
        if self._in_use(row):
            status += " · in use"
        if row.key in self._downloads:
            status = _download_status(self._downloads[row.key].progress)
        elif row.key in self._failed and row.model is None:  # not "not installed" again
            status = DOWNLOAD_FAILED if status == "not installed" \
                else f"{status} · {DOWNLOAD_FAILED}"
        item = QTreeWidgetItem(group, [row.title, kind, size, status])
        item.setData(0, Qt.ItemDataRole.UserRole, row.key)
        item.setToolTip(0, description)
        item.setToolTip(3, status)
        item.setData(1, Qt.ItemDataRole.UserRole, description)
        self._rows[row.key] = row
        self._items[row.key] = item

    def _is_current(self, path: str) -> bool:
        return bool(self.current_generator) and same_path(path, self.current_generator)

    def _in_use(self, row: _Row) -> bool:
        """The row is the generator the window has open or is loading, or the CLIP file
        one of those runs with."""
        generators = [g for g in (self.current_generator, self.loading_generator) if g]
        if row.generator_path:
            return any(same_path(row.generator_path, g) for g in generators)
        if row.model is None or row.model.kind != "clip":
            return False
        return any(f is not None and same_path(row.model.path, f)
                   for f in map(self._clip_file_of, generators))

    @staticmethod
    def _clip_file_of(generator: str) -> Path | None:
        """The file of the CLIP a generator runs with, as the window remembers it."""
        clip = ClipSource(**opening_clip(generator))
        if clip.path:
            return Path(clip.path)
        # an (arch, tag) may be served by the zoo's file of it (when open_clip's cache
        # lacks it): kept, rather than guessed unused
        try:
            return zoo.installed_clip_weights(clip.arch, clip.tag)
        except AtelierError:  # an unreadable index: no rows to protect either
            return None

    def _select_current(self) -> None:
        for key, row in self._rows.items():
            if row.generator_path and self._is_current(row.generator_path):
                self.select(key)
                return

    # ---------------------------------------------------------------- selection

    def row_keys(self) -> list[str]:
        return list(self._rows)

    def status_text(self, key: str) -> str:
        item = self._items.get(key)
        return item.text(3) if item else ""

    def select(self, key: str) -> bool:
        """Select a row: 'demo', 'zoo:<entry name>' or 'file:<imported name>'."""
        item = self._items.get(key)
        if item is None:
            return False
        self.tree.setCurrentItem(item)
        return True

    def selected_key(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def _selected_row(self) -> _Row | None:
        key = self.selected_key()
        return self._rows.get(key) if key else None

    @Slot()
    def _update_buttons(self) -> None:
        row = self._selected_row()
        can_download = bool(row and row.entry and row.model is None
                            and row.key not in self._downloads)
        self.download_button.setEnabled(can_download)
        self.use_button.setEnabled(bool(row and row.generator_path))
        self.remove_button.setEnabled(self._removable(row))
        self.clip_combo.setEnabled(bool(row and row.uses_clip_box))
        self.description.setText(self._items[row.key].data(1, Qt.ItemDataRole.UserRole)
                                 if row else "")

    @Slot()
    def _show_row_clip(self) -> None:
        """Show in the CLIP box the CLIP the selected generator opens with: Use sends the
        box's choice, so any other would switch CLIP unasked."""
        row = self._selected_row()
        if row is not None and row.uses_clip_box:
            self.choose_clip(opening_clip(row.generator_path))
        elif row is not None and row.clip_spec is not None:  # the demo pack: not the box's
            self.clip_combo.setCurrentIndex(-1)  # (it showed ViT-B-32, greyed)

    def choose_clip(self, spec: dict) -> None:
        """Select `spec` in the CLIP box, adding it when it is not among the choices."""
        index = next((i for i in range(self.clip_combo.count())
                      if same_clip(self.clip_combo.itemData(i), spec)), None)
        if index is None:  # before open_clip's cache, the last resort
            index = max(self.clip_combo.count() - 1, 0)
            self.clip_combo.insertItem(index, _clip_label(spec), dict(spec))
        self.clip_combo.setCurrentIndex(index)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not event.spontaneous():  # opened again: a pick left when it closed is stale
            self._show_row_clip()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        # Enter does what a double-click does: on a model not installed, a download (the
        # default button, Use, is greyed there)
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and self._activate_selected():
            event.accept()
            return
        super().keyPressEvent(event)

    def _on_double_click(self, item: QTreeWidgetItem, _column: int) -> None:
        if item is self.tree.currentItem():
            self._activate_selected()

    def _activate_selected(self) -> bool:
        """Use the selected pack, or download it when it is not installed."""
        row = self._selected_row()
        if row and row.generator_path:
            return self.use_selected()
        if row and row.entry and row.model is None:
            return self.download_selected() is not None
        return False

    # ---------------------------------------------------------------- actions

    @Slot()
    def use_selected(self) -> bool:
        row = self._selected_row()
        if row is None or not row.generator_path:
            return False
        spec = row.clip_spec if row.clip_spec is not None else self.clip_combo.currentData()
        self.pack_chosen.emit(row.generator_path, dict(spec) if spec else None)
        self.accept()
        return True

    def _removable(self, row: _Row | None) -> bool:
        """An installed file, not the generator the window has open nor its CLIP; or what
        a stopped download kept."""
        return bool(row and row.model is not None and not self._in_use(row)) \
            or self._partial(row) is not None

    def _partial(self, row: _Row | None) -> int | None:
        """The size of what a stopped download of the row kept (none while one runs)."""
        if row is None or row.entry is None or row.model is not None \
                or row.key in self._downloads:
            return None
        part = zoo.part_path(row.entry)
        return part.stat().st_size if part.is_file() else None

    def remove_selected(self) -> bool:
        """Delete the selected installed model from the cache, or a stopped download's
        part, after asking."""
        row = self._selected_row()
        if (size := self._partial(row)) is not None:
            return self._discard_partial(row.entry, size)
        if row is None or row.model is None:
            return False
        model = row.model
        if not self._removable(row):
            other = "another" if row.generator_path else "the pack with another CLIP"
            self.notice.setText(f"{model.name} is the model in use; open {other} before "
                                "removing it.")
            return False
        if not self._confirm(
                "Remove model",
                f"Delete {model.name} ({zoo.format_size(model.size)}) from the model cache?"
                "\n\nIts precomputed directions stay in the cache; importing or downloading "
                "it again brings it back."):
            return False
        next_key = self.tree.neighbour(self.tree.indexFromItem(self._items[row.key])).data(
            Qt.ItemDataRole.UserRole)
        try:
            removed = zoo.remove(model.name)
        except (AtelierError, OSError) as e:
            QMessageBox.warning(self, "Cannot remove the model", str(e))
            return False
        self.refresh()
        if row.key not in self._rows and next_key:
            # its row went: the next one, as in a file list (the refresh chose the pack in
            # use, at the top, where Del again did nothing)
            self.select(next_key)
        self.notice.setText(f"Removed {model.name}." if removed.file_deleted else
                            f"Removed {model.name} from the list; its file stays in "
                            f"{model.path.parent} (downloaded outside the cache).")
        return True

    def _confirm(self, title: str, text: str) -> bool:
        """Yes or No, No the default: the deletions it asks about cannot be undone."""
        yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
        return QMessageBox.question(self, title, text, yes | no, no) == yes

    def _discard_partial(self, entry: zoo.ZooEntry, size: int) -> bool:
        if not self._confirm(
                "Remove partial download",
                f"Delete the {zoo.format_size(size)} downloaded of {entry.name}? Downloading "
                "it again then starts from the beginning."):
            return False
        try:
            zoo.discard_partial(entry)
        except (AtelierError, OSError) as e:
            QMessageBox.warning(self, "Cannot remove the partial download", str(e))
            return False
        self.refresh()
        self.notice.setText(f"Deleted the partial download of {entry.name}.")
        return True

    @Slot()
    def download_selected(self) -> Job | None:
        """Start (or resume) the selected entry's download as a job."""
        row = self._selected_row()
        if row is None or row.entry is None or row.model is not None:
            return None
        self._failed.pop(row.key, None)
        job = self.runner.submit(f"Download {row.entry.name}", download_job(row.entry),
                                 key=f"{DOWNLOAD_JOB}{row.entry.name}")
        self._downloads[row.key] = job
        self._set_status(row.key, _download_status(job.progress))
        self._update_buttons()
        return job

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt override: Esc, Close, the X
        QSettings().setValue(GEOMETRY_KEY, self.saveGeometry())
        super().hideEvent(event)

    def import_file(self, path: str | None = None) -> Job | None:
        """Copy a local model file into the cache (asks for it when `path` is None)."""
        if path is None:
            settings = QSettings()
            start = settings_values.text(settings, IMPORT_DIR_KEY) or \
                settings_values.text(settings, "recent/dir", str(Path.home()))
            path, _ = QFileDialog.getOpenFileName(self, "Import a model file", start,
                                                  MODEL_FILTER)
            if not path:
                return None
            settings.setValue(IMPORT_DIR_KEY, str(Path(path).parent))
        job = self.runner.submit(f"Import {Path(path).name}", import_job(Path(path)),
                                 key=f"import:{path}")
        self._imports[job.id] = Path(path)
        self.notice.setText(f"Importing {Path(path).name}…")
        return job

    # ---------------------------------------------------------------- job events

    def _download_key(self, job: Job) -> str | None:
        return next((k for k, j in self._downloads.items() if j is job), None)

    def _set_status(self, key: str, text: str) -> None:
        item = self._items.get(key)
        if item is not None:
            item.setText(3, text)

    @Slot(object, object)
    def _on_job_progress(self, job: Job, progress: Progress) -> None:
        key = self._download_key(job)
        if key is not None:
            self._set_status(key, _download_status(progress))

    @Slot(object, object)
    def _on_job_finished(self, job: Job, result: object) -> None:
        if job.id in self._imports and isinstance(result, zoo.InstalledModel):
            path = self._imports.pop(job.id)
            self.refresh()
            if not self.select("zoo:" + (result.entry or result.name)):
                self.select("file:" + result.name)
            if zoo.found_installed(result, path):
                self.notice.setText(f"{path.name} is installed already, as {result.name}")
            else:
                self.notice.setText(f"Imported {result.name}"
                                    + ("" if result.verified else " (not a known file: not "
                                       "verified against the registry)"))

    @Slot(object, str)
    def _on_job_failed(self, job: Job, message: str) -> None:
        # not waited on: a box held the runner's next signal, so the job showed as still
        # downloading (busy bar, Download greyed) for as long as the box was open
        key = self._download_key(job)
        if key is not None:
            row = self._rows.get(key)
            whole = job.details or message  # the zoo's whole message
            failure = (download_failure(row.entry, whole) if row is not None and row.entry
                       else DownloadFailure(message, _sentence_case(message), "", ""))
            self._failed[key] = failure.text  # the row says so until it is downloaded
            box = show_warning(self, "Download failed", failure.text)
            box.setInformativeText(failure.informative)
            box.setDetailedText(failure.details)
        elif job.id in self._imports:
            show_warning(self, "Import failed", _sentence_case(message))

    @Slot(object)
    def _on_job_ended(self, job: Job) -> None:
        key = self._download_key(job)
        mine = key is not None
        if mine:
            del self._downloads[key]
        if job.id in self._imports:
            del self._imports[job.id]
            self.notice.clear()
            mine = True
        if mine:
            self.refresh()
        if key in self._failed and job.state == FAILED:  # the refresh cleared the notice
            self.notice.setText(self._failed[key])


def _download_status(progress: Progress | None) -> str:
    if progress is None:
        return "downloading…"
    if progress.total > 0:
        return f"downloading {100 * progress.fraction:.0f}%"
    return f"downloading ({progress.message})"


def offer_precompute(parent: QWidget | None, pack_name: str, estimate_text: str = "",
                     suggest: bool = True) -> bool:
    """Ask whether to precompute a new pack's directions now; True when the user agrees.
    `suggest`: Yes is the default answer (not for days of work: Enter would start it)."""
    when = f" ({estimate_text})" if estimate_text else ""
    answer = QMessageBox.question(
        parent, "Precompute directions",
        f"This model pack ({pack_name}) has no precomputed directions yet. Compute them "
        f"now?{when}\n\nIt runs in the background: you can keep working, cancel it, and "
        "resume it later. (If you have the official StyleCLIP's fs3.npy for this "
        "generator, Models ▸ Import StyleCLIP directions uses it instead.)",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Yes if suggest else QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
