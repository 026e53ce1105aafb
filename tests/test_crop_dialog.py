"""The crop dialog offscreen: the default square, mouse and keyboard editing, the preview,
remembered boxes, and the box feeding image_io.crop."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt, QTimer
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QWidget

from editor.core.image_io import center_crop_square, crop
from editor.ui.app import init_application
from editor.ui.crop_dialog import (
    MAX_REMEMBERED,
    PREVIEW_SIDE,
    CropDialog,
    choose_crop,
    crop_key,
    remember_box,
    remembered_box,
)

NO_MOD = Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture(autouse=True)
def settings(tmp_path):
    """QSettings in a fresh folder of this test's, never the user's."""
    init_application()
    ini = QSettings.Format.IniFormat
    QSettings.setDefaultFormat(ini)
    QSettings.setPath(ini, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    return QSettings()


def _image(w: int, h: int) -> np.ndarray:
    """Every pixel different, so a crop's content shows where it came from."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x % 256, y % 256, (x * 7 + y * 13) % 256], axis=-1).astype(np.uint8)


@pytest.fixture
def make_dialog(qtbot):
    def make(w=200, h=100, key=None, target_size=64):
        dialog = CropDialog(_image(w, h), key=key, target_size=target_size)
        qtbot.addWidget(dialog)
        # a view of 2x the image plus its 8 px margin: image pixel (x, y) is widget pixel
        # (8 + 2x, 8 + 2y), so the drags below are exact
        dialog.view.setFixedSize(2 * w + 16, 2 * h + 16)
        dialog.show()
        qtbot.waitExposed(dialog)
        assert dialog.view.image_rect().topLeft() == QPointF(8, 8)
        return dialog
    return make


def _at(x: float, y: float) -> QPoint:
    """Widget position of image pixel (x, y) in a dialog from make_dialog."""
    return QPoint(round(8 + 2 * x), round(8 + 2 * y))


def _drag(view, start: QPoint, *path: QPoint) -> None:
    QTest.mousePress(view, LEFT, NO_MOD, start)
    for pos in path:
        QTest.mouseMove(view, pos)
    QTest.mouseRelease(view, LEFT, NO_MOD, path[-1])


@pytest.mark.parametrize("w, h, box", [
    (200, 100, (50, 0, 150, 100)),   # landscape
    (100, 200, (0, 50, 100, 150)),   # portrait
    (40, 30, (5, 0, 35, 30)),        # small
    (64, 64, (0, 0, 64, 64)),        # square: all of it
])
def test_default_is_the_centred_largest_square(make_dialog, w, h, box):
    d = make_dialog(w, h)
    assert d.box() == box
    assert np.array_equal(crop(_image(w, h), d.box()), center_crop_square(_image(w, h)))


def test_dragging_inside_moves_and_is_clamped(make_dialog):
    d = make_dialog()  # 200 x 100, box (50, 0, 150, 100)
    _drag(d.view, _at(100, 50), _at(90, 50), _at(80, 50))
    assert d.box() == (30, 0, 130, 100)
    _drag(d.view, _at(100, 50), _at(400, 90))  # far past the right edge
    assert d.box() == (100, 0, 200, 100)
    _drag(d.view, _at(150, 50), _at(-300, -300))
    assert d.box() == (0, 0, 100, 100)


def test_pressing_outside_brings_the_frame_there(make_dialog):
    d = make_dialog()
    d.view.set_box((0, 0, 40, 40))
    _drag(d.view, _at(150, 60), _at(160, 60))
    assert d.box() == (140, 40, 180, 80)  # centred on the press, then dragged along


def test_corner_drag_keeps_square_and_clamps(make_dialog):
    d = make_dialog()
    d.view.set_box((60, 20, 100, 60))
    _drag(d.view, _at(100, 60), _at(130, 70))  # the larger pull wins
    assert d.box() == (60, 20, 130, 90)
    _drag(d.view, _at(130, 90), _at(190, 150))  # stops at the bottom edge
    assert d.box() == (60, 20, 140, 100)
    _drag(d.view, _at(60, 20), _at(-50, 30))  # top-left: bottom-right stays, top edge stops
    assert d.box() == (40, 0, 140, 100)
    _drag(d.view, _at(40, 0), _at(139, 99))  # collapsed past the anchor: the smallest square
    assert d.box() == (124, 84, 140, 100)


