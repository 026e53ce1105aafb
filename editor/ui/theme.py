"""Light and dark themes: Qt's Fusion style with one palette each, so every widget (and the
canvas background) follows the choice consistently on every platform."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QProxyStyle,
    QStyle,
    QStyleFactory,
    QStyleOptionSlider,
    QTabBar,
)

from .icons import icon

THEMES = ("system", "light", "dark")
# A slider's dynamic property: the position its fill starts from (a strength slider's 0),
# where it is not the minimum
FILL_ORIGIN = "atelier_fill_origin"

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
    # a selected row keeps its own text colour (the edit stack's rows are widgets), so
    # the selection is dark enough for #e6e6e6 as well as white: 4.7:1 (#4a8fe7 was 2.6:1)
    QPalette.ColorRole.Highlight: "#2a64b0",
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


# Fusion's light selection (#308cc6) held white at 3.7:1; this one holds white and the
# black of a selected row's widgets at 4.6:1
_LIGHT_HIGHLIGHT = "#3977c1"
# Fusion's light placeholder is black at half opacity: 4.0:1 on white. The Neutral box's
# placeholder says what an empty box means, so it is text to read: 5.3:1 on white.
_LIGHT_PLACEHOLDER = "#6b6b6b"

# Fusion draws a check box or radio button frame, and a text or number box's edge, in the
# window colour darkened by 40 %, which is close to the base colour they are filled with:
# 1.2:1 on the dark palette (a number box or an unchecked box on a list row, whose
# background is the base too, did not show at all) and 2:1 on the light one. They are
# drawn as if the window were these greys, which puts their edges above the 3:1 that a
# control's outline needs against the window and the base.
_OUTLINE_WINDOW = {True: QColor("#b0b3b9"), False: QColor("#9a9da3")}  # by is_dark
_INDICATORS = (QStyle.PrimitiveElement.PE_IndicatorCheckBox,
               QStyle.PrimitiveElement.PE_IndicatorRadioButton,
               QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck)

# Fusion fills a slider and marks a focused field in the selection colour; a slider on a
# selected row then vanished into it. This blue stands 3:1 or more apart from the window
# and the base, and the fill Fusion draws from it (lighter) from the selection too.
_ACCENT = {True: QColor("#66b0ff"), False: QColor("#04163a")}  # by is_dark


# A panel's float and close buttons: Fusion's are fixed dark grey pictures (2.1:1 on the
# dark theme's title bar); these glyphs take the theme's button text colour when drawn
_TITLE_BAR_ICONS = {QStyle.StandardPixmap.SP_TitleBarNormalButton: "mdi6.window-restore",
                    QStyle.StandardPixmap.SP_TitleBarCloseButton: "mdi6.close"}


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


# an amber that reads as a warning yet keeps 4.5:1 against the window and the base
_WARNING = {True: QColor("#e0a030"), False: QColor("#8a5500")}  # by is_dark


def warning_colour(palette: QPalette) -> QColor:
    """The colour for warning text (a notice, not an error) on `palette`'s window."""
    return QColor(_WARNING[is_dark(palette)])


# a red that keeps 4.5:1 against the window and the base (#c0392b was 2.5:1 on the dark one)
_ERROR = {True: QColor("#ff8a80"), False: QColor("#c0392b")}  # by is_dark


def error_colour(palette: QPalette) -> QColor:
    """The colour for error text on `palette`'s window."""
    return QColor(_ERROR[is_dark(palette)])


def secondary_text_colour(palette: QPalette) -> QColor:
    """Text that says less (a confidence beside a title): the text colour a third of the
    way to the base, 5:1 or more against the window and the base in both themes. From the
    active colours: a panel out of view is disabled, and its text is kept for its return."""
    active = QPalette.ColorGroup.Active
    text = palette.color(active, QPalette.ColorRole.Text)
    base = palette.color(active, QPalette.ColorRole.Base)
    return QColor(*(round(t + (b - t) / 3) for t, b in
                    zip(text.getRgb()[:3], base.getRgb()[:3], strict=True)))


