"""Keyboard and screen-reader access: round slider steps, keys kept by the box that has
the focus, the edit stack named to a screen reader and reordered from the keyboard, and
text that is information drawn in readable colours."""

# ruff: noqa: F811 - the editor window's and the themes' fixtures are imported, then named
# as arguments

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from editor.ui.app import init_application
from tests.test_editor_window import (  # noqa: F401 - fixtures used by name
    models,
    settled,
    show_active,
    type_prompt,
    window,
)
from tests.test_theme import _strongest, themed  # noqa: F401 - a fixture used by name


def _presses(widget, key, n: int) -> list[float]:
    """The values after each of `n` presses of `key` on `widget` (a FloatSlider's part),
    with the focus on it."""
    slider = widget.parentWidget()
    widget.setFocus()
    values = []
    for _ in range(n):
        QTest.keyClick(widget, key)
        values.append(slider.value())
    return values


@pytest.fixture
def prompt_panel(qtbot):
    from editor.ui.prompt_panel import PromptPanel

    init_application()
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_beta_steps_evenly_by_round_amounts(prompt_panel):
    # A 400th of β's range (0.001375) rounded to 3 decimals stepped 0.150, 0.152, 0.153,
    # 0.154; the box's hundredth of the range 0.050, 0.056, 0.061.
    beta = prompt_panel.beta
    beta.set_value(0.15)
    assert _presses(beta.slider, Qt.Key.Key_Right, 4) == pytest.approx(
        [0.151, 0.152, 0.153, 0.154], abs=1e-12)
    beta.set_value(0.05)
    assert _presses(beta.box, Qt.Key.Key_Up, 3) == pytest.approx([0.055, 0.06, 0.065],
                                                                 abs=1e-12)
    beta.set_value(0.15)
    assert _presses(beta.slider, Qt.Key.Key_PageUp, 2) == pytest.approx([0.17, 0.19],
                                                                        abs=1e-12)


def test_alpha_keeps_its_steps(prompt_panel):
    alpha = prompt_panel.alpha
    alpha.set_value(0.0)
    assert _presses(alpha.slider, Qt.Key.Key_Right, 3) == pytest.approx([0.05, 0.1, 0.15])
    assert _presses(alpha.slider, Qt.Key.Key_PageUp, 1) == pytest.approx([1.15])
    alpha.set_value(0.0)
    assert _presses(alpha.box, Qt.Key.Key_Up, 2) == pytest.approx([0.2, 0.4])


