"""Contrast found by an accessibility audit: error text, the selection, control edges, the
focused row, secondary text and the split view's labels read in both themes."""

from __future__ import annotations

import re
import time

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QDoubleSpinBox, QLineEdit, QListWidget, QSlider

from editor.engine.discovered import DirectionEntry
from editor.engine.jobs import FAILED, Job
from editor.ui.canvas import Canvas
from editor.ui.directions_panel import DirectionsPanel
from editor.ui.jobs_panel import JobRow
from editor.ui.theme import apply_theme
from tests.test_theme import _contrast, _strongest, horizontal_slider

THEMES = ["light", "dark"]


@pytest.fixture
def themed(qapp):
    yield lambda name: apply_theme(name, qapp)
    apply_theme("system", qapp)


def _colour(pal: QPalette, role: QPalette.ColorRole) -> QColor:
    return pal.color(role)


@pytest.mark.parametrize("theme", THEMES)
def test_a_failed_jobs_message_reads_on_the_window(qtbot, themed, theme):
    # a fixed #c0392b was 2.5:1 on the dark window
    themed("light" if theme == "dark" else "dark")  # the row follows a theme change too
    job = Job("Download FFHQ", lambda token: None)
    job.state, job.error, job.ended_at = FAILED, "ConnectionError: no answer", time.monotonic()
    row = JobRow(job)
    qtbot.addWidget(row)
    row.show_end()
    themed(theme)
    qtbot.wait(1)  # the palette change reaches the row through posted events
    label = row.detail_label
    label.resize(label.sizeHint())
    window = _colour(label.palette(), QPalette.ColorRole.Window)
    strongest = _strongest(label.grab().toImage(), window)
    assert strongest >= 4.5, f"{theme}: the error text is at {strongest:.2f}:1"


@pytest.mark.parametrize("theme", THEMES)
def test_text_on_a_selected_row_reads(qapp, themed, theme):
    # the selection's own text, and the text of a row made of widgets (the edit stack's
    # title and "⚠ error" line), which keep the window text colour
    themed(theme)
    pal = qapp.palette()
    highlight = pal.color(QPalette.ColorRole.Highlight)
    for role in (QPalette.ColorRole.HighlightedText, QPalette.ColorRole.WindowText,
                 QPalette.ColorRole.Text):
        ratio = _contrast(pal.color(role), highlight)
        assert ratio >= 4.5, f"{theme}: {role.name} on the selection is at {ratio:.2f}:1"


