"""Icons from qtawesome's bundled fonts, with an empty icon if a name or the font is missing
(buttons then show their text), so a packaging slip never breaks the window.

An icon takes its colours from the application palette each time it is drawn, so it follows
a theme change (qtawesome's own icons keep the colours of the palette they were made under:
dark glyphs on the dark theme)."""

from __future__ import annotations

from functools import cache

import shiboken6
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QIcon, QIconEngine, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication

# a mode's colour: the group and role that text on a button of that mode is drawn in
_MODE_COLOUR = {
    QIcon.Mode.Normal: (QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText),
    QIcon.Mode.Active: (QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText),
    QIcon.Mode.Disabled: (QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText),
    QIcon.Mode.Selected: (QPalette.ColorGroup.Active, QPalette.ColorRole.HighlightedText),
}

_clones: list[QIconEngine] = []  # see _PaletteIconEngine.clone


def _mode_colour(mode: QIcon.Mode) -> str:
    """The colour an icon in `mode` is drawn in under the current application palette."""
    group, role = _MODE_COLOUR[mode]
    return QApplication.palette().color(group, role).name()


class _PaletteIconEngine(QIconEngine):
    """Draws a qtawesome glyph in the palette's colour for the mode, looked up at paint time."""

    def __init__(self, name: str):
        super().__init__()
        self._name = name

    def paint(self, painter, rect, mode, state):  # Qt API
        import qtawesome

        # qtawesome caches one icon per name and colour, so this costs a lookup
        glyph = qtawesome.icon(self._name, color=_mode_colour(mode))
        glyph.paint(painter, rect, Qt.AlignmentFlag.AlignCenter, QIcon.Mode.Normal, state)

    def pixmap(self, size, mode, state):  # Qt API
        if size.isEmpty():  # (a null pixmap: painting on it printed QPainter warnings)
            return QPixmap()
        # drawn afresh on each call: a pixmap kept from an earlier call would keep its colour
        pm = QPixmap(size)
        pm.fill(Qt.GlobalColor.transparent)  # QIconEngine's own pixmap() leaves it unfilled
        painter = QPainter(pm)
        self.paint(painter, QRect(QPoint(0, 0), size), mode, state)
        painter.end()
        return pm

    def clone(self):  # Qt API: a QIcon copied and then changed (addPixmap) clones its engine
        # Qt owns the clone, but PySide would free an engine made here once this returns;
        # keeping a reference until Qt has deleted it avoids a crash
        _clones[:] = [e for e in _clones if shiboken6.isValid(e)]
        engine = _PaletteIconEngine(self._name)
        _clones.append(engine)
        return engine


@cache
def icon(name: str) -> QIcon:
    # one QIcon per name, shared by every action and button that shows it
    try:
        import qtawesome

        qtawesome.icon(name)  # raises for an unknown name or a font that did not load
    except Exception:  # noqa: BLE001 - qtawesome raises plain Exception for unknown names
        return QIcon()
    return QIcon(_PaletteIconEngine(name))
