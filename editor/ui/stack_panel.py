"""The edit stack: every edit with its strength slider, enable toggle, name, order, delete.

Rows are rebuilt only when edits are added, removed or reordered; otherwise values are
updated in place, so a slider being dragged is never replaced under the hand. Selecting a
row asks the window to load that edit into the prompt panel.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
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
from .sliders import FloatSlider


class EditRow(QWidget):
    def __init__(self, edit: Edit, panel: EditStackPanel):
        super().__init__()
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

    def show_edit(self, edit: Edit) -> None:
        self.enabled_box.blockSignals(True)
        self.enabled_box.setChecked(edit.enabled)
        self.enabled_box.blockSignals(False)
        self.title.setText(edit.title)
        self.title.setEnabled(edit.enabled)
        self.strength.set_value(edit.strength)
        self.enabled_box.setAccessibleName(f"Apply {edit.title}")
        self.strength.set_accessible_name(f"Strength of {edit.title}")

    def show_status(self, status: EditStatus | None) -> bool:
        """Show the edit's error, if any; True when the message changed (its row may need
        another height)."""
        error = (status.error if status is not None else None) or ""
        if error == self._error:
            return False
        self._error = error
        self.status.setText(f"⚠ {error}" if error else "")
        self.status.setVisible(bool(error))
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
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self._rows: dict[str, EditRow] = {}
        self._order: tuple[str, ...] = ()
        self._update_buttons()

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
        if order != self._order:
            self._rebuild(edits)
        else:
            for e in edits:
                self._rows[e.id].show_edit(e)
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

    def _rebuild(self, edits: tuple[Edit, ...]) -> None:
        focus = QApplication.focusWidget()
        # a row's control with the focus goes with its row: keep the focus in the list
        # (Qt gave it to the canvas, away from the stack the user works in)
        keep_focus = focus is not None and self.list.isAncestorOf(focus)
        self.list.blockSignals(True)
        self.list.clear()
        self._rows = {}
        for e in edits:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, e.id)
            row = EditRow(e, self)
            item.setSizeHint(row.sizeHint())
            self.list.addItem(item)
            self.list.setItemWidget(item, row)
            self._rows[e.id] = row
        self._order = tuple(e.id for e in edits)
        self._fit_rows()
        tab_through_rows(self.list, [w for row in self._rows.values()
                                     for w in (row.enabled_box, *row.strength.focus_chain())])
        self.list.blockSignals(False)
        if keep_focus:
            self.list.setFocus(Qt.FocusReason.OtherFocusReason)

    def _select(self, edit_id: str | None) -> None:
        self.list.blockSignals(True)
        if edit_id is None or edit_id not in self._rows:
            self.list.setCurrentRow(-1)
            self.list.clearSelection()
        else:
            self.list.setCurrentRow(self._order.index(edit_id))
        self.list.blockSignals(False)

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
        self.has_selection.emit(i >= 0)

    # ----------------------------------------------------------------- user input
    def _on_selection(self) -> None:
        self._update_buttons()
        self.selected.emit(self.selected_id())

    def _move(self, step: int) -> None:
        sel = self.selected_id()
        if sel in self._order:
            self.moved.emit(sel, self._order.index(sel) + step)

    def _key_target(self) -> str | None:
        """The edit Del and F2 act on: the row whose control has the keyboard focus (Tab
        reached it; its focus frame shows it), else the selected one."""
        focus = QApplication.focusWidget()
        if focus is not None and self.list.isAncestorOf(focus):
            for edit_id, row in self._rows.items():
                if row.isAncestorOf(focus):
                    return edit_id
        return self.selected_id()

    def delete_selected(self) -> None:
        sel = self._key_target()
        if sel is not None:
            self.removed.emit(sel)

    def rename_selected(self) -> None:
        sel = self._key_target()
        if sel is None:
            return
        current = self._rows[sel].title.text()
        name, ok = QInputDialog.getText(
            self, "Rename edit", "Name (empty: the prompt, as at first):", text=current)
        # an empty name clears the custom one, so the edit's own title ("a → b") returns
        if ok and name.strip() != current:
            self.renamed.emit(sel, name.strip())