def _hold(widget, key, repeats: int) -> None:
    """Hold `key` down on `widget`: a press, the keyboard's repeats (a release and a press
    each, marked as repeats), then the release."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QKeyEvent

    def send(kind, repeat):
        QApplication.sendEvent(widget, QKeyEvent(kind, key, Qt.KeyboardModifier.NoModifier,
                                                 "", repeat))

    send(QEvent.Type.KeyPress, False)
    for _ in range(repeats):
        send(QEvent.Type.KeyRelease, True)
        send(QEvent.Type.KeyPress, True)
    send(QEvent.Type.KeyRelease, False)


def test_an_arrow_key_held_on_a_slider_is_one_undo_step(window, qtbot):
    # Each repeat of a held arrow was an undo step of its own (and a full render): a
    # second's hold made 30 steps to undo, where a drag or a wheel turn makes one.
    show_active(window, qtbot)
    type_prompt(window, "face with glasses")
    alpha, steps = window.prompt_panel.alpha, window.document.undo_stack
    for part, key in ((alpha.slider, Qt.Key.Key_Right), (alpha.box, Qt.Key.Key_Down)):
        part.setFocus()
        start, at = alpha.value(), steps.index()
        _hold(part, key, 9)
        assert alpha.value() != start
        assert steps.index() == at + 1, part
        assert window.document.state.draft.strength == alpha.value()
        window.undo_act.trigger()
        assert window.document.state.draft.strength == start
    at = steps.index()
    for _ in range(3):  # pressed and let go: a step each, as before
        QTest.keyClick(alpha.slider, Qt.Key.Key_Left)
    assert steps.index() == at + 3


def test_page_keys_in_the_psi_box_step_psi_not_the_seed(window, qtbot):
    show_active(window, qtbot)
    source = window.document.state.session.source
    box = window.source_panel.psi_box
    box.setFocus()
    QTest.keyClick(box, Qt.Key.Key_PageDown)
    now = window.document.state.session.source
    assert now.seed == source.seed  # the box kept the key
    assert now.psi == pytest.approx(source.psi - 10 * box.singleStep())


# ---------------------------------------------------------------------------- the stack

def _edit(name: str, enabled: bool = True):
    from editor.engine.session import Edit

    return Edit("global", {"neutral": "face", "target": f"face with {name}"}, name=name,
                enabled=enabled)


@pytest.fixture
def stack(qtbot):
    from editor.ui.stack_panel import EditStackPanel

    init_application()
    panel = EditStackPanel()
    qtbot.addWidget(panel)
    panel.resize(320, 400)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_the_stack_and_its_rows_have_names_a_screen_reader_reads(stack, qtbot):
    # Items were empty, titles hand-drawn: a screen reader heard "" for every edit.
    edits = (_edit("Beard"), _edit("Glasses"), _edit("Smile"))
    stack.show_edits(edits, None)
    assert stack.list.accessibleName() == "Edit stack"
    for i, e in enumerate(edits):
        assert stack.list.item(i).text() == e.title
        assert stack.row(e.id).title.accessibleName() == e.title
    renamed = (edits[0], _replace(edits[1], name="Spectacles"), edits[2])
    stack.show_edits(renamed, None)
    assert stack.list.item(1).text() == "Spectacles"
    assert stack.row(edits[1].id).title.accessibleName() == "Spectacles"


def _replace(edit, **changes):
    import dataclasses

    return dataclasses.replace(edit, **changes)


def test_typing_a_letter_in_the_stack_finds_the_edit(stack, qtbot):
    edits = (_edit("Beard"), _edit("Glasses"), _edit("Smile"))
    stack.show_edits(edits, None)
    chosen = []
    stack.selected.connect(chosen.append)
    stack.activateWindow()
    stack.list.setFocus()
    assert QTest.qWaitForWindowActive(stack)
    QTest.keyClick(stack.list, Qt.Key.Key_G, Qt.KeyboardModifier.NoModifier)
    assert stack.list.currentRow() == 1 and chosen == [edits[1].id]


def test_an_items_text_is_not_drawn_under_its_row(stack, qtbot):
    stack.show_edits((_edit("Beard"),), None)
    item = stack.list.item(0)
    stack.list.removeItemWidget(item)  # what the list itself draws under the row
    QTest.qWait(0)
    rect = stack.list.visualItemRect(item)
    image = stack.list.viewport().grab(rect).toImage()
    colours = {image.pixel(x, y) for y in range(image.height()) for x in range(image.width())}
    assert len(colours) == 1


def test_the_prompt_heading_is_named_by_its_text(prompt_panel):
    prompt_panel.show_edit(_edit("Beard"), bound=False)
    assert prompt_panel.heading.accessibleName() == "New prompt"
    prompt_panel.show_edit(_edit("Beard"), bound=True)
    assert prompt_panel.heading.accessibleName() == "Tuning: Beard"


# ------------------------------------------------------------------ readable information

def _readable(widget, role) -> float:
    """The contrast of a widget's text, as drawn, against its palette's `role`."""
    from PySide6.QtGui import QPalette

    widget.repaint()
    return _strongest(widget.grab().toImage(),
                      widget.palette().color(QPalette.ColorGroup.Active, role))


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_updating_line_and_its_warnings_are_readable(prompt_panel, themed, theme):
    # The line was disabled while a new prompt was drawn: its warnings (words the CLIP never
    # learned) showed in the disabled grey, 1.6:1, for as long as the render took.
    from PySide6.QtGui import QPalette

    themed(theme)
    QTest.qWait(0)  # the widgets take the new palette
    prompt_panel.show_updating(["Words this CLIP never learned: zzyzx"])
    line = prompt_panel.channels
    assert line.text().startswith("Updating…") and "never learned" in line.text()
    assert _readable(line, QPalette.ColorRole.Window) >= 4.5


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_switched_off_edits_title_is_readable_and_marked(stack, themed, theme):
    # It was a disabled label: 1.9:1 on the list.
    from PySide6.QtGui import QPalette

    themed(theme)
    QTest.qWait(0)  # the widgets take the new palette
    on, off = _edit("Beard"), _edit("Glasses", enabled=False)
    stack.show_edits((on, off), None)
    on_title, off_title = stack.row(on.id).title, stack.row(off.id).title
    assert _readable(off_title, QPalette.ColorRole.Base) >= 4.5
    assert not stack.row(off.id).enabled_box.isChecked()
    # told apart other than by colour alone
    assert off_title.font().italic() and not on_title.font().italic()
    # selected (to be tuned), it is in the row's text colour: no grey reads on the selection
    stack.show_edits((on, off), off.id)
    QTest.qWait(0)
    highlight = QPalette.ColorRole.Highlight
    assert _readable(off_title, highlight) == pytest.approx(_readable(on_title, highlight),
                                                            rel=0.05)
    stack.show_edits((on, _replace(off, enabled=True)), None)
    assert not off_title.font().italic()


# ---------------------------------------------------------------------- moving an edit

ALT = Qt.KeyboardModifier.AltModifier


def _three_edits(window, qtbot) -> list[str]:
    for target in ("face with glasses", "face with a beard", "face smiling"):
        type_prompt(window, target)
        window.add_draft_to_stack()
    settled(window, qtbot)
    return _order(window)


def _order(window) -> list[str]:
    return [e.id for e in window.document.state.session.edits]


def test_alt_arrows_move_the_edit_under_the_keyboard_one_undo_step_each(window, qtbot):
    # Only the Up/Down buttons moved an edit, and they act on the selected one.
    show_active(window, qtbot)
    a, b, c = _three_edits(window, qtbot)
    panel, steps = window.stack_panel, window.document.undo_stack
    # from a control of b's row (Tab reached it), nothing selected
    panel.row(b).strength.box.setFocus()
    count = steps.count()
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Down, ALT)
    assert _order(window) == [a, c, b] and steps.count() == count + 1
    assert QApplication.focusWidget() is panel.row(b).strength.box  # still on b's row
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Down, ALT)  # at the bottom
    assert _order(window) == [a, c, b] and steps.count() == count + 1
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Up, ALT)
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Up, ALT)
    assert _order(window) == [b, a, c] and steps.count() == count + 3
    window.undo_act.trigger()
    assert _order(window) == [a, b, c]
    # from the list itself: its current edit, which stays current and selected
    panel.list.setCurrentRow(0)
    panel.list.setFocus()
    QTest.keyClick(panel.list, Qt.Key.Key_Down, ALT)
    assert _order(window) == [b, a, c]
    assert QApplication.focusWidget() is panel.list
    assert panel.list.currentRow() == 1 and panel.selected_id() == a


def test_the_shortcut_list_names_the_keys_widgets_handle(window):
    from PySide6.QtGui import QKeySequence

    from editor.ui.shortcuts_dialog import shortcut_rows
    from editor.ui.stack_panel import MOVE_DOWN_KEY, MOVE_UP_KEY

    keys = " | ".join(k for k, _action in shortcut_rows(window))
    native = QKeySequence.SequenceFormat.NativeText
    for listed in (MOVE_UP_KEY.toString(native), MOVE_DOWN_KEY.toString(native),
                   "Enter in the directions list", "Space", "Home in the crop dialog",
                   "+/− in the crop dialog", "Arrows in the crop dialog"):
        assert listed in keys


def _cells_read_whole(table) -> list[str]:
    """The descriptions of a shortcut table that its cells cut (or that lie sideways out of
    view): each must fit its cell, wrapped at the cell's width."""
    from PySide6.QtCore import QRect
    from PySide6.QtWidgets import QStyle

    fm = table.fontMetrics()
    view = table.viewport().width()
    # the item delegate's margins either side of the text
    margins = 2 * (table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None,
                                             table) + 1)
    cut = []
    for row in range(table.rowCount()):
        item = table.item(row, 1)
        cell = table.visualRect(table.indexFromItem(item))
        room = cell.width() - margins
        needed = fm.boundingRect(QRect(0, 0, room, 100_000), int(Qt.TextFlag.TextWordWrap),
                                 item.text())
        if cell.right() >= view or needed.width() > room or needed.height() > cell.height():
            cut.append(item.text())
    return cut


