"""Themes: check and radio indicators stay visible in every palette, icons follow a theme
change, and disabled controls look disabled."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPalette, QPixmap
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QCheckBox, QRadioButton, QSlider, QToolButton

from editor.ui.icons import icon
from editor.ui.sliders import FloatSlider
from editor.ui.theme import FILL_ORIGIN, apply_theme, warning_colour


def _luminance(c: QColor) -> float:
    def channel(v: int) -> float:
        v = v / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(c.red()) + 0.7152 * channel(c.green()) + 0.0722 * channel(c.blue())


def _contrast(a: QColor, b: QColor) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _strongest(image: QImage, against: QColor) -> float:
    """The contrast of the pixel that stands out most from `against`."""
    return max(_contrast(QColor(image.pixel(x, y)), against)
               for y in range(image.height()) for x in range(image.width()))


def _inks(image: QImage) -> set[int]:
    """The colours of an icon's fully opaque pixels (the rest is the antialiased edge)."""
    return {image.pixel(x, y) for y in range(image.height()) for x in range(image.width())
            if QColor.fromRgba(image.pixel(x, y)).alpha() == 255}


def _ink(mode: QIcon.Mode) -> QColor:
    """The one colour an icon's glyph is drawn in."""
    inks = _inks(icon("mdi6.undo").pixmap(32, mode).toImage())
    assert len(inks) == 1
    return QColor.fromRgba(inks.pop())


def _window(qapp) -> QColor:
    return qapp.palette().color(QPalette.ColorRole.Window)


@pytest.fixture
def themed(qapp):
    yield lambda name: apply_theme(name, qapp)
    apply_theme("system", qapp)


@pytest.mark.parametrize("theme", ["dark", "light", "system"])
@pytest.mark.parametrize("kind", [QCheckBox, QRadioButton])
def test_an_unchecked_indicator_shows_on_a_list_background(qtbot, themed, theme, kind):
    # the edit stack puts its 'enabled' boxes on list rows, whose background is Base
    themed(theme)
    box = kind()
    qtbot.addWidget(box)
    pal = box.palette()
    base = pal.color(QPalette.ColorRole.Base)
    pal.setColor(QPalette.ColorRole.Window, base)
    box.setPalette(pal)
    box.setAutoFillBackground(True)
    box.resize(box.sizeHint())
    strongest = _strongest(box.grab().toImage(), base)
    assert strongest >= 3.0, f"{theme}: the indicator's frame is at {strongest:.2f}:1"


def test_icons_take_the_colours_of_the_theme_in_use(qapp, themed):
    # the window makes its icons before it applies the saved theme, and the theme can change
    # later: icons drawn in the colours of the palette they were made under were black on the
    # dark theme (1.6:1)
    icon("mdi6.undo")
    for theme in ("light", "dark", "light", "dark"):
        themed(theme)
        ink = _ink(QIcon.Mode.Normal)
        assert ink == qapp.palette().color(QPalette.ColorRole.ButtonText)
        assert _contrast(ink, _window(qapp)) >= 4.5, theme


@pytest.mark.parametrize("theme", ["dark", "light", "system"])
def test_a_disabled_icon_is_fainter_than_an_enabled_one(qapp, themed, theme):
    # a disabled Undo drew lighter than an enabled one on the dark theme: the cue reversed
    themed(theme)
    disabled = _ink(QIcon.Mode.Disabled)
    assert disabled == qapp.palette().color(QPalette.ColorGroup.Disabled,
                                            QPalette.ColorRole.ButtonText)
    assert _contrast(disabled, _window(qapp)) < _contrast(_ink(QIcon.Mode.Normal), _window(qapp))


def test_a_button_shows_its_icon_in_the_theme_chosen_after_it_was_painted(qapp, qtbot, themed):
    # a QIcon is shared and keyed by one cacheKey: a pixmap kept from the first paint
    # would keep the old colours
    themed("light")
    button = QToolButton()
    qtbot.addWidget(button)
    button.setIcon(icon("mdi6.undo"))
    with qtbot.waitExposed(button):
        button.show()
    button.grab()
    themed("dark")
    qapp.processEvents()  # the new palette reaches a widget through posted events
    background = button.palette().color(QPalette.ColorRole.Button)
    assert _strongest(button.grab().toImage(), background) >= 4.5


