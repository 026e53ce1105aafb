"""The edit stack: every edit with its strength slider, enable toggle, name, order, delete.

Rows are made only for edits added or moved, and dropped for edits removed; the others
keep their row and are updated in place, so a slider being dragged is never replaced under
the hand (and adding the 20th edit does not make 19 rows again). Selecting a row asks the
window to load that edit into the prompt panel.
"""

from __future__ import annotations

from bisect import bisect_left

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from editor.engine.compose import EditStatus
from editor.engine.session import Edit

from .elided_label import ElidedLabel
from .icons import icon
from .keys import WINDOW_PLAIN_KEYS, claim_keys, scroll_to_focused_row, tab_through_rows
from .prompt_panel import ALPHA_RANGE, ALPHA_TYPED_RANGE
from .row_delegate import TextUnderRows
from .screen_room import available_area
from .sliders import FloatSlider

MOVE_UP_KEY = QKeySequence("Alt+Up")
MOVE_DOWN_KEY = QKeySequence("Alt+Down")


def rows_kept(old: tuple[str, ...], new: tuple[str, ...]) -> set[str]:
    """The ids in both orders whose rows can stay where they are: the most of them that
    keep their relative order (a longest increasing run of their old places, taken in
    the new order); every other row in the new order is made anew."""
    place = {eid: i for i, eid in enumerate(old)}
    common = [eid for eid in new if eid in place]
    tail_places: list[int] = []  # the smallest last old place of a run of each length
    tail_at: list[int] = []  # where in `common` that run ends
    before: list[int | None] = []  # the run's previous element, for each element
    for k, eid in enumerate(common):
        length = bisect_left(tail_places, place[eid])
        if length == len(tail_places):
            tail_places.append(place[eid])
            tail_at.append(k)
        else:
            tail_places[length], tail_at[length] = place[eid], k
        before.append(tail_at[length - 1] if length else None)
    kept: set[str] = set()
    k = tail_at[-1] if tail_at else None
    while k is not None:
        kept.add(common[k])
        k = before[k]
    return kept


