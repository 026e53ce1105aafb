"""Light and dark themes: Qt's Fusion style with one palette each, so every widget (and the
canvas background) follows the choice consistently on every platform."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

THEMES = ("system", "light", "dark")

_DARK = {
    QPalette.ColorRole.Window: "#2b2d31",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1f2023",
    QPalette.ColorRole.AlternateBase: "#2f3136",
    QPalette.ColorRole.ToolTipBase: "#3a3c42",
    QPalette.ColorRole.ToolTipText: "#f0f0f0",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#35373c",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Highlight: "#4a8fe7",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#6aa7ff",
    QPalette.ColorRole.PlaceholderText: "#8a8d93",
}
_DARK_DISABLED = {
    QPalette.ColorRole.WindowText: "#7d8087",
    QPalette.ColorRole.Text: "#7d8087",
    QPalette.ColorRole.ButtonText: "#7d8087",
}


def _palette(colours: dict, disabled: dict) -> QPalette:
    pal = QPalette()
    for role, hex_colour in colours.items():
        pal.setColor(role, QColor(hex_colour))
    for role, hex_colour in disabled.items():
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(hex_colour))
    return pal


def apply_theme(name: str, app: QApplication | None = None) -> str:
    """Apply "system", "light" or "dark"; returns the name applied."""
    app = app or QApplication.instance()
    if name not in THEMES:
        name = "system"
    if not hasattr(app, "_atelier_default_palette"):
        app._atelier_default_palette = QPalette(app.palette())  # what "system" returns to
    app.setStyle(QStyleFactory.create("Fusion"))
    if name == "dark":
        app.setPalette(_palette(_DARK, _DARK_DISABLED))
    elif name == "light":
        app.setPalette(app.style().standardPalette())
    else:
        app.setPalette(app._atelier_default_palette)
    return name