def test_an_icon_copied_and_changed_still_draws(qapp):
    # adding a pixmap to a copy makes Qt clone the icon's engine, which a Python engine must
    # survive
    copy = QIcon(icon("mdi6.undo"))
    copy.addPixmap(QPixmap(8, 8))
    assert _inks(copy.pixmap(32).toImage())


def test_an_unknown_icon_is_empty_so_buttons_show_their_text():
    assert icon("mdi6.no-such-icon").isNull()
    assert not icon("mdi6.undo").isNull()


def _most_saturated(image: QImage) -> int:
    return max(QColor(image.pixel(x, y)).hsvSaturation()
               for y in range(image.height()) for x in range(image.width()))


def horizontal_slider(qtbot, value: int, width: int) -> QSlider:
    """A 0-100 slider at `value`, `width` px wide, in the theme applied."""
    slider = QSlider(Qt.Orientation.Horizontal)
    qtbot.addWidget(slider)
    slider.setRange(0, 100)
    slider.setValue(value)
    slider.resize(width, slider.sizeHint().height())
    return slider


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_a_disabled_slider_has_no_accent_fill(qtbot, themed, theme):
    # Auto β disables the β slider; a blue fill said it could still be moved
    themed(theme)
    slider = horizontal_slider(qtbot, value=60, width=200)
    assert _most_saturated(slider.grab().toImage()) > 100  # the accent, while enabled
    slider.setEnabled(False)
    assert _most_saturated(slider.grab().toImage()) < 60


def _accent_columns(slider: QSlider) -> list[int]:
    """The columns where the slider shows its fill (the accent: the only saturated
    colour a slider has)."""
    image = slider.grab().toImage()
    return sorted({x for y in range(image.height()) for x in range(image.width())
                   if QColor(image.pixel(x, y)).hsvSaturation() > 100})


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_a_strength_slider_fills_from_zero(qtbot, themed, theme):
    # α runs from -10 to 10 and Fusion filled it from the left end: at 0 it looked half
    # full, and -4 looked like more than 3
    themed(theme)
    sliders = {}
    for value in (0.0, 3.0, -4.0):
        sliders[value] = FloatSlider(-10, 10, value)
        qtbot.addWidget(sliders[value])
        sliders[value].resize(360, sliders[value].sizeHint().height())
        sliders[value].show()
    middle = sliders[0.0].slider.width() / 2
    assert _accent_columns(sliders[0.0].slider) == []
    right = _accent_columns(sliders[3.0].slider)
    assert abs(right[0] - middle) <= 6 and right[-1] > middle + 20
    left = _accent_columns(sliders[-4.0].slider)
    assert abs(left[-1] - middle) <= 6 and left[0] < middle - 30
    assert middle - left[0] > right[-1] - middle  # -4 is the longer fill
    beta = FloatSlider(0.05, 0.6, 0.3)  # all positive: filled from its left end as before
    qtbot.addWidget(beta)
    assert beta.slider.property(FILL_ORIGIN) is None


@pytest.mark.parametrize("theme", ["dark", "light", "system"])
def test_the_warning_colour_reads_on_the_window_and_the_base(qapp, themed, theme):
    themed(theme)
    pal = qapp.palette()
    for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
        assert _contrast(warning_colour(pal), pal.color(role)) >= 4.5, role


def test_the_prompt_panels_notice_takes_the_themes_warning_colour(qtbot, themed):
    # One orange for both themes read at 2.9:1 on the light one, and it stayed as it was
    # when the theme changed.
    from PySide6.QtWidgets import QApplication

    from editor.ui.prompt_panel import PromptPanel

    themed("light")
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.set_text_edits_available(False, "Prompt edits need a CLIP model: <none> chosen")
    light = warning_colour(QApplication.palette()).name()
    assert light in panel.notice.text() and "&lt;none&gt;" in panel.notice.text()
    themed("dark")
    dark = warning_colour(QApplication.palette()).name()
    assert dark != light
    qtbot.waitUntil(lambda: dark in panel.notice.text(), timeout=2000)


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_placeholders_and_the_auto_beta_value_are_readable(qtbot, themed, qapp, theme):
    # the light placeholder (what an empty Neutral box means) was 4.0:1; the β auto-β
    # chose was drawn disabled, 1.6:1 in the light theme
    from editor.engine.session import Edit
    from editor.ui.prompt_panel import PromptPanel

    themed(theme)
    pal = qapp.palette()
    ratio = _contrast(pal.color(QPalette.ColorRole.PlaceholderText),  # in a text box
                      pal.color(QPalette.ColorRole.Base))
    assert ratio >= 4.5, f"{theme}: placeholder at {ratio:.2f}:1"
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.show_edit(Edit("global", {"neutral": "face", "target": "a beard",
                                    "auto_beta": True}), bound=False)
    box = panel.beta.box
    assert box.isEnabled() and box.isReadOnly() and not panel.beta.editable
    ratio = _contrast(box.palette().color(QPalette.ColorGroup.Active,
                                          QPalette.ColorRole.Text),
                      box.palette().color(QPalette.ColorRole.Base))
    assert ratio >= 4.5
    before = box.value()
    box.setFocus()
    QTest.keyClick(box, Qt.Key.Key_Up)
    assert box.value() == before  # read-only: the engine's value is not stepped