class EditRow(QWidget):
    def __init__(self, edit: Edit, panel: EditStackPanel):
        # made in the list it goes to: a row made as a window of its own joined Qt's
        # list of windows, which each later row then searched, and each setItemWidget too
        super().__init__(panel.list.viewport())
        self.edit_id = edit.id
        self.enabled_box = QCheckBox()
        self.enabled_box.setToolTip("Apply this edit")
        self.title = ElidedLabel()  # a long name must not push the α box out of view
        # the theme's text colour, marked by a sign: a fixed red was unreadable on the
        # selected row (contrast 1.1:1), which is the row a user selects to fix it
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self._error = ""
        self._off = self._selected = False
        # the wheel scrolls the list: a row's strength takes it only once focused
        self.strength = FloatSlider(*ALPHA_RANGE, value=edit.strength, wheel_needs_focus=True,
                                    typed_range=ALPHA_TYPED_RANGE)
        self.strength.setToolTip("Strength α of this edit")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.enabled_box)
        top.addWidget(self.title, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(top)
        layout.addWidget(self.strength)
        layout.addWidget(self.status)
        self.status.hide()
        eid = edit.id
        self.enabled_box.toggled.connect(lambda on: panel.enabled_changed.emit(eid, on))
        self.strength.value_changed.connect(lambda v: panel.strength_changed.emit(eid, v))
        self.strength.drag_finished.connect(panel.interaction_finished)
        self.show_edit(edit)

    def focus_chain(self) -> tuple[QWidget, ...]:
        """Its controls, in Tab order."""
        return (self.enabled_box, *self.strength.focus_chain())

    def show_edit(self, edit: Edit) -> None:
        self.shown = edit
        self.enabled_box.blockSignals(True)
        self.enabled_box.setChecked(edit.enabled)
        self.enabled_box.blockSignals(False)
        self.title.setText(edit.title)
        # an edit that is off: italic, beside its unticked box, and fainter but readable
        # (the disabled grey was 1.9:1)
        self._off = not edit.enabled
        font = self.title.font()
        font.setItalic(self._off)
        self.title.setFont(font)
        self._show_title_ink()
        self.strength.set_value(edit.strength)
        self.enabled_box.setAccessibleName(f"Apply {edit.title}")
        self.strength.set_accessible_name(f"Strength of {edit.title}")

    def set_selected(self, selected: bool) -> None:
        self._selected = selected
        self._show_title_ink()

    def _show_title_ink(self) -> None:
        # on the selection (the row a user tunes) no grey reads: the text colour there
        self.title.set_dimmed(self._off and not self._selected)

    @property
    def error(self) -> str:
        """The error shown under the row ("" for none)."""
        return self._error

    def show_status(self, status: EditStatus | None) -> bool:
        """Show the edit's error, if any; True when the message changed (its row may need
        another height)."""
        error = (status.error if status is not None else None) or ""
        if error == self._error:
            return False
        self._error = error
        self.status.setText(f"⚠ {error}" if error else "")
        self.status.setVisible(bool(error))
        # read with the row's controls, which a screen reader's user reaches (the line
        # under them never takes the keyboard)
        self.enabled_box.setAccessibleDescription(error)
        self.strength.set_accessible_description(error)
        return True


class EditStackPanel(QWidget):
    strength_changed = Signal(str, float)
    enabled_changed = Signal(str, bool)
    renamed = Signal(str, str)
    removed = Signal(str)
    moved = Signal(str, int)
    selected = Signal(object)  # edit id or None
    has_selection = Signal(bool)  # whether Rename and Delete have an edit to act on
    interaction_finished = Signal()
    # the last edit went while the keyboard was in the stack: an empty list has nothing to
    # focus or show focused, so the window gives the focus to where edits are made
    emptied_with_focus = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setAccessibleName("Edit stack")
        # items carry their edit's title (type-ahead, screen readers); the row shows it
        self.list.setItemDelegate(TextUnderRows(self.list))
        self.list.setToolTip("Edits are applied together; select one to tune it")
        # the selection, not the current row: Tab into the list makes its first row
        # current (unselected), which must not put that edit in the prompt panel
        self.list.itemSelectionChanged.connect(self._on_selection)
        self.list.itemDoubleClicked.connect(lambda _i: self.rename_selected())
        # PgUp/PgDown move through the edits (not the seed) and letters find one; Del and
        # F2 stay the window's: they delete and rename the selected edit
        claim_keys(self.list, WINDOW_PLAIN_KEYS - {Qt.Key.Key_Delete, Qt.Key.Key_F2})
        scroll_to_focused_row(self.list)
        # rows take the list's width (titles are shortened), so no sideways scrolling
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.viewport().installEventFilter(self)
        self.empty = QLabel("No edits yet. Write a prompt above and press "
                            "“Add to stack”.")
        self.empty.setWordWrap(True)
        buttons = QHBoxLayout()
        self.up_button = self._button("mdi6.arrow-up", "Up", "Move the edit up",
                                      lambda: self._move(-1))
        self.down_button = self._button("mdi6.arrow-down", "Down", "Move the edit down",
                                        lambda: self._move(+1))
        self.rename_button = self._button("mdi6.rename-box", "Rename", "Rename the edit (F2)",
                                          self.rename_selected)
        self.delete_button = self._button("mdi6.delete-outline", "Delete",
                                          "Delete the edit (Del)", self.delete_selected)
        for b in (self.up_button, self.down_button, self.rename_button, self.delete_button):
            buttons.addWidget(b)
        # the edit under the keyboard moves, also from a control of its row (Ctrl+arrows
        # are taken: a row's α box steps ten times further with them)
        for keys, step in ((MOVE_UP_KEY, -1), (MOVE_DOWN_KEY, +1)):
            shortcut = QShortcut(keys, self.list, context=Qt.ShortcutContext
                                 .WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda step=step: self._move_focused(step))
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self._rows: dict[str, EditRow] = {}
        self._order: tuple[str, ...] = ()
        self._update_buttons()
        QApplication.instance().focusChanged.connect(self._tell_key_target)

    def _button(self, icon_name: str, text: str, tip: str, slot) -> QPushButton:
        ico = icon(icon_name)
        b = QPushButton(ico, "" if not ico.isNull() else text)  # text when icons are missing
        b.setToolTip(tip)
        b.setAccessibleName(tip.split(" (")[0])  # an icon alone says nothing to a reader
        b.clicked.connect(slot)
        return b

    # ----------------------------------------------------------------- showing the model
    def show_edits(self, edits: tuple[Edit, ...], selected_id: str | None) -> None:
        order = tuple(e.id for e in edits)
        made = self._show_order(edits) if order != self._order else set()
        for i, e in enumerate(edits):
            # rows whose edit is as shown are left alone: every slider event comes here,
            # and refreshing 999 rows took 130 ms of each
            if e.id not in made and self._rows[e.id].shown != e:
                self._rows[e.id].show_edit(e)
                self.list.item(i).setText(e.title)  # renamed
        self._select(selected_id)
        self.empty.setVisible(not edits)
        # Tab passes an empty list by: it showed no focus and nothing in it takes a key
        self.list.setFocusPolicy(Qt.FocusPolicy.StrongFocus if edits
                                 else Qt.FocusPolicy.NoFocus)
        self._update_buttons()
        focus = QApplication.focusWidget()
        if not edits and focus is not None and self.isAncestorOf(focus):
            self.emptied_with_focus.emit()

    def show_status(self, statuses: dict) -> None:
        # every rendered frame comes here: rows are measured again only when a message
        # appeared, changed or went
        changed = [row.show_status(statuses.get(eid)) for eid, row in self._rows.items()]
        if any(changed):
            self._fit_rows()
            for i in range(self.list.count()):  # the list's own item, read when selected
                item = self.list.item(i)
                row = self._rows.get(item.data(Qt.ItemDataRole.UserRole))
                if row is not None:
                    item.setData(Qt.ItemDataRole.AccessibleDescriptionRole, row.error)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt naming
        if watched is self.list.viewport() and event.type() == event.Type.Resize:
            self._fit_rows()  # wrapped messages change height with the width
        return super().eventFilter(watched, event)

    def _fit_rows(self) -> None:
        """Give each row the height its content needs at the list's width (a message that
        appears or wraps makes a row taller)."""
        width = self.list.viewport().width()
        for i in range(self.list.count()):
            item = self.list.item(i)
            row = self.list.itemWidget(item)
            if row is None:
                continue
            height = row.heightForWidth(width) if row.hasHeightForWidth() else -1
            hint = QSize(width, height if height > 0 else row.sizeHint().height())
            if item.sizeHint() != hint:
                item.setSizeHint(hint)

    def selected_id(self) -> str | None:
        items = self.list.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def row(self, edit_id: str) -> EditRow:
        return self._rows[edit_id]

    def _show_order(self, edits: tuple[Edit, ...]) -> set[str]:
        """Rows for a new order of edits: the rows of edits that keep their order stay,
        the others are made anew (added, moved) or dropped (removed). Returns the ids of
        the rows made."""
        order = tuple(e.id for e in edits)
        kept = rows_kept(self._order, order)
        made = [e for e in edits if e.id not in kept]
        if len(made) > max(4, len(edits) // 2):  # mostly new: all at once is quicker
            kept, made = set(), list(edits)
        focus = QApplication.focusWidget()
        # a row's control with the focus goes with its row: keep the focus in the list
        # (Qt gave it to the canvas, away from the stack the user works in)
        keep_focus = focus is not None and self.list.isAncestorOf(focus)
        self.list.blockSignals(True)
        if not kept:
            self._build_all(edits)
        else:
            for i in reversed(range(self.list.count())):  # Qt deletes their row widgets
                if self.list.item(i).data(Qt.ItemDataRole.UserRole) not in kept:
                    self.list.takeItem(i)
            for i, e in enumerate(edits):
                if e.id not in kept:
                    item, row = self._new_row(e)
                    self.list.insertItem(i, item)
                    self.list.setItemWidget(item, row)
            self._rows = {eid: self._rows[eid] for eid in order}  # in the list's order
        self._order = order
        self._fit_rows()
        tab_through_rows(self.list, [w for row in self._rows.values()
                                     for w in row.focus_chain()])
        self.list.blockSignals(False)
        if keep_focus and not self.list.isAncestorOf(QApplication.focusWidget()):
            self.list.setFocus(Qt.FocusReason.OtherFocusReason)
        return {e.id for e in made}

    def _new_row(self, edit: Edit) -> tuple[QListWidgetItem, EditRow]:
        item = QListWidgetItem(edit.title)
        item.setData(Qt.ItemDataRole.UserRole, edit.id)
        row = EditRow(edit, self)
        item.setSizeHint(row.sizeHint())
        self._rows[edit.id] = row
        return item, row

    def _build_all(self, edits: tuple[Edit, ...]) -> None:
        self.list.clear()
        self._rows = {}
        # every item first, then every row widget: an item added while the list holds
        # row widgets made Qt lay out the whole list again to place them, so 3,000 edits
        # took minutes to show (the work grew with the square of their number); with the
        # widgets set last, the list is laid out once, when shown
        items = []
        for e in edits:
            item, row = self._new_row(e)
            self.list.addItem(item)
            items.append((item, row))
        for item, row in items:
            self.list.setItemWidget(item, row)

    def _select(self, edit_id: str | None) -> None:
        self.list.blockSignals(True)
        if edit_id is None or edit_id not in self._rows:
            self.list.setCurrentRow(-1)
            self.list.clearSelection()
        else:
            self.list.setCurrentRow(self._order.index(edit_id))
        self.list.blockSignals(False)
        self._show_selection()

    def _show_selection(self) -> None:
        sel = self.selected_id()
        for edit_id, row in self._rows.items():
            row.set_selected(edit_id == sel)

    def _update_buttons(self) -> None:
        sel = self.selected_id()
        i = self._order.index(sel) if sel in self._order else -1
        for button, enabled in ((self.up_button, i > 0),
                                (self.down_button, 0 <= i < len(self._order) - 1),
                                (self.rename_button, i >= 0), (self.delete_button, i >= 0)):
            if button.hasFocus() and not enabled:
                # Qt would pass the focus on to the next button: Space on Up at the top
                # then moved the edit down again
                self.list.setFocus(Qt.FocusReason.OtherFocusReason)
            button.setEnabled(enabled)
        self._tell_key_target()

    def _tell_key_target(self, *_focus) -> None:
        # Del and F2 act on the row with the focus too (Tab into the list selects none)
        self.has_selection.emit(self._key_target() is not None)

    # ----------------------------------------------------------------- user input
    def _on_selection(self) -> None:
        self._show_selection()
        self._update_buttons()
        self.selected.emit(self.selected_id())

    def _move(self, step: int, edit_id: str | None = None) -> bool:
        """Move an edit (the selected one) a place up or down; False where it cannot go."""
        edit_id = edit_id or self.selected_id()
        if edit_id not in self._order:
            return False
        index = self._order.index(edit_id) + step
        if not 0 <= index < len(self._order):
            return False
        self.moved.emit(edit_id, index)
        return True

    def _move_focused(self, step: int) -> None:
        """Alt+Up/Down: move the edit whose row has the keyboard focus (else the list's
        current one), the keyboard staying with it: on the same control of its row, or on
        its row in the list."""
        focus = QApplication.focusWidget()
        edit_id = self._row_with_focus()
        current = self.list.currentItem()
        if edit_id is None and current is not None:
            edit_id = current.data(Qt.ItemDataRole.UserRole)
        old = self._rows.get(edit_id)
        controls = old.focus_chain() if old is not None else ()
        place = controls.index(focus) if focus in controls else None
        if not self._move(step, edit_id):
            return
        if place is not None:  # the row was made anew: its control like the old one
            self._rows[edit_id].focus_chain()[place].setFocus(Qt.FocusReason.OtherFocusReason)
        else:  # current, not selected: the selection stays what the user chose
            self.list.selectionModel().setCurrentIndex(
                self.list.model().index(self._order.index(edit_id), 0),
                QItemSelectionModel.SelectionFlag.NoUpdate)

    def _row_with_focus(self) -> str | None:
        """The edit whose row has a control with the keyboard focus (Tab reached it; its
        focus frame shows it)."""
        focus = QApplication.focusWidget()
        if focus is not None and self.list.isAncestorOf(focus):
            for edit_id, row in self._rows.items():
                if row.isAncestorOf(focus):
                    return edit_id
        return None

    def _key_target(self) -> str | None:
        """The edit Del and F2 act on: the row whose control has the keyboard focus, else
        the selected one."""
        return self._row_with_focus() or self.selected_id()

    def delete_selected(self) -> None:
        sel = self._key_target()
        if sel is not None:
            self.removed.emit(sel)

    def rename_selected(self) -> None:
        sel = self._key_target()
        if sel is None:
            return
        current = self._rows[sel].title.text()
        name = ask_edit_name(self, current)
        # an empty name clears the custom one, so the edit's own title ("a → b") returns
        if name is not None and name.strip() != current:
            self.renamed.emit(sel, name.strip())


RENAME_BOX_CHARS = (40, 90)  # the name box's width, in average characters: least, most


def ask_edit_name(parent: QWidget, current: str) -> str | None:
    """The name typed for an edit (None: cancelled), in a box as wide as the name is long,
    within reason and the screen: Qt's own box showed 20 characters of a prompt's title."""
    dialog = QInputDialog(parent)
    dialog.setWindowTitle("Rename edit")
    dialog.setLabelText("Name (empty: the name it had at first):")
    dialog.setTextValue(current)
    metrics = dialog.fontMetrics()
    least, most = (n * metrics.averageCharWidth() for n in RENAME_BOX_CHARS)
    # the text, and room for the margins, the box's frame and the cursor
    width = min(max(least, metrics.horizontalAdvance(current) + 8 * metrics.averageCharWidth()),
                most)
    if (room := available_area(parent)) is not None:
        width = min(width, room.width() * 9 // 10)
    dialog.resize(width, dialog.sizeHint().height())
    try:
        return dialog.textValue() if dialog.exec() == QDialog.DialogCode.Accepted else None
    finally:
        dialog.deleteLater()
