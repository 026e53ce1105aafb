"""The Models menu: the demo pack and every installed generator, one click each, plus
"Model packs…" (download or import) for the Model packs dialog. Rebuilt each time it opens,
from local files only (the zoo's index), so it never waits on the network."""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from editor.core import zoo
from editor.core.errors import AtelierError
from editor.engine.jobs import JobRunner

from .keys import menu_text
from .models_dialog import ModelsDialog, demo_choice, installed_generators, same_path


class ModelsMenu(QMenu):
    pack_chosen = Signal(str, object)  # generator path, clip spec dict (or None)

    def __init__(self, runner: JobRunner, parent: QWidget | None = None,
                 dialog_action: QAction | None = None):
        """dialog_action: the window's action for the Model packs dialog (it carries the
        shortcut, which the menu then shows); without one the menu makes its own item."""
        super().__init__("&Models", parent)
        self.runner = runner
        self._dialog_action = dialog_action
        self.current_generator: str | None = None
        self.loading_generator: str | None = None
        self._dialog: ModelsDialog | None = None
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def set_current(self, generator_path: str | None) -> None:
        """The generator now open, shown checked (and 'in use' in an open dialog)."""
        self.current_generator = generator_path
        if self._dialog is not None and self._dialog.isVisible():
            self._dialog.current_generator = generator_path
            self._dialog.refresh()

    def set_loading(self, generator_path: str | None) -> None:
        """The generator the window is loading (None once it has loaded or failed): an
        open dialog counts it in use, and will not remove it meanwhile."""
        self.loading_generator = generator_path
        if self._dialog is not None:
            self._dialog.loading_generator = generator_path
            if self._dialog.isVisible():
                self._dialog.refresh()

    @Slot()
    def rebuild(self) -> None:
        self.clear()
        numbers = iter(range(1, 100))  # Alt+1... pick a pack, as a recent-files list does
        demo = demo_choice()
        if demo is not None:
            self._add_pack(menu_text("Demo pack (toy faces)", next(numbers)), *demo)
        try:
            generators = installed_generators()
        except AtelierError as e:
            generators = []
            self.addAction(menu_text(f"(model list unreadable: {e})")).setEnabled(False)
        if problem := zoo.registry_entries()[1]:  # the built-in and installed ones still show
            registry = zoo.user_registry_path()
            note = self.addAction(menu_text(f"(ignored: the unreadable {registry})"))
            note.setEnabled(False)
            note.setToolTip(problem)
        if generators:
            self.addSeparator()
        for model in generators:  # each with the CLIP it was last used with (the window's)
            self._add_pack(menu_text(model.name, next(numbers)), str(model.path), None)
        self.addSeparator()
        if self._dialog_action is not None:
            self.addAction(self._dialog_action)
        else:
            self.addAction("Model &packs…", self.open_dialog)

    def _add_pack(self, label: str, generator_path: str, clip_spec: dict | None) -> None:
        action = QAction(label, self)
        action.setCheckable(True)
        action.setChecked(self._is_current(generator_path))
        action.setToolTip(generator_path)
        action.triggered.connect(
            lambda _checked=False, p=generator_path, c=clip_spec: self.pack_chosen.emit(
                p, dict(c) if c else None))
        self.addAction(action)

    def _is_current(self, path: str) -> bool:
        return bool(self.current_generator) and same_path(path, self.current_generator)

    @Slot()
    def open_dialog(self) -> ModelsDialog:
        """Open the Model packs dialog (modeless); its choice is forwarded. One dialog is
        kept and shown again: a closed one stays connected to the job runner, so each new
        one would add another "Download failed" box to the same failure."""
        if self._dialog is not None:
            if not self._dialog.isVisible():
                self._dialog.current_generator = self.current_generator
                self._dialog.refresh()
                self._dialog.show()
            self._dialog.raise_()
            self._dialog.activateWindow()
            return self._dialog
        dialog = ModelsDialog(self.runner, self.parentWidget(), self.current_generator)
        dialog.loading_generator = self.loading_generator
        dialog.pack_chosen.connect(self.pack_chosen)
        self._dialog = dialog  # held: a modeless dialog without a parent would be collected
        dialog.show()
        return dialog
