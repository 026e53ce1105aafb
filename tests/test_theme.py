"""Themes: check and radio indicators stay visible in every palette."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QCheckBox, QRadioButton

from editor.ui.theme import apply_theme


def _luminance(c: QColor) -> float:
    def channel(v: int) -> float:
        v = v / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(c.red()) + 0.7152 * channel(c.green()) + 0.0722 * channel(c.blue())


def _contrast(a: QColor, b: QColor) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


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
    image = box.grab().toImage()
    strongest = max(_contrast(QColor(image.pixel(x, y)), base)
                    for y in range(image.height()) for x in range(image.width()))
    assert strongest >= 3.0, f"{theme}: the indicator's frame is at {strongest:.2f}:1"