def test_the_shortcut_list_shows_every_description_whole_without_sideways_scrolling(qtbot):
    # 460 px wide, its descriptions ran out of sight behind a sideways scroll bar ("Move
    # the split line (← →), or pan a"), with the "Action" header centred off-screen
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QMainWindow, QTableWidget

    from editor.ui.shortcuts_dialog import show_shortcuts

    init_application()
    main = QMainWindow()
    qtbot.addWidget(main)
    act = QAction("Export…", main)
    act.setShortcut("Ctrl+E")
    main.addAction(act)
    dialog = show_shortcuts(main)
    qtbot.waitExposed(dialog)
    table = dialog.findChild(QTableWidget)
    header = table.horizontalHeader()
    assert header.sectionViewportPosition(1) + header.sectionSize(1) <= header.width()
    assert _cells_read_whole(table) == []
    assert not table.horizontalScrollBar().isVisible()
    # made narrower (a small screen), the descriptions wrap instead of running out of view
    dialog.resize(420, dialog.height())
    qtbot.waitUntil(lambda: table.viewport().width() < 400)
    qtbot.waitUntil(lambda: _cells_read_whole(table) == [])
    assert not table.horizontalScrollBar().isVisible()
    dialog.close()


def test_each_transfer_name_shows_whole_in_a_narrow_directions_panel(qtbot):
    # "Focused (W on the relevant channe": the box cut its names mid-word, without an
    # ellipsis; short names now, the explanation in each one's tooltip
    from PySide6.QtWidgets import QStyle, QStyleOptionComboBox

    from editor.ui.directions_panel import DirectionsPanel

    init_application()
    panel = DirectionsPanel()
    qtbot.addWidget(panel)
    panel.resize(panel.minimumSizeHint())
    panel.show()
    qtbot.waitExposed(panel)
    box = panel.method
    option = QStyleOptionComboBox()
    box.initStyleOption(option)
    field = box.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                       QStyle.SubControl.SC_ComboBoxEditField, box)
    for i in range(box.count()):
        text = box.itemText(i)
        assert box.fontMetrics().horizontalAdvance(text) <= field.width(), text
        tip = box.itemData(i, Qt.ItemDataRole.ToolTipRole)
        assert tip and len(tip) > len(text)  # the longer explanation
    assert [box.itemData(i) for i in range(box.count())] == ["focused", "style", "w"]


