"""Help ▸ Keyboard shortcuts: a table built from the window's own actions, so the list can
never disagree with what the keys do."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMainWindow,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from .screen_room import available_area
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


def _dialog_size(dialog: QDialog, table: QTableWidget, texts: list[str]) -> QSize:
    """Wide enough for the keys and the longest description on one line (from the font:
    a fixed 460 px cut them), within the screen; on a narrower screen they wrap."""
    style = table.style()
    text_margins = 2 * (style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None,
                                          table) + 1)  # as the item delegate leaves
    longest = max((table.fontMetrics().horizontalAdvance(t) for t in texts), default=0)
    margins = dialog.layout().contentsMargins()
    width = (table.columnWidth(0) + longest + text_margins + 8  # and some air
             + style.pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, table)
             + 2 * table.frameWidth() + margins.left() + margins.right())
    height = max(520, 26 * table.fontMetrics().height())
    room = available_area(dialog)
    if room is not None:
        width, height = min(width, room.width() * 9 // 10), min(height, room.height() * 9 // 10)
    return QSize(max(460, width), height)


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
    # no sideways scrolling: it hid the ends of the descriptions and the "Action" header;
    # the keys keep their width, the descriptions take the rest and wrap when they must
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.setWordWrap(True)
    table.setTextElideMode(Qt.TextElideMode.ElideNone)
    table.resizeColumnsToContents()
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(table)
    layout.addWidget(buttons)
    dialog.resize(_dialog_size(dialog, table, [text for _keys, text in rows]))
    dialog.show()
    return dialog
