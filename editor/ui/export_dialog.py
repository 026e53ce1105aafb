"""The export dialog: one image, an α sweep as an animation, or the edit stack over seeds.

It only chooses: it returns an `ExportPlan` (plain data) that the window runs as a
background job with `engine.export.run_plan`. Existing files are found here, while the
dialog is open, so the user is asked once ("replace 3 files?") and the job never asks.
The last choices are remembered under "export/" in QSettings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from editor.core.image_io import gif_frame_ms
from editor.engine.export import (
    MAX_GIF_FPS,
    ExportPlan,
    batch_paths,
    check_targets,
    existing_targets,
    plan_targets,
    resolved_targets,
    with_format_suffix,
)
from editor.engine.export_formats import (
    ANIMATION_FORMATS,
    IMAGE_FORMATS,
    LOSSY_FORMATS,
    SCALES,
    format_from_suffix,
)
from editor.engine.session import MAX_SEED, Session

from . import settings_values

KIND_LABELS = {"image": "Image", "sweep": "α sweep (animation)", "batch": "Batch over seeds"}
FILTER_LABELS = {"lanczos": "Smooth (Lanczos)", "nearest": "Sharp pixels (nearest)"}
MAX_FPS = 60
GIF_MEMORY_NOTE_BYTES = 2 * 10**9  # a sweep that holds more is said in the summary
_FILE_FILTERS = {"PNG": "PNG image (*.png)", "JPEG": "JPEG image (*.jpg *.jpeg)",
                 "WEBP": "WebP (*.webp)", "GIF": "Animated GIF (*.gif)"}


def _spin(lo: int, hi: int, value: int, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


def confirm_overwrite(parent: QWidget | None, paths: list[Path]) -> bool:
    """Ask once whether existing files may be replaced; True when there are none."""
    paths = [Path(p) for p in paths]
    if not paths:
        return True
    if len(paths) == 1:
        text = f"“{paths[0].name}” already exists in {paths[0].parent}.\n\nReplace it?"
    else:
        names = ", ".join(p.name for p in paths[:3]) + (", …" if len(paths) > 3 else "")
        text = f"{len(paths)} files already exist ({names}).\n\nReplace them?"
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    return QMessageBox.question(parent, "Replace existing files?", text, yes | no, no) == yes


class ExportDialog(QDialog):
    """Choose an export. After `exec()` returns Accepted, `plan` holds the choice, with
    `overwrite` set when the user agreed to replace files. `failing`: edit id -> why the
    last render could not apply it (a sweep of it is refused); `busy`: the files of
    exports still running (they are not written twice at once)."""

    def __init__(self, session: Session, parent: QWidget | None = None,
                 resolution: int | None = None, edit_id: str | None = None,
                 failing: dict[str, str] | None = None, busy: Iterable[Path] = ()):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setMinimumWidth(460)  # room for a path
        self.session = session
        self.resolution = resolution
        self.failing = dict(failing or {})
        self.busy = set(resolved_targets(busy))
        self.plan: ExportPlan | None = None
        self._formats = {"image": "PNG", "sweep": "GIF"}  # each kind keeps its own choice
        self._build()
        self._restore_settings(edit_id)
        self._connect()
        self._on_kind_changed()

    # ----------------------------------------------------------------- widgets
    def _build(self) -> None:
        self.kind_box = QComboBox()
        for kind, label in KIND_LABELS.items():
            self.kind_box.addItem(label, kind)
        # what the session cannot do is shown but not offered
        self._offer("sweep", bool(self.session.edits), "the edit stack is empty")
        self._offer("batch", self.session.source.kind == "seed",
                    "the image does not start from a seed")

        self.format_box = QComboBox()
        self.scale_box = QComboBox()
        for s in SCALES:
            self.scale_box.addItem("Native size" if s == 1 else f"{s}× upscaled", s)
        self.filter_box = QComboBox()
        for name, label in FILTER_LABELS.items():
            self.filter_box.addItem(label, name)
        self.quality_box = _spin(1, 100, 95, " %")

        self.edit_box = QComboBox()
        for e in self.session.edits:
            self.edit_box.addItem(e.title, e.id)
        self.start_box = self._alpha_box(-5.0)
        self.stop_box = self._alpha_box(5.0)
        self.frames_box = _spin(2, 600, 24)
        self.fps_box = _spin(1, MAX_FPS, 12, " fps")
        self._fps_asked = 12  # what the user set, whatever the format allows
        self.fps_box.valueChanged.connect(lambda v: setattr(self, "_fps_asked", v))
        self.bounce_box = QCheckBox("Play forward, then &back")

        self.first_seed_box = _spin(0, MAX_SEED, self.session.source.seed)
        self.count_box = _spin(1, 100_000, 16)
        self.pattern_edit = QLineEdit("seed{seed:06d}.png")
        self.pattern_edit.setToolTip("File name for each seed; {seed} is replaced, "
                                     "{seed:06d} pads it to 6 digits")
        self.folder_edit = QLineEdit()
        self.folder_edit.setAccessibleName("Folder")  # its label names the row around it
        self.folder_button = QPushButton("C&hoose…")
        self.path_edit = QLineEdit()
        self.path_edit.setAccessibleName("File")
        self.browse_button = QPushButton("Bro&wse…")
        self.summary_label = QLabel()

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Expo&rt",
                                               QDialogButtonBox.ButtonRole.AcceptRole)
        # Qt's own Cancel has an Alt key on some platforms only
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("&Cancel")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        # every label's Alt key is its own (Cancel's is C); a label is its field's buddy
        self._form = form = QFormLayout(self)
        form.addRow("E&xport", self.kind_box)
        form.addRow("&Edit", self.edit_box)
        form.addRow("&From α", self.start_box)
        form.addRow("&To α", self.stop_box)
        form.addRow("Fra&mes", self.frames_box)
        form.addRow("S&peed", self.fps_box)
        form.addRow("", self.bounce_box)
        form.addRow("First see&d", self.first_seed_box)
        form.addRow("&Seeds", self.count_box)
        self._folder_row = self._row(self.folder_edit, self.folder_button)
        self._file_row = self._row(self.path_edit, self.browse_button)
        form.addRow("F&older", self._folder_row)
        form.addRow("File &names", self.pattern_edit)
        form.addRow("F&ile", self._file_row)
        form.labelForField(self._folder_row).setBuddy(self.folder_edit)  # not the row
        form.labelForField(self._file_row).setBuddy(self.path_edit)
        form.addRow("Form&at", self.format_box)
        form.addRow("Si&ze", self.scale_box)
        form.addRow("&Upscaling", self.filter_box)
        form.addRow("&Quality", self.quality_box)
        form.addRow(self.summary_label)
        form.addRow(buttons)

    def _connect(self) -> None:
        self.kind_box.currentIndexChanged.connect(self._on_kind_changed)
        self.format_box.currentIndexChanged.connect(self._on_format_changed)
        for signal in (self.scale_box.currentIndexChanged, self.frames_box.valueChanged,
                       self.fps_box.valueChanged, self.bounce_box.toggled,
                       self.count_box.valueChanged, self.first_seed_box.valueChanged):
            signal.connect(self._update_state)
        for edit in (self.path_edit, self.pattern_edit):
            edit.textChanged.connect(self._on_name_typed)
        self.browse_button.clicked.connect(self._browse_file)
        self.folder_button.clicked.connect(self._browse_folder)

    def _offer(self, kind: str, possible: bool, why_not: str) -> None:
        item = self.kind_box.model().item(self.kind_box.findData(kind))
        item.setEnabled(possible)
        if not possible:
            item.setToolTip(f"Not available: {why_not}")

    @staticmethod
    def _alpha_box(value: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(-100.0, 100.0)
        box.setSingleStep(0.5)
        box.setValue(value)
        return box

    @staticmethod
    def _row(edit: QLineEdit, button: QPushButton) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        layout.addWidget(button)
        return row

    # ----------------------------------------------------------------- state
    @property
    def kind(self) -> str:
        return self.kind_box.currentData()

    def _on_kind_changed(self) -> None:
        kind = self.kind
        sweep, batch = kind == "sweep", kind == "batch"
        for w in (self.edit_box, self.start_box, self.stop_box, self.frames_box,
                  self.fps_box, self.bounce_box):
            self._form.setRowVisible(w, sweep)
        for w in (self.first_seed_box, self.count_box, self._folder_row, self.pattern_edit):
            self._form.setRowVisible(w, batch)
        self._form.setRowVisible(self._file_row, not batch)

        formats = ANIMATION_FORMATS if sweep else IMAGE_FORMATS
        self.format_box.blockSignals(True)
        self.format_box.clear()
        for f in formats:
            self.format_box.addItem(f, f)
        wanted = self._formats["sweep" if sweep else "image"]
        self.format_box.setCurrentIndex(max(0, self.format_box.findData(wanted)))
        self.format_box.blockSignals(False)
        self._on_format_changed()

    def _on_format_changed(self) -> None:
        fmt = self.format_box.currentData()
        if fmt is None:
            return
        self._use_format(fmt)
        # file names follow the format, so the extension never disagrees with the content
        edit = self._name_edit()
        text = edit.text().strip()
        # a folder keeps its name, to be refused, never turned into "folder.png"
        if text and not (edit is self.path_edit and self._names_a_folder(text)):
            edit.setText(str(with_format_suffix(text, fmt)))
        self._update_state()

    def _use_format(self, fmt: str) -> None:
        """What a chosen format changes besides the file name: remembered per kind, and the
        speeds it plays."""
        self._formats["sweep" if self.kind == "sweep" else "image"] = fmt
        # a GIF frame lasts at least 20 ms: a faster speed would play at 50 fps anyway; the
        # speed asked for comes back with a format that plays it
        asked = self._fps_asked
        self.fps_box.setMaximum(MAX_GIF_FPS if fmt == "GIF" else MAX_FPS)
        self.fps_box.setValue(asked)
        self._fps_asked = asked

    def _name_edit(self) -> QLineEdit:
        return self.pattern_edit if self.kind == "batch" else self.path_edit

    def _on_name_typed(self) -> None:
        """An extension typed in the File box or the batch's pattern, of a format on offer,
        chooses that format in the Format box: it is what is written. (The box kept showing
        PNG, with Quality greyed, for a JPEG written at the hidden quality; a batch ignored
        the pattern's extension.) The text is left as typed."""
        formats = [self.format_box.itemData(i) for i in range(self.format_box.count())]
        fmt = format_from_suffix(self._name_edit().text().strip(), formats)
        if fmt is not None and fmt != self.format_box.currentData():
            self.format_box.blockSignals(True)  # not the handler that renames the file
            self.format_box.setCurrentIndex(self.format_box.findData(fmt))
            self.format_box.blockSignals(False)
            self._use_format(fmt)
        self._update_state()

    def _update_state(self) -> None:
        scale = self.scale_box.currentData()
        self.filter_box.setEnabled(scale > 1)
        self.quality_box.setEnabled(self.format_box.currentData() in LOSSY_FORMATS)
        self.summary_label.setText(self._summary())

    def _summary(self) -> str:
        parts = []
        if self.resolution:
            side = self.resolution * self.scale_box.currentData()
            parts.append(f"{side} × {side} px")
        if self.kind == "sweep":
            n = self.frames_box.value()
            n = 2 * n - 2 if self.bounce_box.isChecked() else n
            fps = self.fps_box.value()
            # as long as the file plays: a GIF's frames last whole hundredths of a second
            frame_s = gif_frame_ms(fps) / 1000 if self.format_box.currentData() == "GIF" \
                else 1 / fps
            parts.append(f"{n} frames, {n * frame_s:.1f} s")
            if self.resolution:
                # every rendered frame is kept (RGB, at the render's size) until the file is
                # written, and Pillow's GIF writer also keeps each written frame, upscaled,
                # a byte a pixel, to the end
                rendered = self.frames_box.value() * self.resolution ** 2 * 3
                held = rendered
                if self.format_box.currentData() == "GIF":
                    held += n * (self.resolution * self.scale_box.currentData()) ** 2
                if held >= GIF_MEMORY_NOTE_BYTES:
                    webp = (f" (as a WebP, {rendered / 1e9:.1f} GB)" if held > rendered
                            else "")
                    parts.append(f"⚠ making this sweep holds about {held / 1e9:.1f} GB in "
                                 f"memory{webp}")
        elif self.kind == "batch":
            count = self.count_box.value()
            parts.append(f"{count} file{'s' if count != 1 else ''}{self._batch_names(count)}")
        typed = self.path_edit.text().strip()
        if self.kind != "batch" and typed and not self._names_a_folder(typed):
            written = self._file_target(typed)[0].name
            if written != Path(typed).name:  # "photo.GIF" as an image, "x."
                parts.append(f"saved as {written}")
        return " · ".join(parts)

    def _batch_names(self, count: int) -> str:
        """The first and last names the pattern gives, as the export names them (": seed000042.png
        … seed000057.png"): only those two, whatever the count; "" for a pattern the export
        refuses (Export says why)."""
        first = self.first_seed_box.value()
        seeds = (first,) if count == 1 else (first, first + count - 1)
        try:
            names = [p.name for p in batch_paths("", seeds, self.pattern_edit.text().strip(),
                                                 self.format_box.currentData())]
        except ValueError:
            return ""
        return ": " + " … ".join(names)

    # ----------------------------------------------------------------- files
    def _ask_save_path(self, start: str, filters: list[str]) -> str:
        # we ask about replacing files ourselves (once, after the format fixed the name)
        path, _ = QFileDialog.getSaveFileName(
            self, "Export to", start, ";;".join(filters), filters[0],
            QFileDialog.Option.DontConfirmOverwrite)
        return path

    def _ask_folder(self, start: str) -> str:
        return QFileDialog.getExistingDirectory(self, "Export into folder", start)

    def _browse_file(self) -> None:
        formats = [self.format_box.itemData(i) for i in range(self.format_box.count())]
        current = self.format_box.currentData()
        filters = [_FILE_FILTERS[current]] + [_FILE_FILTERS[f] for f in formats
                                              if f != current]
        path = self._ask_save_path(self.path_edit.text() or self._default_dir(), filters)
        if not path:
            return
        fmt = format_from_suffix(path, formats)
        if fmt is not None:  # a typed extension chooses the format
            self.format_box.setCurrentIndex(self.format_box.findData(fmt))
        self.path_edit.setText(str(with_format_suffix(path, self.format_box.currentData())))

    def _browse_folder(self) -> None:
        folder = self._ask_folder(self.folder_edit.text() or self._default_dir())
        if folder:
            self.folder_edit.setText(folder)

    def _default_dir(self) -> str:
        return settings_values.text(QSettings(), "export/dir") or QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.PicturesLocation)

    def _default_path(self) -> str:
        src = self.session.source
        stem = f"seed{src.seed}" if src.kind == "seed" else "edited"
        return str(Path(self._default_dir()) / f"{stem}.png")

    def _resolved(self, typed: str) -> Path:
        # a bare name goes where the dialog suggests, not the program's working folder
        return Path(self._default_dir()) / Path(typed).expanduser()

    def _names_a_folder(self, typed: str) -> bool:
        """Whether the File box names a folder: one that exists, or a name ending in a
        separator (a folder still to be made)."""
        try:
            return typed.endswith(("/", os.sep)) or self._resolved(typed).is_dir()
        except OSError:  # a name too long to look at: check_targets says so in words
            return False

    def _file_target(self, typed: str) -> tuple[Path, str]:
        """The file an image or sweep writes for the File box's text, and its format: a
        typed extension of a format on offer chooses it, else the name gets the chosen
        format's (as an image, "photo.GIF" is written as photo.png)."""
        formats = [self.format_box.itemData(i) for i in range(self.format_box.count())]
        path = self._resolved(typed)
        fmt = format_from_suffix(path, formats) or self.format_box.currentData()
        return with_format_suffix(path, fmt), fmt

    # ----------------------------------------------------------------- the plan
    def build_plan(self) -> ExportPlan:
        """The plan the widgets describe; ValueError says what is missing."""
        kind, fmt = self.kind, self.format_box.currentData()
        path, folder = self.path_edit.text().strip(), self.folder_edit.text().strip()
        if kind != "batch" and not path:
            raise ValueError("Choose a file to export to.")
        if kind == "batch" and not folder:
            raise ValueError("Choose a folder to export into.")
        if kind != "batch" and self._names_a_folder(path):
            # refused here: the format's extension would make it "folder.png" beside it
            raise ValueError(f"'{self._resolved(path)}' is a folder; choose a file name.")
        target = None
        if path and kind != "batch":
            target, fmt = self._file_target(path)
        if folder:
            folder = str(Path(self._default_dir()) / Path(folder).expanduser())
        if kind == "sweep" and self.edit_box.currentData() is None:
            raise ValueError("The sweep needs an edit; the edit stack is empty.")
        if kind == "sweep" and (why := self.failing.get(self.edit_box.currentData())):
            raise ValueError(f"“{self.edit_box.currentText()}” cannot be applied, so it "
                             f"cannot be swept: {why}")
        return ExportPlan(
            kind=kind,
            path=str(target) if target is not None else "",
            format=fmt,
            scale=self.scale_box.currentData(),
            upscale_filter=self.filter_box.currentData(),
            quality=self.quality_box.value(),
            edit_id=self.edit_box.currentData() or "",
            start=self.start_box.value(),
            stop=self.stop_box.value(),
            frames=self.frames_box.value(),
            fps=float(self.fps_box.value()),
            bounce=self.bounce_box.isChecked(),
            folder=folder,
            first_seed=self.first_seed_box.value(),
            count=self.count_box.value(),
            name_pattern=self.pattern_edit.text().strip(),
        )

    def accept(self) -> None:
        try:
            plan = self.build_plan()
            targets = plan_targets(plan)
            check_targets(targets)
            existing = existing_targets(targets)
            writing = [t for t, same in zip(targets, resolved_targets(targets), strict=True)
                       if same in self.busy] if self.busy else []
        except (ValueError, OSError) as e:
            self._warn(str(e))
            return
        if writing:  # the second would fail at the end, or replace the first's file
            self._warn(f"“{writing[0].name}” is being written by an export that is still "
                       "running (see the Jobs panel); wait for it, or choose another name.")
            return
        if existing:
            if not confirm_overwrite(self, existing):
                return  # stay open: the user may pick another name
            plan = replace(plan, overwrite=True)
        self.plan = plan
        self._save_settings(plan)
        super().accept()

    def _warn(self, message: str) -> None:
        QMessageBox.warning(self, "Cannot export", message)

    # ----------------------------------------------------------------- settings
    def _restore_settings(self, edit_id: str | None) -> None:
        # every value is checked: a bad one in the settings file must not stop the dialog
        s = QSettings()

        def select(box: QComboBox, value) -> None:
            i = box.findData(value)
            if i >= 0 and box.model().item(i).isEnabled():
                box.setCurrentIndex(i)

        def spin(box, key: str, default) -> None:
            read = settings_values.integer if isinstance(default, int) else \
                settings_values.number
            box.setValue(read(s, f"export/{key}", default, box.minimum(), box.maximum()))

        select(self.kind_box, settings_values.text(s, "export/kind", "image"))
        select(self.scale_box, settings_values.integer(s, "export/scale", 1, 1, SCALES[-1]))
        select(self.filter_box, settings_values.text(s, "export/filter", "lanczos"))
        self._formats["image"] = settings_values.text(s, "export/image_format", "PNG")
        self._formats["sweep"] = settings_values.text(s, "export/sweep_format", "GIF")
        spin(self.quality_box, "quality", 95)
        spin(self.start_box, "sweep_start", -5.0)
        spin(self.stop_box, "sweep_stop", 5.0)
        spin(self.frames_box, "sweep_frames", 24)
        spin(self.fps_box, "sweep_fps", 12)
        self.bounce_box.setChecked(settings_values.flag(s, "export/sweep_bounce", False))
        spin(self.count_box, "batch_count", 16)
        self.folder_edit.setText(settings_values.text(s, "export/batch_folder")
                                 or self._default_dir())
        self.pattern_edit.setText(settings_values.text(s, "export/batch_pattern",
                                                       "seed{seed:06d}.png"))
        self.path_edit.setText(self._default_path())
        if edit_id is not None and (i := self.edit_box.findData(edit_id)) >= 0:
            self.edit_box.setCurrentIndex(i)

    def _save_settings(self, plan: ExportPlan) -> None:
        s = QSettings()
        values = {
            "kind": plan.kind, "scale": plan.scale, "filter": plan.upscale_filter,
            "image_format": self._formats["image"], "sweep_format": self._formats["sweep"],
            "quality": plan.quality, "sweep_start": plan.start, "sweep_stop": plan.stop,
            "sweep_frames": plan.frames, "sweep_fps": int(plan.fps),
            "sweep_bounce": plan.bounce, "batch_count": plan.count,
            "batch_folder": plan.folder, "batch_pattern": plan.name_pattern,
        }
        if plan.path:
            values["dir"] = str(Path(plan.path).parent)
        for key, value in values.items():
            s.setValue(f"export/{key}", value)


def get_export_plan(parent: QWidget | None, session: Session, resolution: int | None = None,
                    edit_id: str | None = None, failing: dict[str, str] | None = None,
                    busy: Iterable[Path] = ()) -> ExportPlan | None:
    """Show the dialog; the chosen plan, or None if cancelled."""
    dialog = ExportDialog(session, parent, resolution, edit_id, failing, busy)
    try:
        return dialog.plan if dialog.exec() == QDialog.DialogCode.Accepted else None
    finally:
        # the window's child otherwise: each Ctrl+E kept another dialog and its session
        dialog.deleteLater()