def test_wheel_resizes_about_the_centre(make_dialog):
    d = make_dialog()

    def wheel(notches: int) -> None:
        pos = QPointF(_at(100, 50))
        event = QWheelEvent(pos, d.view.mapToGlobal(pos), QPoint(), QPoint(0, 120 * notches),
                            Qt.MouseButton.NoButton, NO_MOD, Qt.ScrollPhase.NoScrollPhase,
                            False)
        QApplication.sendEvent(d.view, event)

    wheel(1)
    assert d.box() == (55, 5, 145, 95)  # 10 % tighter, same centre
    wheel(-5)
    assert d.box() == (50, 0, 150, 100)  # no bigger than the short side


def test_keyboard_nudges_resizes_and_resets(make_dialog):
    d = make_dialog()
    d.view.set_box((60, 20, 100, 60))
    assert d.focusWidget() is d.view and d.view.nudge_step() == 1
    QTest.keyClick(d.view, Qt.Key.Key_Right)
    assert d.box() == (61, 20, 101, 60)
    QTest.keyClick(d.view, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert d.box() == (61, 30, 101, 70)
    for _ in range(5):
        QTest.keyClick(d.view, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert d.box() == (61, 60, 101, 100)  # clamped at the bottom
    QTest.keyClick(d.view, Qt.Key.Key_Minus)
    assert d.box() == (62, 61, 100, 99)
    QTest.keyClick(d.view, Qt.Key.Key_Home)
    assert d.box() == (50, 0, 150, 100)
    d.view.set_box((0, 0, 20, 20))
    d.centre_button.click()
    assert d.box() == (50, 0, 150, 100)


def test_enter_accepts_and_escape_cancels(make_dialog):
    d = make_dialog()
    d.centre_button.setFocus()  # even from the reset button, Enter means OK
    QTest.keyClick(d, Qt.Key.Key_Return)
    assert d.result() == QDialog.DialogCode.Accepted and d.box() == (50, 0, 150, 100)
    d = make_dialog()
    QTest.keyClick(d.view, Qt.Key.Key_Escape)
    assert d.result() == QDialog.DialogCode.Rejected and not d.isVisible()



def _tab(d: QDialog, backwards: bool = False) -> None:
    """One Tab (or Shift+Tab) pressed where the focus is, as a user would."""
    if backwards:
        QTest.keyClick(d.focusWidget(), Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    else:
        QTest.keyClick(d.focusWidget(), Qt.Key.Key_Tab)


@pytest.mark.parametrize("tabs", [
    ["Tab"] * 4,                           # to Cancel and on round to the view
    ["Tab", "Tab", "Shift", "Shift"],      # to OK and back
])
def test_enter_in_the_view_accepts_after_the_focus_went_round_the_buttons(make_dialog,
                                                                          tabs):
    # The OK button was made the default before it belonged to the dialog: Enter in the
    # view then pressed whichever button had the focus last (Cancel: the crop was lost), or
    # none at all.
    d = make_dialog()
    d.activateWindow()
    assert QTest.qWaitForWindowActive(d)
    assert d.focusWidget() is d.view
    for key in tabs:
        _tab(d, backwards=key == "Shift")
    assert d.focusWidget() is d.view
    QTest.keyClick(d.view, Qt.Key.Key_Return)
    assert d.result() == QDialog.DialogCode.Accepted and not d.isVisible()


def test_the_key_help_is_readable_and_names_home(make_dialog):
    # It was a disabled label: the palette's disabled grey, 1.6:1 on the window.
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QLabel

    from tests.test_theme import _contrast

    d = make_dialog()
    label, = (w for w in d.findChildren(QLabel) if "Arrows nudge" in w.text())
    assert "Home" in label.text() and "centred" in label.text()
    group = QPalette.ColorGroup.Active if label.isEnabled() else QPalette.ColorGroup.Disabled
    ink = label.palette().color(group, label.foregroundRole())
    assert _contrast(ink, label.palette().color(QPalette.ColorRole.Window)) >= 4.5


def test_set_box_squares_and_clamps(make_dialog):
    d = make_dialog()
    d.view.set_box((10, 10, 70, 40))  # the shorter side, same centre
    assert d.box() == (25, 10, 55, 40)
    d.view.set_box((190, -20, 290, 80))
    assert d.box() == (100, 0, 200, 100)
    d.view.set_box((5, 5, 6, 6))
    assert d.box() == (0, 0, 16, 16)  # the smallest square


def test_box_feeds_image_io_crop(make_dialog):
    d = make_dialog()
    d.view.set_box((30, 10, 100, 80))
    out = crop(_image(200, 100), d.box())
    assert out.shape == (70, 70, 3)
    assert np.array_equal(out, _image(200, 100)[10:80, 30:100])


def test_preview_is_at_the_generator_resolution(make_dialog):
    d = make_dialog(40, 30, target_size=64)
    assert d.preview_image().size().toTuple() == (64, 64)
    assert d.preview.pixmap().size().toTuple() == (256, 256)  # 4x, sharp pixels
    assert "enlarged 2.1× for the generator" in d.size_label.text()
    d = make_dialog(target_size=1024)
    assert d.preview_image().size().toTuple() == (PREVIEW_SIDE, PREVIEW_SIDE)


_PREVIEW_ON_A_SCALED_SCREEN = """
import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication
from editor.ui.crop_dialog import CropDialog
app = QApplication([])
rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
dialog = CropDialog(rgb, key=None, target_size=64)
dialog.show()
app.processEvents()
shot = dialog.preview.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
rows = np.frombuffer(shot.constBits(), np.uint8).reshape(shot.height(), shot.bytesPerLine())
row = rows[shot.height() // 2, :3 * shot.width()].reshape(-1, 3).astype(int)
edges = np.flatnonzero(np.any(row[1:] != row[:-1], axis=1))
print(sorted(set(np.diff(edges).tolist())))  # the widths of the generator's pixels
"""


@pytest.mark.parametrize("scale, width", [(1.5, 6), (2, 8)])
def test_the_preview_keeps_sharp_pixels_on_a_hidpi_screen(scale, width):
    # At QT_SCALE_FACTOR 1.5 or 2 the label smoothed its 256 px pixmap up to the screen's
    # 384 or 512 pixels: the 64 px generator's pixels came out blurred (runs of 1 px
    # between them). Each is now exactly 256 / 64 * scale screen pixels wide.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _PREVIEW_ON_A_SCALED_SCREEN],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                               "QT_SCALE_FACTOR": str(scale)},
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == f"[{width}]"


def test_large_image_uses_a_proxy_but_boxes_stay_in_full_pixels(qtbot):
    d = CropDialog(_image(3000, 2000), target_size=256)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    assert d.view.proxy.width() < 3000
    assert d.box() == (500, 0, 2500, 2000)
    assert d.view.nudge_step() > 1  # a press moves the frame visibly
    d.view.set_box((10, 10, 30, 30))  # tiny: previewed from the full image
    expected = _image(3000, 2000)[10:30, 10:30]
    got = d.preview_image().scaled(20, 20)  # back to its pixels, nearest
    ptr = got.convertToFormat(got.Format.Format_RGB888)
    arr = np.array(ptr.constBits()).reshape(20, ptr.bytesPerLine())[:, :60].reshape(20, 20, 3)
    assert np.abs(arr.astype(int) - expected).mean() < 4


def test_remembered_box_is_restored_for_the_same_key_only(make_dialog):
    d = make_dialog(key="a.jpg|1|2")
    d.view.set_box((10, 20, 70, 80))
    d.accept()
    assert make_dialog(key="a.jpg|1|2").box() == (10, 20, 70, 80)
    assert make_dialog(key="b.jpg|1|2").box() == (50, 0, 150, 100)
    d = make_dialog(key="b.jpg|1|2")
    d.view.set_box((0, 0, 30, 30))
    d.reject()  # not remembered
    assert make_dialog(key="b.jpg|1|2").box() == (50, 0, 150, 100)


def test_remembered_boxes_are_bounded_and_survive_junk(settings):
    for i in range(MAX_REMEMBERED + 5):
        remember_box(f"file{i}", (i, 0, i + 10, 10))
    assert remembered_box("file0") is None  # the oldest forgotten
    assert remembered_box(f"file{MAX_REMEMBERED + 4}") == (MAX_REMEMBERED + 4, 0,
                                                           MAX_REMEMBERED + 14, 10)
    remember_box("file5", (1, 2, 3, 4))  # used again: newest
    assert remembered_box("file5") == (1, 2, 3, 4)
    settings.setValue("crop/boxes", "not json")
    assert remembered_box("file5") is None


def test_a_remembered_box_too_large_for_any_picture_is_forgotten(make_dialog, settings):
    # a hand-edited 400-digit number: the crop dialog raised OverflowError as it opened
    huge = "1" + "0" * 400
    settings.setValue("crop/boxes", f'{{"a.jpg|1|2": [0, 0, {huge}, {huge}]}}')
    assert remembered_box("a.jpg|1|2") is None
    assert make_dialog(key="a.jpg|1|2").box() == (50, 0, 150, 100)


def test_choose_crop_runs_modally(qtbot):
    rgb = _image(120, 80)

    def answer(accept: bool) -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, CropDialog)
        dialog.view.set_box((0, 0, 50, 50))
        dialog.accept() if accept else dialog.reject()

    QTimer.singleShot(0, lambda: answer(False))
    assert choose_crop(None, rgb, "k", 64) is None
    QTimer.singleShot(0, lambda: answer(True))
    assert choose_crop(None, rgb, "k", 64) == (0, 0, 50, 50)
    assert remembered_box("k") == (0, 0, 50, 50)


def test_crop_key_changes_with_the_file(tmp_path):
    path = tmp_path / "face.png"
    path.write_bytes(b"x")
    key = crop_key(path)
    assert key == crop_key(str(path)) and str(path.resolve()) in key
    os.utime(path, ns=(0, 10**9))
    assert crop_key(path) != key


def _wheel(view, delta: int) -> None:
    pos = QPointF(_at(100, 50))
    QApplication.sendEvent(view, QWheelEvent(
        pos, view.mapToGlobal(pos), QPoint(), QPoint(0, delta), Qt.MouseButton.NoButton,
        NO_MOD, Qt.ScrollPhase.NoScrollPhase, False))


def test_a_touchpads_small_steps_resize_as_much_as_a_wheels_notch(make_dialog):
    # Each small event used to move at least a pixel: 60 events of 2 units took a
    # 100 px crop to 40 px where one 120-unit notch takes it to 90.
    notch, touchpad = make_dialog(), make_dialog()
    _wheel(notch.view, 120)
    for _ in range(60):
        _wheel(touchpad.view, 2)
    assert notch.box() == touchpad.box() == (55, 5, 145, 95)
    for _ in range(60):
        _wheel(touchpad.view, -2)
    assert touchpad.box() == (50, 0, 150, 100)


def test_plus_typed_with_shift_resizes_as_much_as_minus(make_dialog):
    d = make_dialog()
    d.view.set_box((60, 20, 100, 60))
    QTest.keyClick(d.view, Qt.Key.Key_Plus, Qt.KeyboardModifier.ShiftModifier)  # US "+"
    assert d.box() == (59, 19, 101, 61)
    QTest.keyClick(d.view, Qt.Key.Key_Minus)
    assert d.box() == (60, 20, 100, 60)


def test_a_frame_small_on_screen_moves_from_its_middle(qtbot):
    # 40 image px shown at half size are 20 screen px: the corners' 10 px reach used to
    # cover all of it, so a drag from the middle resized the frame instead of moving it.
    d = CropDialog(_image(400, 200), target_size=16)
    qtbot.addWidget(d)
    d.view.setFixedSize(216, 116)  # image pixel (x, y) is widget pixel (8 + x/2, 8 + y/2)
    d.show()
    qtbot.waitExposed(d)
    d.view.set_box((100, 40, 140, 80))
    _drag(d.view, QPoint(68, 38), QPoint(78, 48))
    assert d.box() == (120, 60, 160, 100)
    _drag(d.view, QPoint(88, 58), QPoint(98, 68))  # its corner still resizes
    assert d.box()[:2] == (120, 60) and d.box()[2] - d.box()[0] == 60


def test_what_loading_did_to_the_picture_is_shown(qtbot):
    notes = ["downscaled from 16000x3000 to 9459x1774", "alpha flattened onto white"]
    d = CropDialog(_image(60, 30), target_size=16, notes=notes)
    qtbot.addWidget(d)
    assert d.notes_label.text() == ("Downscaled from 16000x3000 to 9459x1774.\n"
                                    "Alpha flattened onto white.")
    assert not d.notes_label.isHidden()
    plain = CropDialog(_image(60, 30), target_size=16)
    qtbot.addWidget(plain)
    assert plain.notes_label.isHidden()


def test_the_dialog_names_its_picture_and_which_of_several_it_is(qtbot):
    # Several pictures dropped: the same "Crop the image" came once per file, unnamed.
    d = CropDialog(_image(60, 30), target_size=16, name="face.png", place=(1, 2))
    qtbot.addWidget(d)
    assert d.windowTitle() == "Crop face.png (1 of 2)"
    assert d.heading.text() == "face.png (1 of 2)" and not d.heading.isHidden()
    alone = CropDialog(_image(60, 30), target_size=16, name="face.png", place=(1, 1))
    qtbot.addWidget(alone)
    assert alone.windowTitle() == "Crop face.png"
    seen = []

    def answer() -> None:
        seen.append(QApplication.activeModalWidget().windowTitle())
        QApplication.activeModalWidget().reject()

    QTimer.singleShot(0, answer)
    assert choose_crop(None, _image(60, 30), None, 16, name="b.png", place=(2, 3)) is None
    assert seen == ["Crop b.png (2 of 3)"]


def test_the_dialog_opens_within_the_screens_room(qtbot):
    # A fixed 900 x 600 ran off a small screen (the offscreen one is 800 wide).
    parent = QWidget()
    qtbot.addWidget(parent)
    d = CropDialog(_image(60, 30), target_size=16, parent=parent)
    room = parent.screen().availableGeometry()
    if room.width() >= 900 and room.height() >= 600:
        pytest.skip("this screen has room for 900 x 600")
    assert d.width() <= room.width() and d.height() <= room.height()


def test_a_long_file_name_does_not_widen_the_dialog_past_its_size(qtbot):
    # a name without spaces (a web download's) set the dialog's least width: 122 characters
    # made it 922 px wide, past the size it is given to stay on a small screen
    name = "IMG_20261207_123456_HDR_portrait_mode_" + "edited_" * 30 + "final.png"
    d = CropDialog(_image(60, 30), target_size=16, name=name, place=(2, 3))
    qtbot.addWidget(d)
    plain = CropDialog(_image(60, 30), target_size=16, name="face.png")
    qtbot.addWidget(plain)
    assert d.minimumSizeHint().width() <= plain.minimumSizeHint().width()
    d.show()
    qtbot.waitExposed(d)
    # cut in the middle: its end and which of the pictures it is stay in view
    shown = d.heading.elided_text()
    assert "…" in shown and shown.endswith("final.png (2 of 3)")
    assert d.heading.toolTip() == f"{name} (2 of 3)"
