"""A one-line label that shortens its text with "…" to the width it is given.

A plain QLabel asks for its whole text's width, so one long edit name would widen a dock
and push every control beside it out of view. This one asks for little width, draws what
fits, and shows the whole text as a tooltip when it is cut. Being drawn by hand, it tells
a screen reader its whole text as its accessible name, as static text (see
`_accessible_as_text`).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAccessible, QPainter, QPalette
from PySide6.QtWidgets import QAccessibleWidget, QSizePolicy, QWidget

from .theme import secondary_text_colour

MIN_CHARS = 6  # enough to recognise a name ("Beard…")


def _accessible_as_text(_class_name: str, obj) -> QAccessibleWidget | None:
    """A screen reader's view of an ElidedLabel: static text, as a QLabel's. A plain
    QWidget is a "client" area, read as a pane, not as the text it shows (the status bar's
    model field, a QLabel until it was elided, was the one field not read as text)."""
    if isinstance(obj, ElidedLabel):
        return QAccessibleWidget(obj, QAccessible.Role.StaticText)
    return None


_factory_installed = False


class ElidedLabel(QWidget):
    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight):
        """`mode`: where the text is cut (in the middle for a file's name, whose end says
        what it is)."""
        super().__init__(parent)
        global _factory_installed
        if not _factory_installed:  # once a process: Qt asks each factory for every widget
            QAccessible.installFactory(_accessible_as_text)
            _factory_installed = True
        self._mode = mode
        self._text = ""
        self._tip = ""  # a tooltip of its own (set_tip)
        self._dimmed = False
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        self._text = text
        self.setAccessibleName(text)
        self._update_tooltip()
        self.updateGeometry()
        self.update()

    def set_tip(self, tip: str) -> None:
        """A tooltip of its own: shown alone while the whole text shows, after it when cut."""
        self._tip = tip
        self._update_tooltip()

    def set_dimmed(self, dimmed: bool) -> None:
        """Draw the text in the theme's secondary colour (readable, unlike a disabled
        label's grey at 1.9:1), taken from the palette when painted, so it follows a change
        of theme."""
        self._dimmed = dimmed
        self.update()

    def elided_text(self) -> str:
        return self.fontMetrics().elidedText(self._text, self._mode,
                                             max(self.contentsRect().width(), 0))

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt naming
        fm = self.fontMetrics()
        return self._with_margins(QSize(fm.horizontalAdvance(self._text) + 2, fm.height()))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt naming
        fm = self.fontMetrics()
        return self._with_margins(QSize(fm.horizontalAdvance("x" * MIN_CHARS), fm.height()))

    def _with_margins(self, size: QSize) -> QSize:
        return size.grownBy(self.contentsMargins())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        self._update_tooltip()

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt naming (font, enabled state)
        super().changeEvent(event)
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt naming
        painter = QPainter(self)
        group = QPalette.ColorGroup.Active if self.isEnabled() else QPalette.ColorGroup.Disabled
        painter.setPen(secondary_text_colour(self.palette()) if self._dimmed
                       and self.isEnabled() else self.palette().color(group,
                                                                      self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(Qt.AlignmentFlag.AlignLeft
                                                  | Qt.AlignmentFlag.AlignVCenter),
                         self.elided_text())

    def _update_tooltip(self) -> None:
        cut = self._text if self.elided_text() != self._text else ""
        self.setToolTip("\n".join(t for t in (cut, self._tip) if t))