def _unnamed_controls(top) -> list[str]:
    """The controls Tab stops at in `top` that a screen reader can name by nothing of
    their own: no accessible name, no text (a button's), no label that is their buddy. (On
    Linux Qt names a combo box by its current item, which says what it holds, not what
    it is for; Windows and macOS name it by these alone.)"""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractSpinBox,
        QComboBox,
        QLabel,
        QScrollBar,
        QWidget,
    )

    buddies = {label.buddy() for label in top.findChildren(QLabel)}
    unnamed = []
    for w in top.findChildren(QWidget):
        if (not w.focusPolicy() & Qt.FocusPolicy.TabFocus or isinstance(w, QScrollBar)
                or isinstance(w.parent(), QAbstractSpinBox | QComboBox)  # their text line
                or w.window() is not top):  # a combo box's list, a completer's
            continue
        text = w.text().replace("&", "").strip() if isinstance(w, QAbstractButton) else ""
        if not (w.accessibleName() or text not in ("", "…") or w in buddies):
            unnamed.append(f"{type(w).__name__} {w.toolTip()[:40]!r}")
    return unnamed


def test_the_crop_frame_and_the_transfer_box_are_named_to_a_screen_reader(qtbot):
    # The crop frame (where the keyboard starts in the crop dialog) and the directions'
    # transfer box (no label beside it) had no name at all.
    import numpy as np

    from editor.engine.session import Session
    from editor.ui.crop_dialog import CropDialog
    from editor.ui.directions_panel import DirectionsPanel
    from editor.ui.export_dialog import ExportDialog

    init_application()
    crop = CropDialog(np.zeros((40, 60, 3), np.uint8), None, 16)
    panel = DirectionsPanel()
    export = ExportDialog(Session(edits=(_edit("Beard"),)), resolution=16)
    for widget in (crop, panel, export):
        qtbot.addWidget(widget)
        assert _unnamed_controls(widget) == [], type(widget).__name__
    assert "Arrows" in crop.view.accessibleDescription()  # and how the keys move it


def test_the_source_panels_buttons_name_the_shortcut_of_their_menu_item(window):
    # "Open image…" said Ctrl+I, "Open latent or recipe…" said nothing of Ctrl+L
    from PySide6.QtWidgets import QPushButton

    actions = {a.text().replace("&", ""): a for a in (window.open_image_act,
                                                       window.open_latent_act)}
    buttons = {b.text(): b for b in window.source_panel.findChildren(QPushButton)}
    for text, action in actions.items():
        keys = action.shortcut().toString()
        assert keys and f"({keys})" in buttons[text].toolTip(), text


def test_an_edits_error_and_the_prompts_report_are_read_with_their_controls(stack,
                                                                          prompt_panel):
    # The error under a stack row and the line under the prompt never take the keyboard:
    # a screen reader's user heard the controls, never what was wrong
    from editor.engine.compose import EditStatus

    edits = (_edit("Beard"), _edit("Glasses"))
    stack.show_edits(edits, None)
    why = "no style channel passes β = 0.9"
    stack.show_status({edits[1].id: EditStatus(error=why)})
    row = stack.row(edits[1].id)
    assert row.enabled_box.accessibleDescription() == why
    assert row.strength.slider.accessibleDescription() == why
    assert stack.list.item(1).data(Qt.ItemDataRole.AccessibleDescriptionRole) == why
    assert not stack.list.item(0).data(Qt.ItemDataRole.AccessibleDescriptionRole)
    stack.show_status({})  # mended: nothing more to hear
    assert row.enabled_box.accessibleDescription() == ""
    assert not stack.list.item(1).data(Qt.ItemDataRole.AccessibleDescriptionRole)

    prompt_panel.show_edit(edits[0], bound=False)
    prompt_panel.show_status(EditStatus(error=why))
    assert why in prompt_panel.target.accessibleDescription()
    prompt_panel.show_status(EditStatus(n_channels=12, beta=0.2))
    assert "12" in prompt_panel.target.accessibleDescription()