def accent_colour(palette: QPalette) -> QColor:
    """The colour of a slider's fill and of focus marks: 3:1 or more against `palette`'s
    window and base."""
    return QColor(_ACCENT[is_dark(palette)])


# Changed palettes by (the original's cacheKey, what changed): Fusion caches a spin box's
# pixmap by its palette's cacheKey, which a fresh copy on every paint would change.
_RECOLOURED: dict[tuple, QPalette] = {}


def _recoloured(option, outline: bool, accent: bool):
    """A copy of `option` whose palette draws edges in the outline grey (`outline`) and
    fills and focus marks in the accent (`accent`); the caller's option stays as it was."""
    # (the cacheKey leaves out the colour group in use: disabled or not)
    key = (option.palette.cacheKey(), option.palette.currentColorGroup(), outline, accent)
    if key not in _RECOLOURED:
        if len(_RECOLOURED) > 256:  # palettes of old themes and widgets
            _RECOLOURED.clear()
        palette = QPalette(option.palette)
        dark = is_dark(palette)
        if outline:
            palette.setColor(QPalette.ColorRole.Window, _OUTLINE_WINDOW[dark])
        if accent:  # the disabled group keeps its grey: a disabled slider shows no accent
            for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
                palette.setColor(group, QPalette.ColorRole.Highlight, _ACCENT[dark])
        _RECOLOURED[key] = palette
    option = type(option)(option)
    option.palette = _RECOLOURED[key]
    return option