def test_dialog_buttons_carry_no_icons_whatever_the_platform_style_says(qtbot):
    # under X11 OK and Cancel had the platform's tick and cross beside Export and Use
    # without one (offscreen shows none either way: a base style that asks for them
    # stands in for X11's)
    from PySide6.QtWidgets import QProxyStyle, QStyle

    from editor.ui.theme import AtelierStyle

    hint = QStyle.StyleHint.SH_DialogButtonBox_ButtonsHaveIcons

    class WithIcons(QProxyStyle):
        def styleHint(self, h, option=None, widget=None, data=None):  # noqa: N802
            return 1 if h == hint else super().styleHint(h, option, widget, data)

    base = WithIcons()
    assert base.styleHint(hint) == 1
    style = AtelierStyle(base)
    assert style.styleHint(hint) == 0


def test_an_icon_asked_for_at_no_size_draws_nothing(qtbot):
    # painting on the null pixmap printed QPainter warnings on stderr as jobs started
    from PySide6.QtCore import QSize, qInstallMessageHandler
    from PySide6.QtGui import QIcon

    from editor.ui.icons import _PaletteIconEngine

    said = []
    previous = qInstallMessageHandler(lambda _kind, _context, text: said.append(text))
    try:
        pixmap = _PaletteIconEngine("mdi6.undo").pixmap(QSize(0, 0), QIcon.Mode.Normal,
                                                         QIcon.State.Off)
    finally:
        qInstallMessageHandler(previous)
    assert pixmap.isNull() and said == []


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_the_tab_in_front_is_marked_in_the_accent(qtbot, themed, qapp, theme):
    # the Edit stack and Discovered directions tabs differed by a shade: in the dark theme
    # nobody could tell which one was in front (helper-108's screenshots)
    from PySide6.QtWidgets import QTabBar

    from editor.ui.theme import accent_colour

    themed(theme)
    bar = QTabBar()
    bar.setShape(QTabBar.Shape.RoundedSouth)  # as the docks' tabs sit
    qtbot.addWidget(bar)
    bar.addTab("Edit stack")
    bar.addTab("Discovered directions")
    bar.resize(bar.sizeHint())
    image = bar.grab().toImage()
    accent = accent_colour(qapp.palette()).rgb()

    def accent_pixels(index: int) -> int:
        r = bar.tabRect(index)
        return sum(image.pixel(x, y) == accent for y in range(r.top(), r.bottom() + 1)
                   for x in range(r.left(), r.right() + 1))

    front, behind = accent_pixels(bar.currentIndex()), accent_pixels(1 - bar.currentIndex())
    assert front >= 3 * (bar.tabRect(bar.currentIndex()).width() - 8) and behind == 0


@pytest.mark.parametrize("theme", ["dark", "light"])
@pytest.mark.parametrize("button", ["qt_dockwidget_floatbutton", "qt_dockwidget_closebutton"])
def test_a_panels_float_and_close_buttons_show(qtbot, themed, qapp, theme, button):
    # Fusion draws them from fixed dark grey pictures: 1.6:1 on the dark theme's title bar,
    # where nobody could find how to close or float the Source, Prompt or Jobs panel
    from PySide6.QtWidgets import QAbstractButton, QDockWidget, QLabel, QMainWindow

    themed(theme)
    window = QMainWindow()
    qtbot.addWidget(window)
    dock = QDockWidget("Prompt")
    dock.setWidget(QLabel("a cartoon face"))
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    with qtbot.waitExposed(window):
        window.show()
    strongest = _strongest(window.findChild(QAbstractButton, button).grab().toImage(),
                           _window(qapp))
    assert strongest >= 3.0, f"{theme}: the button's mark is at {strongest:.2f}:1"