def _fill(slider: QSlider) -> list[QColor]:
    """The colours of a slider's filled part: saturated pixels left of the handle."""
    image = slider.grab().toImage()
    return [QColor(image.pixel(x, y)) for y in range(image.height())
            for x in range(4, image.width() // 3)
            if QColor(image.pixel(x, y)).hsvSaturation() > 60]


@pytest.mark.parametrize("theme", THEMES)
def test_a_sliders_fill_shows_on_a_selected_row_and_off_it(qtbot, themed, theme):
    # Fusion fills a slider in the selection colour: on a selected row it vanished
    themed(theme)
    slider = horizontal_slider(qtbot, value=80, width=240)
    pal = slider.palette()
    fill = _fill(slider)
    assert fill
    for role in (QPalette.ColorRole.Highlight, QPalette.ColorRole.Window,
                 QPalette.ColorRole.Base):
        # its body, whatever its edge (Fusion draws it darker)
        ratio = max(_contrast(c, pal.color(role)) for c in fill)
        assert ratio >= 3.0, f"{theme}: the fill against {role.name} is at {ratio:.2f}:1"


def _edge(widget) -> QColor:
    """The colour of a field's left edge, half way down."""
    image = widget.grab().toImage()
    return QColor(image.pixel(0, image.height() // 2))


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("on_a_list_row", [False, True])
@pytest.mark.parametrize("kind", [QLineEdit, QDoubleSpinBox])
def test_a_fields_edge_shows(qtbot, themed, theme, kind, on_a_list_row):
    # the dark theme's edges were the field's own fill (1.2:1 on the window, 1.0:1 on a
    # list row); the light one's 2:1
    themed(theme)
    field = kind()
    qtbot.addWidget(field)
    pal = field.palette()
    if on_a_list_row:  # the edit stack's number boxes sit on the list's base
        pal.setColor(QPalette.ColorRole.Window, pal.color(QPalette.ColorRole.Base))
        field.setPalette(pal)
    field.resize(120, field.sizeHint().height())
    edge = _edge(field)
    for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
        ratio = _contrast(edge, pal.color(role))
        assert ratio >= 3.0, f"{theme}: the edge against {role.name} is at {ratio:.2f}:1"


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("selected", [False, True])
def test_the_current_row_of_a_focused_list_is_framed(qtbot, themed, theme, selected):
    # Fusion marked it with a faint tint and frame: 1.1:1 and 1.7:1 on white
    themed(theme)
    view = QListWidget()
    qtbot.addWidget(view)
    view.addItems(["one", "two", "three"])
    view.resize(200, 120)
    view.show()
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow)
    view.setFocus(Qt.FocusReason.TabFocusReason)
    view.setCurrentRow(1)
    view.item(1).setSelected(selected)
    assert view.hasFocus()
    pal = view.palette()
    background = pal.color(QPalette.ColorRole.Highlight if selected else QPalette.ColorRole.Base)
    rect = view.visualItemRect(view.item(1))
    image = view.viewport().grab().toImage()
    top = rect.top() + 1  # the frame's top line, clear of the row's text
    strongest = _strongest(image.copy(rect.left() + 20, top, rect.width() - 40, 1), background)
    assert strongest >= 3.0, f"{theme}: the current row's frame is at {strongest:.2f}:1"


def _entries() -> list[DirectionEntry]:
    return [DirectionEntry(f"k{i}", label, confidence, (0.0,))
            for i, (label, confidence) in enumerate((("smile", 0.81), ("beard", 0.55)))]


@pytest.mark.parametrize("theme", THEMES)
def test_a_directions_confidence_reads_and_follows_the_selection(qtbot, themed, theme):
    # a fixed grey was 4:1 on white; on the selection no grey reads
    themed(theme)
    panel = DirectionsPanel()
    qtbot.addWidget(panel)
    panel.set_directions(_entries())
    assert panel.list.accessibleName() == "Discovered directions"
    label = panel.list.itemWidget(panel.list.item(0)).findChild(type(panel.info))
    colour = re.search(r"color:\s*(#[0-9a-fA-F]{6})", label.text())
    assert colour and "81%" in label.text()
    pal = panel.palette()
    for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
        ratio = _contrast(QColor(colour.group(1)), pal.color(role))
        assert ratio >= 4.5, f"{theme}: the confidence on {role.name} is at {ratio:.2f}:1"
    panel.list.setCurrentRow(0)  # selects it: the row's text colour, which reads on it
    assert "color:" not in label.text() and "81%" in label.text()


@pytest.mark.parametrize("theme", THEMES)
def test_a_directions_confidence_listed_while_out_of_view_reads_on_its_return(
        qtbot, themed, theme):
    # The window disables a panel behind another's tab: titles listed then took the
    # disabled grey (1.6:1 light, 2.6:1 dark) and kept it once the tab was chosen.
    themed(theme)
    panel = DirectionsPanel()
    qtbot.addWidget(panel)
    panel.setEnabled(False)
    panel.set_directions(_entries())
    panel.setEnabled(True)
    label = panel.list.itemWidget(panel.list.item(0)).findChild(type(panel.info))
    colour = re.search(r"color:\s*(#[0-9a-fA-F]{6})", label.text())
    ratio = _contrast(QColor(colour.group(1)), panel.palette().color(QPalette.ColorRole.Base))
    assert ratio >= 4.5, f"{theme}: {ratio:.2f}:1"


@pytest.mark.parametrize("picture", ["white", "black"])
def test_the_split_views_labels_read_on_any_picture(qtbot, picture):
    # plain white text was 1.1:1 on a white picture
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(300, 300)
    image = QImage(100, 100, QImage.Format.Format_RGB32)
    image.fill(QColor(picture))
    canvas.set_image(image, image)
    canvas.set_split(True)
    shot = canvas.grab().toImage()
    target = canvas.image_rect().toRect()
    for corner in (target.topLeft() + QPoint(4, 2),
                   target.topRight() + QPoint(-60, 2)):  # "before", "after"
        label = shot.copy(corner.x(), corner.y(), 56, 22)
        assert _strongest(label, QColor(picture)) >= 4.5
        # its text on its backing, not only the backing on the picture
        backing = QColor(label.pixel(label.width() // 2, 2))
        assert _strongest(label, backing) >= 4.5


def test_the_canvas_describes_what_it_draws(qtbot):
    canvas = Canvas()
    qtbot.addWidget(canvas)
    assert canvas.accessibleDescription() == "No model loaded"
    canvas.set_message("This picture cannot be drawn:\nout of memory")
    assert canvas.accessibleDescription() == "This picture cannot be drawn:\nout of memory"
    canvas.set_image(QImage(8, 8, QImage.Format.Format_RGB32))
    assert "edit stack applied" in canvas.accessibleDescription()  # what it shows
