"""Help ▸ Keyboard shortcuts: a table built from the window's own actions, so the list can
never disagree with what the keys do."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QMainWindow,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from .stack_panel import MOVE_DOWN_KEY, MOVE_UP_KEY

# An action whose text changes (Undo names the last change) sets this property to a fixed
# name for the list.
SHORTCUT_NAME = "shortcut_name"

# Keys handled directly by widgets rather than by actions.
EXTRA_KEYS = (
    ("Hold \\", "Compare with the unedited image"),
    ("Arrows on the image", "Move the split line (← →), or pan a zoomed image"),
    ("Ctrl + mouse wheel", "Zoom the canvas"),
    ("Double-click an edit", "Rename it"),
    ("Enter in a prompt box", "Apply the prompt now"),
    ("Enter in the directions list", "Add the direction to the stack"),
    ("Space in the edit stack", "Select the edit to tune it; on its box, switch it on or off"),
    (f"{MOVE_UP_KEY.toString(QKeySequence.SequenceFormat.NativeText)}, "
     f"{MOVE_DOWN_KEY.toString(QKeySequence.SequenceFormat.NativeText)} in the edit stack",
     "Move the edit up or down"),
    ("Arrows in the crop dialog", "Move the crop (with Shift: ten times further)"),
    ("+/− in the crop dialog", "Make the crop larger or smaller"),
    ("Home in the crop dialog", "The largest centred square"),
)


# Keys of their own on some keyboards, part of the platform's standard bindings: they
# work, but in the list "Undo, Ctrl+Z" read as if the word were a key to type. X11 binds
# Undo to F14 too (the Undo key of old Sun keyboards), which today's keyboards lack.
DEDICATED_KEYS = frozenset({Qt.Key.Key_Undo, Qt.Key.Key_Redo, Qt.Key.Key_ZoomIn,
                            Qt.Key.Key_ZoomOut, Qt.Key.Key_F14})


def shortcut_rows(window: QMainWindow) -> list[tuple[str, str]]:
    rows = []
    for act in window.actions():
        keys = [k for k in act.shortcuts() if k[0].key() not in DEDICATED_KEYS]
        if not keys:
            continue
        text = act.property(SHORTCUT_NAME) or act.text().replace("&", "").rstrip("…").strip()
        keys_text = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
        rows.append((keys_text, text))
    return sorted(set(rows), key=lambda r: r[1].lower()) + list(EXTRA_KEYS)


def show_shortcuts(window: QMainWindow) -> QDialog:
    """The list, opened without waiting; one at a time (F1 again raises it)."""
    shown = window.findChild(QDialog, "keyboard-shortcuts")
    if shown is not None:
        shown.raise_()
        shown.activateWindow()
        return shown
    dialog = QDialog(window)
    dialog.setObjectName("keyboard-shortcuts")
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # each F1 made another
    dialog.setWindowTitle("Keyboard shortcuts")
    rows = shortcut_rows(window)
    table = QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(["Keys", "Action"])
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setTabKeyNavigation(False)  # Tab goes on to Close, as in any dialog
    for i, (keys, text) in enumerate(rows):
        table.setItem(i, 0, QTableWidgetItem(keys))
        table.setItem(i, 1, QTableWidgetItem(text))
    table.resizeColumnsToContents()
    table.horizontalHeader().setStretchLastSection(True)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(table)
    layout.addWidget(buttons)
    dialog.resize(460, 520)
    dialog.show()
    return dialog
