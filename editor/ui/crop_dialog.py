"""The square crop step before an image of the user's own is inverted into the generator.

The generator only makes square images, so the user chooses which square of the photo it
should reproduce: drag inside the frame to move it, drag a corner (or turn the wheel) to
resize it, arrow keys to nudge it (Shift: ten times further), +/- to resize, Home to reset
to the largest centred square. A live preview shows the crop at the generator's resolution.

Boxes are in the pixels of the array given (what `image_io.load_image` returned, after its
EXIF rotation and any downscale), as `image_io.Box`, ready for `image_io.crop`. The last box
chosen for a file is remembered under "crop/boxes" in QSettings (keyed by `crop_key`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from editor.core.image_io import Box

from .elided_label import ElidedLabel
from .qimages import qimage_from_array
from .remembered import RememberedMap
from .screen_room import available_area

SETTINGS_KEY = "crop/boxes"
MAX_REMEMBERED = 100  # files whose crop is remembered; the oldest are forgotten
REMEMBERED_BOXES = RememberedMap(SETTINGS_KEY, MAX_REMEMBERED)
MIN_SIDE = 16  # the smallest crop (image pixels), unless the image itself is smaller
PREVIEW_SIDE = 256  # on-screen size of the preview
PROXY_SIDE = 1536  # big images are drawn and previewed from a copy this size, for speed
MARGIN = 8  # room around the image so the corner handles at its edge can be grabbed
GRAB = 10  # how near (screen pixels) a corner must be to grab it
HANDLE = 8  # drawn size of a corner handle
DIALOG_SIZE = (900, 600)  # the dialog's first size, where the screen has the room
SCREEN_ROOM = 40  # left free of the screen's available width (twice of its height)
KEY_HELP = ("Drag to move, drag a corner or turn the wheel to resize. Arrows nudge (Shift: "
            "faster), +/− resize, Home: the largest centred square.")


def _smooth(image: QImage, w: int, h: int) -> QImage:
    return image.scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio,
                        Qt.TransformationMode.SmoothTransformation)


def crop_key(path: str | os.PathLike) -> str:
    """A key for remembering a file's crop: its path, size and modification time, so an
    edited or replaced file starts from the default again."""
    p = Path(path).resolve()
    st = p.stat()
    return f"{p}|{st.st_size}|{st.st_mtime_ns}"


# ----------------------------------------------------------------------- remembered boxes

def remembered_box(key: str) -> Box | None:
    box = REMEMBERED_BOXES.get(key)
    # bounded: a hand-edited 400-digit number overflowed the float centre of set_box
    if isinstance(box, list) and len(box) == 4 and all(
            isinstance(v, int) and abs(v) < 2**31 for v in box):
        return (box[0], box[1], box[2], box[3])
    return None


def remember_box(key: str, box: Box) -> None:
    REMEMBERED_BOXES.put(key, [int(v) for v in box])


# ----------------------------------------------------------------------------- the view

class CropView(QWidget):
    """The image scaled to fit, with a movable, resizable square crop frame."""

    box_changed = Signal()

    def __init__(self, image: QImage, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(320, 320)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        # the control the keyboard starts on: a screen reader said nothing at all of it
        self.setAccessibleName("Crop frame")
        self.setAccessibleDescription(KEY_HELP)
        self.setMouseTracking(True)  # hover cursors show what a drag would do
        self.image = image
        w, h = image.width(), image.height()
        f = min(1.0, PROXY_SIDE / max(w, h))
        self.proxy = _smooth(image, max(1, round(w * f)), max(1, round(h * f))) \
            if f < 1 else image
        self._short = min(w, h)
        self._min_side = min(MIN_SIDE, self._short)
        self._left, self._top, self._side = 0, 0, self._short
        self._grab: tuple[float, float] | None = None  # moving: pointer minus top-left
        self._anchor: tuple[int, int, int, int] | None = None  # resizing: fixed corner, signs
        self._pixmap: QPixmap | None = None  # the image at its on-screen size
        # the wheel's exact centre and side, with the box they gave (reset when it moved)
        self._wheel: tuple[tuple[float, float, float], Box] | None = None
        self.centre()

    # ----------------------------------------------------------------- the box
    def box(self) -> Box:
        return (self._left, self._top, self._left + self._side, self._top + self._side)

    def set_box(self, box: Box) -> None:
        """Any box; made square (its shorter side, same centre) and clamped to the image."""
        left, top, right, bottom = (int(v) for v in box)
        self._place_centred((left + right) / 2, (top + bottom) / 2,
                            min(right - left, bottom - top))

    def centre(self) -> None:
        """The largest centred square: the whole short side, as `center_crop_square`."""
        w, h = self.image.width(), self.image.height()
        self._place((w - self._short) // 2, (h - self._short) // 2, self._short)

    def _place(self, left: float, top: float, side: float) -> None:
        side = max(self._min_side, min(round(side), self._short))
        left = max(0, min(round(left), self.image.width() - side))
        top = max(0, min(round(top), self.image.height() - side))
        if (left, top, side) != (self._left, self._top, self._side):
            self._left, self._top, self._side = left, top, side
            self.update()
            self.box_changed.emit()

    def _place_centred(self, cx: float, cy: float, side: float) -> None:
        # the side is clamped first, so the centre moves only if the edges make it
        side = max(self._min_side, min(round(side), self._short))
        self._place(cx - side / 2, cy - side / 2, side)

    def _resize_about_centre(self, side: int) -> None:
        self._place_centred(self._left + self._side / 2, self._top + self._side / 2, side)

    # ----------------------------------------------------------------- geometry
    def _scale(self) -> float:
        return max(1e-6, min((self.width() - 2 * MARGIN) / self.image.width(),
                             (self.height() - 2 * MARGIN) / self.image.height()))

    def image_rect(self) -> QRectF:
        s = self._scale()
        w, h = self.image.width() * s, self.image.height() * s
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def crop_rect(self) -> QRectF:
        """The crop frame in widget coordinates."""
        r, s = self.image_rect(), self._scale()
        return QRectF(r.left() + self._left * s, r.top() + self._top * s,
                      self._side * s, self._side * s)

    def _to_image(self, pos: QPointF) -> tuple[float, float]:
        r, s = self.image_rect(), self._scale()
        return (pos.x() - r.left()) / s, (pos.y() - r.top()) / s

    def nudge_step(self) -> int:
        """One arrow key press moves the frame by about one screen pixel (at least one image
        pixel), so every press shows, whether the image is shrunk or enlarged to fit."""
        return max(1, round(1 / self._scale()))

    def _corner_at(self, pos: QPointF) -> tuple[int, int] | None:
        """The corner under the pointer, as its direction from the centre: (-1, -1) is
        top-left."""
        c = self.crop_rect()
        corners = {(-1, -1): c.topLeft(), (1, -1): c.topRight(),
                   (-1, 1): c.bottomLeft(), (1, 1): c.bottomRight()}
        near = {k: max(abs(p.x() - pos.x()), abs(p.y() - pos.y())) for k, p in corners.items()}
        best = min(near, key=near.get)
        # a frame small on screen keeps its middle for moving: the corners' reach shrinks
        return best if near[best] <= min(GRAB, c.width() / 4) else None

    # ----------------------------------------------------------------- painting
    def _scaled_pixmap(self, target: QRectF) -> QPixmap:
        dpr = self.devicePixelRatioF()
        w, h = max(1, round(target.width() * dpr)), max(1, round(target.height() * dpr))
        if self._pixmap is None or (self._pixmap.width(), self._pixmap.height()) != (w, h):
            source = self.proxy if self.proxy.width() >= w else self.image
            if w >= 2 * source.width():  # much enlarged (a small photo): show its real pixels
                scaled = source.scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio,
                                       Qt.TransformationMode.FastTransformation)
            else:
                scaled = _smooth(source, w, h)
            self._pixmap = QPixmap.fromImage(scaled)
            self._pixmap.setDevicePixelRatio(dpr)
        return self._pixmap

    def paintEvent(self, event):  # noqa: N802 - Qt override
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().window())
        target, crop = self.image_rect(), self.crop_rect()
        p.drawPixmap(target.topLeft(), self._scaled_pixmap(target))
        shade = QPainterPath()  # odd-even fill: the image minus the crop
        shade.addRect(target)
        shade.addRect(crop)
        p.fillPath(shade, QColor(0, 0, 0, 150))
        p.setPen(QPen(QColor(255, 255, 255, 90), 1))  # rule of thirds, to place a face
        for i in (1, 2):
            x = crop.left() + crop.width() * i / 3
            y = crop.top() + crop.height() * i / 3
            p.drawLine(QPointF(x, crop.top()), QPointF(x, crop.bottom()))
            p.drawLine(QPointF(crop.left(), y), QPointF(crop.right(), y))
        p.setPen(QPen(QColor(255, 255, 255), 2))
        p.drawRect(crop)
        p.setPen(QPen(QColor(0, 0, 0, 160), 1))
        for corner in (crop.topLeft(), crop.topRight(), crop.bottomLeft(), crop.bottomRight()):
            handle = QRectF(corner.x() - HANDLE / 2, corner.y() - HANDLE / 2, HANDLE, HANDLE)
            p.fillRect(handle, QColor(255, 255, 255))
            p.drawRect(handle)

    # ----------------------------------------------------------------- mouse
    def mousePressEvent(self, event):  # noqa: N802 - Qt override
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        pos = event.position()
        if (corner := self._corner_at(pos)) is not None:
            sx, sy = corner  # the opposite corner stays where it is
            ax = self._left + (self._side if sx < 0 else 0)
            ay = self._top + (self._side if sy < 0 else 0)
            self._anchor = (ax, ay, sx, sy)
        else:
            x, y = self._to_image(pos)
            if not self.crop_rect().contains(pos):  # outside: bring the frame here first
                self._place(x - self._side / 2, y - self._side / 2, self._side)
            self._grab = (x - self._left, y - self._top)
        event.accept()

    def mouseMoveEvent(self, event):  # noqa: N802 - Qt override
        x, y = self._to_image(event.position())
        if self._grab is not None:
            self._place(x - self._grab[0], y - self._grab[1], self._side)
        elif self._anchor is not None:
            ax, ay, sx, sy = self._anchor
            # the larger of the two pulls wins, so the frame follows a diagonal drag; it may
            # only grow until it meets the image's edge on the dragged side
            room = min(self.image.width() - ax if sx > 0 else ax,
                       self.image.height() - ay if sy > 0 else ay)
            side = max(self._min_side, min(round(max(sx * (x - ax), sy * (y - ay))), room))
            self._place(ax if sx > 0 else ax - side, ay if sy > 0 else ay - side, side)
        else:
            self._update_cursor(event.position())
        event.accept()

    def mouseReleaseEvent(self, event):  # noqa: N802 - Qt override
        self._grab = self._anchor = None
        self._update_cursor(event.position())
        event.accept()

    def _update_cursor(self, pos: QPointF) -> None:
        corner = self._corner_at(pos)
        if corner is not None:
            diagonal = corner[0] == corner[1]  # top-left or bottom-right
            self.setCursor(Qt.CursorShape.SizeFDiagCursor if diagonal
                           else Qt.CursorShape.SizeBDiagCursor)
        elif self.crop_rect().contains(pos):
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        else:
            self.setCursor(Qt.CursorShape.CrossCursor)

    def wheelEvent(self, event):  # noqa: N802 - Qt override
        notches = event.angleDelta().y() / 120
        if notches:
            # wheel up zooms in (a tighter crop), 10 % a notch. The exact side is carried
            # between events, so a touchpad's many small steps add up to what a wheel's
            # notches give, not a pixel each.
            if self._wheel is None or self._wheel[1] != self.box():  # moved since
                self._wheel = ((self._left + self._side / 2, self._top + self._side / 2,
                                float(self._side)), self.box())
            (cx, cy, side), _ = self._wheel
            side *= 0.9 ** notches
            self._place_centred(cx, cy, side)
            self._wheel = ((cx, cy, max(self._min_side, min(side, self._short))), self.box())
        event.accept()

    # ----------------------------------------------------------------- keys
    _ARROWS = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0),
               Qt.Key.Key_Up: (0, -1), Qt.Key.Key_Down: (0, 1)}

    def keyPressEvent(self, event):  # noqa: N802 - Qt override
        step = self.nudge_step()
        key = event.key()
        if key in self._ARROWS:
            dx, dy = self._ARROWS[key]
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                step *= 10
            self._place(self._left + dx * step, self._top + dy * step, self._side)
        # +/- resize alike: on many layouts "+" is typed with Shift, which must not
        # make it ten times faster than "-"
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self._resize_about_centre(self._side + 2 * step)
        elif key == Qt.Key.Key_Minus:
            self._resize_about_centre(self._side - 2 * step)
        elif key == Qt.Key.Key_Home:
            self.centre()
        else:
            super().keyPressEvent(event)  # Enter and Esc go on to the dialog
            return
        event.accept()


# ---------------------------------------------------------------------------- the dialog

class CropDialog(QDialog):
    """Choose a square crop of `rgb` ((H, W, 3) uint8). With a `key`, the box starts where
    it was left for that key and is remembered on OK."""

    def __init__(self, rgb: np.ndarray, key: str | None = None, target_size: int = 256,
                 parent: QWidget | None = None, notes: Sequence[str] = (),
                 name: str | None = None, place: tuple[int, int] | None = None):
        """`name`: the picture's (its file's name), said in the title and a heading: with
        several pictures dropped, one dialog came after another alike; `place`: (i, n),
        it is the i-th of n pictures opened together."""
        super().__init__(parent)
        of = f" ({place[0]} of {place[1]})" if place is not None and place[1] > 1 else ""
        self.setWindowTitle(f"Crop {name}{of}" if name else f"Crop the image{of}")
        # one line, cut in the middle: a long name without spaces (a web download's) set
        # the dialog's least width, past the screen's
        self.heading = ElidedLabel(f"{name}{of}" if name else "",
                                   mode=Qt.TextElideMode.ElideMiddle)
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.heading.setVisible(bool(name))
        self.key = key
        self.target_size = max(1, int(target_size))
        self.view = CropView(qimage_from_array(rgb))
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIDE, PREVIEW_SIDE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.size_label = QLabel()
        self.size_label.setWordWrap(True)
        self.centre_button = QPushButton("Centre")
        self.centre_button.setToolTip("The largest centred square: the whole short side (Home)")
        self.centre_button.setAutoDefault(False)  # Enter accepts the dialog, never resets
        self.centre_button.clicked.connect(self.view.centre)
        # the text colour, not the disabled grey (1.6:1): the keys are said nowhere else
        key_help = QLabel(KEY_HELP)
        key_help.setWordWrap(True)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        side = QVBoxLayout()
        side.addWidget(QLabel(f"Generator input, {self.target_size} × {self.target_size}"))
        side.addWidget(self.preview)
        side.addWidget(self.size_label)
        # what reading the file did to the picture (downscaled, first frame, flattened)
        self.notes_label = QLabel("\n".join(f"{n[:1].upper()}{n[1:]}." for n in notes))
        self.notes_label.setTextFormat(Qt.TextFormat.PlainText)
        self.notes_label.setWordWrap(True)
        self.notes_label.setVisible(bool(notes))
        side.addWidget(self.notes_label)
        side.addWidget(self.centre_button, 0, Qt.AlignmentFlag.AlignLeft)
        side.addStretch(1)
        side.addWidget(key_help)
        row = QHBoxLayout()
        row.addWidget(self.view, 1)
        row.addLayout(side)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addLayout(row, 1)
        layout.addWidget(buttons)
        # only once the buttons are the dialog's: set before, the dialog had no default of
        # its own, so Enter in the view went to whichever button last had the focus
        # (Cancel, losing the crop) or to none
        buttons.button(QDialogButtonBox.StandardButton.Ok).setDefault(True)
        # within the screen's room (a fixed 900 × 600 ran off a small or scaled screen)
        room = available_area(parent) or QRect(0, 0, *DIALOG_SIZE)
        self.resize(min(DIALOG_SIZE[0], room.width() - SCREEN_ROOM),
                    min(DIALOG_SIZE[1], room.height() - 2 * SCREEN_ROOM))  # (a title bar)

        if key is not None and (box := remembered_box(key)) is not None:
            self.view.set_box(box)
        self.view.box_changed.connect(self._update_preview)
        self._update_preview()

    def showEvent(self, event):  # noqa: N802 - Qt override
        super().showEvent(event)
        self.view.setFocus()  # arrows move the frame at once, not the buttons' focus

    def box(self) -> Box:
        """The crop in the pixels of the array given: (left, top, right, bottom), square."""
        return self.view.box()

    def _preview_pixels(self) -> int:
        """The preview's side in screen pixels: more than PREVIEW_SIDE on a HiDPI screen."""
        return round(PREVIEW_SIDE * self.preview.devicePixelRatioF())

    def preview_image(self) -> QImage:
        """The crop at the preview's working size: the generator's resolution up to the
        preview's screen pixels (beyond that the screen could not show the difference)."""
        left, top, right, _ = self.box()
        side = right - left
        out = min(self.target_size, self._preview_pixels())
        # the small copy is enough unless the crop is tiny; then the full one is cheap
        image, f = self.view.proxy, self.view.proxy.width() / self.view.image.width()
        if side * f < out:
            image, f = self.view.image, 1.0
        rect = QRect(round(left * f), round(top * f), max(1, round(side * f)),
                     max(1, round(side * f))).intersected(image.rect())
        return _smooth(image.copy(rect), out, out)

    def _update_preview(self) -> None:
        pixels = self._preview_pixels()
        crop = self.preview_image()
        k = pixels // crop.width()
        if k > 1:  # enlarge by a whole factor, pixels kept sharp: what the generator gets
            crop = crop.scaled(crop.width() * k, crop.height() * k,
                               Qt.AspectRatioMode.IgnoreAspectRatio,
                               Qt.TransformationMode.FastTransformation)
        # in screen pixels, centred in a frame of the label's whole size: on a 1.5x or 2x
        # screen the label smoothed a pixmap of fewer pixels (or of a fractional size) up
        # to its own, and the sharp pixels above came out blurred
        frame = QImage(pixels, pixels, QImage.Format.Format_ARGB32_Premultiplied)
        frame.fill(Qt.GlobalColor.transparent)
        painter = QPainter(frame)
        painter.drawImage((pixels - crop.width()) // 2, (pixels - crop.height()) // 2, crop)
        painter.end()
        frame.setDevicePixelRatio(pixels / PREVIEW_SIDE)
        self.preview.setPixmap(QPixmap.fromImage(frame))
        left, _, right, _ = self.box()
        side, image = right - left, self.view.image
        text = f"Crop {side} × {side} px of {image.width()} × {image.height()}"
        if side < self.target_size:
            text += f"; enlarged {self.target_size / side:.1f}× for the generator"
        self.size_label.setText(text)

    def accept(self) -> None:
        if self.key is not None:
            remember_box(self.key, self.box())
        super().accept()


def choose_crop(parent: QWidget | None, rgb: np.ndarray, key: str | None,
                target_size: int, notes: Sequence[str] = (), name: str | None = None,
                place: tuple[int, int] | None = None) -> Box | None:
    """Show the crop dialog modally; the chosen box, or None if cancelled. `notes` say
    what loading did to the picture; `name` and `place` which picture it is (CropDialog)."""
    dialog = CropDialog(rgb, key, target_size, parent, notes, name, place)
    return dialog.box() if dialog.exec() == QDialog.DialogCode.Accepted else None
