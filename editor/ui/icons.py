"""Icons from qtawesome's bundled fonts, with an empty icon if a name or the font is missing
(buttons then show their text), so a packaging slip never breaks the window."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon


@cache
def icon(name: str, color: str | None = None) -> QIcon:
    try:
        import qtawesome

        return qtawesome.icon(name, color=color) if color else qtawesome.icon(name)
    except Exception:  # noqa: BLE001 - qtawesome raises plain Exception for unknown names
        return QIcon()