class AtelierStyle(QProxyStyle):
    """Fusion, with control edges, slider fills and focus marks that stand out from the
    window, the base and the selection."""

    def styleHint(self, hint, option=None, widget=None, returnData=None):  # noqa: N802, N803
        # OK and Cancel had the style's tick and cross beside Export and Use without any
        if hint == QStyle.StyleHint.SH_DialogButtonBox_ButtonsHaveIcons:
            return 0
        return super().styleHint(hint, option, widget, returnData)

    def standardIcon(self, standard_icon, option=None, widget=None):  # noqa: N802 (Qt API)
        name = _TITLE_BAR_ICONS.get(standard_icon)
        if name is not None and not (glyph := icon(name)).isNull():
            return glyph
        return super().standardIcon(standard_icon, option, widget)

    def drawPrimitive(self, element, option, painter, widget=None):  # noqa: N802 (Qt API)
        if element == QStyle.PrimitiveElement.PE_FrameFocusRect and \
                isinstance(widget, QAbstractItemView):
            # Fusion's mark of a list's current row was a faint tint and frame (1.1:1 and
            # 1.7:1): a 2 px frame in the accent, or on a selected row in its text colour
            selected = option.state & QStyle.StateFlag.State_Selected
            colour = option.palette.color(QPalette.ColorRole.HighlightedText) if selected \
                else accent_colour(option.palette)
            painter.save()
            painter.setPen(QPen(colour, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(option.rect).adjusted(1, 1, -1, -1))
            painter.restore()
            return
        # (Qt's enums are IntEnums: compare an element with elements only)
        if element in _INDICATORS:  # its focus mark in the accent too (2.2:1 on dark)
            option = _recoloured(option, outline=True, accent=True)
        elif element == QStyle.PrimitiveElement.PE_FrameLineEdit:  # a text box's edge
            option = _recoloured(option, outline=True, accent=True)
        super().drawPrimitive(element, option, painter, widget)

    def drawControl(self, element, option, painter, widget=None):  # noqa: N802 (Qt API)
        super().drawControl(element, option, painter, widget)
        if element == QStyle.ControlElement.CE_TabBarTabShape and \
                option.state & QStyle.StateFlag.State_Selected:
            # the tab in front (Edit stack or Discovered directions) differed from the
            # other by a shade (dark theme: hardly at all): a bar in the accent marks it
            self._mark_selected_tab(option, painter)

    @staticmethod
    def _mark_selected_tab(option, painter) -> None:
        """A 3 px accent bar along the tab's outer edge (away from its page)."""
        r, bar, shape = QRectF(option.rect), 3.0, option.shape
        if shape in (QTabBar.Shape.RoundedSouth, QTabBar.Shape.TriangularSouth):
            mark = QRectF(r.left() + 2, r.bottom() - bar, r.width() - 4, bar)
        elif shape in (QTabBar.Shape.RoundedWest, QTabBar.Shape.TriangularWest):
            mark = QRectF(r.left(), r.top() + 2, bar, r.height() - 4)
        elif shape in (QTabBar.Shape.RoundedEast, QTabBar.Shape.TriangularEast):
            mark = QRectF(r.right() - bar, r.top() + 2, bar, r.height() - 4)
        else:
            mark = QRectF(r.left() + 2, r.top(), r.width() - 4, bar)
        painter.save()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(accent_colour(option.palette))
        painter.drawRect(mark)
        painter.restore()

    def drawComplexControl(self, control, option, painter, widget=None):  # noqa: N802
        if control == QStyle.ComplexControl.CC_SpinBox:
            option = _recoloured(option, outline=True, accent=True)
        elif control == QStyle.ComplexControl.CC_Slider:
            option = _recoloured(option, outline=False, accent=True)
            origin = widget.property(FILL_ORIGIN) if widget is not None else None
            if isinstance(origin, int) and option.orientation == Qt.Orientation.Horizontal:
                self._draw_slider_from(origin, option, painter, widget)
                return
        super().drawComplexControl(control, option, painter, widget)

    def _draw_slider_from(self, origin: int, option, painter, widget) -> None:
        """A slider filled from `origin` to its handle: α runs from -10 to 10, and Fusion's
        fill from the left end showed a slider at 0 half full. The groove and tick marks
        are drawn with an invisible fill, then the fill, then the handle."""
        slider = QStyle.ComplexControl.CC_Slider
        groove = QStyleOptionSlider(option)
        groove.subControls = option.subControls & (QStyle.SubControl.SC_SliderGroove
                                                   | QStyle.SubControl.SC_SliderTickmarks)
        fill = option.palette.color(QPalette.ColorRole.Highlight)
        groove.palette = QPalette(option.palette)
        groove.palette.setColor(groove.palette.currentColorGroup(),
                                QPalette.ColorRole.Highlight, Qt.GlobalColor.transparent)
        super().drawComplexControl(slider, groove, painter, widget)
        if option.subControls & QStyle.SubControl.SC_SliderGroove:
            rect = self.subControlRect(slider, option, QStyle.SubControl.SC_SliderGroove,
                                       widget)
            start, end = sorted((self._handle_centre(option, origin, widget),
                                 self._handle_centre(option, option.sliderPosition, widget)))
            height = 6.0  # Fusion's fill: its groove with the edges, across the middle
            painter.save()
            painter.setRenderHint(painter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRoundedRect(QRectF(start, rect.center().y() - height / 2 + 1,
                                           end - start, height), 2.0, 2.0)
            painter.restore()
        handle = QStyleOptionSlider(option)
        handle.subControls = option.subControls & QStyle.SubControl.SC_SliderHandle
        super().drawComplexControl(slider, handle, painter, widget)

    def _handle_centre(self, option, position: int, widget) -> float:
        at = QStyleOptionSlider(option)
        at.sliderPosition = at.sliderValue = position
        return QRectF(self.subControlRect(QStyle.ComplexControl.CC_Slider, at,
                                          QStyle.SubControl.SC_SliderHandle, widget)).center().x()


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
        light = app.style().standardPalette()
        for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
            light.setColor(group, QPalette.ColorRole.Highlight, QColor(_LIGHT_HIGHLIGHT))
            light.setColor(group, QPalette.ColorRole.PlaceholderText,
                           QColor(_LIGHT_PLACEHOLDER))
        app.setPalette(light)
    else:
        app.setPalette(app._atelier_default_palette)
    return name
