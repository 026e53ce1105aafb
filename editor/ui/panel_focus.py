"""Moving the keyboard focus between the window's areas (the canvas and the panels), as
F6 does in most desktop programs: Tab walks every control of every panel in turn, and a
panel behind another's tab is reached only by going round the whole window.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDockWidget, QWidget


def in_view(dock: QDockWidget) -> bool:
    """Shown and in front: a dock behind another's tab keeps isVisible() true, but the
    window disables its content while it is out of view (MainWindow._dock)."""
    content = dock.widget()
    return dock.isVisible() and content is not None and content.isEnabled()


def first_stop(area: QWidget) -> QWidget | None:
    """The first control inside `area` that Tab would stop at (None when it has none)."""
    if _takes_tab(area):
        return area
    w = area.nextInFocusChain()
    while w is not area:
        if area.isAncestorOf(w) and _takes_tab(w):
            return w
        w = w.nextInFocusChain()
    return None


def _takes_tab(w: QWidget) -> bool:
    return bool(w.focusPolicy() & Qt.FocusPolicy.TabFocus) and w.isVisible() and w.isEnabled()


def focus_area(area: QWidget) -> bool:
    """Give the keyboard focus to the first control in `area`; False if it has none."""
    stop = first_stop(area)
    if stop is None:
        return False
    stop.setFocus(Qt.FocusReason.ShortcutFocusReason)
    if stop.window() is not QApplication.activeWindow():
        # a floating panel is a window of its own: the focus set in it waited there while
        # the keyboard stayed where it was (F6 went nowhere, from or to the panel)
        stop.window().activateWindow()
    return True


def focus_next_area(areas: Sequence[QWidget], step: int = 1) -> QWidget | None:
    """Move the focus to the next (step 1) or previous (-1) of `areas` that can take it,
    counted from the one holding the focus now (before the first when none does); the
    area reached, or None."""
    focused = QApplication.focusWidget()
    current = next((i for i, a in enumerate(areas)
                    if focused is not None and (a is focused or a.isAncestorOf(focused))),
                   -1 if step > 0 else 0)
    for k in range(1, len(areas) + 1):
        area = areas[(current + step * k) % len(areas)]
        if focus_area(area):
            return area
    return None
