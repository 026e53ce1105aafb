"""The edit stack panel on its own: which rows a new order of edits keeps, and that the
rows it keeps are the same widgets, in the list's order and Tab order."""

from __future__ import annotations

import itertools
import random

import pytest
from PySide6.QtCore import Qt

from editor.engine.session import Edit
from editor.ui.stack_panel import EditStackPanel, rows_kept


def _common_run_length(old: tuple[str, ...], new: tuple[str, ...]) -> int:
    """The longest common subsequence's length (dynamic programming)."""
    table = [[0] * (len(new) + 1) for _ in range(len(old) + 1)]
    for i, a in enumerate(old):
        for j, b in enumerate(new):
            table[i + 1][j + 1] = (table[i][j] + 1 if a == b
                                   else max(table[i][j + 1], table[i + 1][j]))
    return table[-1][-1]


def _in_order(kept: set[str], order: tuple[str, ...]) -> list[str]:
    return [eid for eid in order if eid in kept]


@pytest.mark.parametrize("seed", range(40))
def test_the_rows_kept_are_the_most_that_keep_their_order(seed):
    rng = random.Random(seed)
    ids = [f"e{i}" for i in range(rng.randint(0, 12))]
    old = tuple(rng.sample(ids, rng.randint(0, len(ids))))
    new = tuple(rng.sample(ids, rng.randint(0, len(ids))))
    kept = rows_kept(old, new)
    assert kept <= set(old) & set(new)
    assert _in_order(kept, old) == _in_order(kept, new)  # they need not move
    assert len(kept) == _common_run_length(old, new)  # and no fewer than could stay


def test_every_order_of_three_keeps_what_it_can():
    old = ("a", "b", "c")
    for new in itertools.permutations(old):
        kept = rows_kept(old, new)
        assert len(kept) == _common_run_length(old, new)
    assert rows_kept(old, ("c", "a", "b")) == {"a", "b"}  # c moved to the top: c's row only
    assert rows_kept(old, ("a", "b", "c", "d")) == {"a", "b", "c"}
    assert rows_kept(old, ()) == set() and rows_kept((), old) == set()


def _edit(i: int, strength: float = 1.0) -> Edit:
    return Edit(kind="global", params={"neutral": "face", "target": f"face with {i}"},
                strength=strength, id=f"e{i}")


def _tab_chain(panel: EditStackPanel) -> list:
    """The rows' controls in the order Tab reaches them from the list (once round Qt's
    focus chain, which also holds the widgets that take no focus)."""
    controls = {w for row in panel._rows.values() for w in row.focus_chain()}
    chain, widget = [], panel.list.nextInFocusChain()
    while widget is not panel.list:
        if widget in controls:
            chain.append(widget)
        widget = widget.nextInFocusChain()
    return chain


def _check_shows(panel: EditStackPanel, edits: tuple[Edit, ...]) -> None:
    ids = [e.id for e in edits]
    listed = [panel.list.item(i).data(Qt.ItemDataRole.UserRole)
              for i in range(panel.list.count())]
    widgets = [panel.list.itemWidget(panel.list.item(i)) for i in range(panel.list.count())]
    assert listed == ids and [w.edit_id for w in widgets] == ids
    assert widgets == [panel.row(eid) for eid in ids]
    assert [panel.row(e.id).strength.value() for e in edits] == [e.strength for e in edits]
    assert _tab_chain(panel) == [w for eid in ids for w in panel.row(eid).focus_chain()]


def test_adding_moving_and_removing_an_edit_keeps_the_other_rows(qtbot):
    # Every change of order made every row again: adding the 20th edit rebuilt 19 rows
    # (about 60 ms; 40 edits 140 ms), and a row's slider was replaced under the hand
    panel = EditStackPanel()
    qtbot.addWidget(panel)
    panel.show()
    edits = tuple(_edit(i) for i in range(5))
    panel.show_edits(edits, None)
    before = {e.id: panel.row(e.id) for e in edits}
    steps = [edits + (_edit(5),),                                 # added at the end
             (edits[3], *edits[:3], edits[4], _edit(5)),          # one moved to the top
             (edits[3], edits[0], edits[2], edits[4], _edit(5)),  # one removed
             (edits[3], edits[0], edits[2], _edit(4, 2.5), _edit(5))]  # a strength changed
    for order in steps:
        panel.show_edits(order, None)
        _check_shows(panel, order)
    assert panel.row("e0") is before["e0"] and panel.row("e2") is before["e2"]
    assert panel.row("e4") is before["e4"]  # its strength shown in place
    assert panel.row("e3") is not before["e3"]  # the moved row is made anew


def test_any_sequence_of_orders_shows_each_in_full(qtbot):
    panel = EditStackPanel()
    qtbot.addWidget(panel)
    panel.show()
    rng = random.Random(3)
    pool = [_edit(i) for i in range(14)]
    for _ in range(30):
        order = tuple(rng.sample(pool, rng.randint(0, len(pool))))
        panel.show_edits(order, order[0].id if order else None)
        _check_shows(panel, order)
        assert panel.selected_id() == (order[0].id if order else None)


def test_the_rename_box_is_as_wide_as_a_long_name_within_reason(qtbot):
    # Qt's own box showed about 20 characters of "a cartoon face → a cartoon face with…"
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QDialog, QInputDialog

    from editor.ui.stack_panel import RENAME_BOX_CHARS, ask_edit_name

    parent = EditStackPanel()
    qtbot.addWidget(parent)
    seen = []

    def answer(text: str | None):
        box = QApplication.activeModalWidget()
        assert isinstance(box, QInputDialog)
        seen.append((box.width(), box.textValue(), box.fontMetrics()))
        if text is None:
            box.reject()
        else:
            box.setTextValue(text)
            box.done(QDialog.DialogCode.Accepted)

    long_name = "a cartoon face → a cartoon face with blonde hair and round sunglasses"
    QTimer.singleShot(0, lambda: answer("shorter"))
    assert ask_edit_name(parent, long_name) == "shorter"
    width, shown, metrics = seen[-1]
    assert shown == long_name
    assert width >= metrics.horizontalAdvance(long_name)
    QTimer.singleShot(0, lambda: answer(None))
    assert ask_edit_name(parent, "x" * 5000) is None  # cancelled
    width, _, metrics = seen[-1]
    assert width <= RENAME_BOX_CHARS[1] * metrics.averageCharWidth()
