"""Light and dark themes: Qt's Fusion style with one palette each, so every widget (and the
canvas background) follows the choice consistently on every platform."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleFactory

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
    # a disabled slider's fill: grey, as Fusion's light palette has it, not the blue of one
    # that can be moved
    QPalette.ColorRole.Highlight: "#62656c",
}


# Fusion draws a check box or radio button frame in the window colour darkened by 40 %,
# which is close to the base colour the indicator is filled with: 1.4:1 on the dark palette
# (an unchecked box on a list row, whose background is the base too, did not show at all)
# and 1.7:1 on the light one. Indicators are drawn as if the window were these greys, which
# puts their frames above the 3:1 that a control's outline needs.
_INDICATOR_WINDOW = {True: QColor("#b0b3b9"), False: QColor("#9a9da3")}  # by is_dark
_INDICATORS = (QStyle.PrimitiveElement.PE_IndicatorCheckBox,
               QStyle.PrimitiveElement.PE_IndicatorRadioButton,
               QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck)


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


# an amber that reads as a warning yet keeps 4.5:1 against the window and the base
_WARNING = {True: QColor("#e0a030"), False: QColor("#8a5500")}  # by is_dark


def warning_colour(palette: QPalette) -> QColor:
    """The colour for warning text (a notice, not an error) on `palette`'s window."""
    return QColor(_WARNING[is_dark(palette)])


class AtelierStyle(QProxyStyle):
    """Fusion, with check and radio indicators whose frames stand out from the base."""

    def drawPrimitive(self, element, option, painter, widget=None):  # noqa: N802 (Qt API)
        if element in _INDICATORS:
            option = type(option)(option)  # a copy: the caller's option stays as it was
            palette = QPalette(option.palette)
            palette.setColor(QPalette.ColorRole.Window, _INDICATOR_WINDOW[is_dark(palette)])
            option.palette = palette
        super().drawPrimitive(element, option, painter, widget)


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
    # the application owns the style (setStyle takes it); a Python reference keeps the
    # wrapper's drawPrimitive override alive as long as the style is in use
    app._atelier_style = AtelierStyle(QStyleFactory.create("Fusion"))
    app.setStyle(app._atelier_style)
    if name == "dark":
        app.setPalette(_palette(_DARK, _DARK_DISABLED))
    elif name == "light":
        app.setPalette(app.style().standardPalette())
    else:
        app.setPalette(app._atelier_default_palette)
    return name
