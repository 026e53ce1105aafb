"""The room a window has on its screen, for first sizes that fit a small or scaled one."""

from __future__ import annotations

from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget


def available_area(widget: QWidget | None) -> QRect | None:
    """The available area (less task bars) of `widget`'s screen, else the primary one;
    None where no screen says."""
    screen = (widget.screen() if widget is not None else None) or \
        QGuiApplication.primaryScreen()
    area = screen.availableGeometry() if screen is not None else None
    return None if area is None or area.isEmpty() else area
