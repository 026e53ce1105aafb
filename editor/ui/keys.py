"""Which widget a key belongs to: the window's shortcuts or the widget with the focus.

Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y undo the document wherever the keyboard is. A text box or a
number box claims these keys for its own text history, so with the cursor in one (the seed
after typing 42, the α box, a prompt) undo did nothing or undid text behind the document's
back. Every value these boxes hold is a document step already; pending input becomes its
step first, then the window's Undo/Redo takes the key. So do a few of the window's Ctrl keys
that X11's bindings give a text box: Ctrl+E (Export) moves to the end of the line there,
and Ctrl+Y (Redo) pastes the text Ctrl+K cut.

The window's plain-key shortcuts (R, S, PgUp/PgDown, Del, F2) are for the canvas and the
panels at large; a list, a combo box or a slider uses some of those keys itself (typing a
letter picks an item, PgDown pages, Del in the directions list is not the stack's Del).
Qt asks the focus widget first (ShortcutOverride); `claim_keys` answers "mine".
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QListWidget, QWidget

# the window's keys that a text or number box takes for itself on some platforms
WINDOW_CTRL_KEYS = (QKeySequence("Ctrl+E"), QKeySequence("Ctrl+Y"))


def _window_key(event) -> bool:
    return (event.matches(QKeySequence.StandardKey.Undo)
            or event.matches(QKeySequence.StandardKey.Redo)
            or QKeySequence(event.keyCombination()) in WINDOW_CTRL_KEYS)


class DocumentUndoKeys(QObject):
    def __init__(self, flush: Callable[[], None] | None, parent: QObject):
        super().__init__(parent)
        self._flush = flush

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.ShortcutOverride and _window_key(event):
            if self._flush is not None:
                self._flush()
            event.ignore()  # not the box's: the window's shortcut takes it
            return True
        return False


def route_undo_keys(boxes: list[QWidget], flush: Callable[[], None] | None = None) -> None:
    """Give the undo keys (and WINDOW_CTRL_KEYS) of these boxes to the window; `flush`
    first applies pending input (a number box's typed but not yet entered value is
    entered by default)."""
    for box in boxes:
        pending = flush or (box.interpretText if isinstance(box, QAbstractSpinBox) else None)
        box.installEventFilter(DocumentUndoKeys(pending, box))


# the window's shortcuts without a modifier (see MainWindow._build_actions)
WINDOW_PLAIN_KEYS = frozenset({Qt.Key.Key_R, Qt.Key.Key_S, Qt.Key.Key_PageUp,
                               Qt.Key.Key_PageDown, Qt.Key.Key_Delete, Qt.Key.Key_F2})


class _ClaimKeys(QObject):
    def __init__(self, keys: frozenset[int], parent: QObject):
        super().__init__(parent)
        self._keys = keys

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if (event.type() == QEvent.Type.ShortcutOverride and event.key() in self._keys
                and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):
            event.accept()  # the widget gets the key press; the shortcut does not fire
            return True
        return False


def claim_keys(widget: QWidget, keys=WINDOW_PLAIN_KEYS) -> None:
    """Keep these unmodified keys for `widget` while it has the focus."""
    widget.installEventFilter(_ClaimKeys(frozenset(keys), widget))


class _FocusedRowFollower(QObject):
    def __init__(self, rows: QListWidget):
        super().__init__(rows)  # a slot of a child: disconnected when the list goes
        self._rows = rows
        QApplication.instance().focusChanged.connect(self.follow)

    def follow(self, _old: QWidget | None, new: QWidget | None) -> None:
        rows = self._rows
        if new is None or not rows.viewport().isAncestorOf(new):
            return
        for i in range(rows.count()):
            widget = rows.itemWidget(rows.item(i))
            if widget is not None and (widget is new or widget.isAncestorOf(new)):
                rows.scrollToItem(rows.item(i))
                return


def scroll_to_focused_row(rows: QListWidget) -> None:
    """Keep the row whose control has the keyboard focus in view: a row's widgets
    (setItemWidget) are children of the list, and Tab went on through rows far out of
    sight without the list scrolling."""
    _FocusedRowFollower(rows)


def tab_through_rows(rows: QListWidget, controls: list[QWidget]) -> None:
    """Tab goes from the list into its rows' controls, row by row, then on to what came
    after the list. Row widgets are made after the window, so Qt put them at the end of
    its Tab order, past every other panel.

    Each control is put right after the list, the last one first. Linked from the first
    (list -> c0, c0 -> c1, ...), each control left the widgets that take no focus (rows,
    labels) behind, and Qt walked back over all of those at every later link: 3,000 edits
    took minutes (helper-82's profile)."""
    for control in reversed(controls):
        QWidget.setTabOrder(rows, control)


def menu_text(text: str, number: int | None = None) -> str:
    """A menu item's label for a name the user or a file chose: its '&' shown as itself
    (Qt reads '&x' as the item's Alt letter and drops the '&'), and with `number` 1-9 a
    leading '&1 '... so the item has an Alt key of its own, as recent-file lists do."""
    escaped = text.replace("&", "&&")
    return f"&{number} {escaped}" if number is not None and 1 <= number <= 9 else escaped
