"""The image view: fit or zoom, smooth or pixel-exact, before/after, drag-and-drop.

Small models (the 64 px demo) are upscaled smoothly when fitted; at integer zoom factors
the pixels are shown exactly (nearest neighbour), so 100 % is the real image. A zoomed image
larger than the view is moved by dragging (the middle button in split view) or the wheel.
The before
image (the source without edits) is shown while the compare key is held, or on the left of
a movable split line.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

ZOOM_STEPS = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
WHEEL_NOTCH = 120  # angle delta units of one wheel notch


DESCRIPTION = ("The picture with the edit stack applied; hold \\ to see the original, S for "
               "a before/after split")
LABEL_BACKING = QColor(0, 0, 0, 160)  # white on it: 6.4:1 over white, more over darker


SPLIT_KEY_STEP = 0.05  # of the image's width, per arrow press
PAN_KEY_STEP = 0.1  # of the view, per arrow press


class Canvas(QWidget):
    files_dropped = Signal(list)  # local paths
    zoom_changed = Signal(str)  # "fit" or "200 %"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Edited image")
        self.setMinimumSize(256, 256)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._image: QImage | None = None
        self._size = QSize()  # the picture's, in image pixels (a preview's is smaller)
        self._wheel_zoom = 0  # Ctrl+scroll not yet turned into zoom steps
        self._before: QImage | None = None
        self._zoom: float | None = None  # None: fit to the window
        self._split: float | None = None  # 0..1 across the image; None: no split view
        self._holding_compare = False
        self._dragging_split = False
        self.drop_offer: str | None = None  # what a drop would open, while files are dragged
        # a zoomed image larger than the view: its centre's offset from the view's centre
        self._pan = QPointF(0, 0)
        self._pan_from: QPointF | None = None  # where a pan drag was last seen
        self.message = "No model loaded"
        self.caption = ""  # see set_image
        self._describe()

    # ----------------------------------------------------------------- content
    def set_image(self, image: QImage, before: QImage | None = None,
                  caption: str = "", size: QSize | None = None) -> None:
        """The picture, and the original it is compared with (None: none known yet, so
        a compare view shows the picture alone rather than another source's original).
        `caption`: what the picture is when it is not the document's (an inversion's
        preview), shown over it until the next picture. `size`: the picture's own where
        `image` is a smaller preview of it, which is drawn as large (at 100 % a drag's
        256 px previews of a 1024 px model came and went at a quarter of its size)."""
        self._image = image
        self._size = size if size is not None else image.size()
        self._before = before
        self.caption = caption
        self._describe()
        self.update()

    def current_image(self) -> QImage | None:
        return self._image

    def set_message(self, text: str) -> None:
        self.message = text
        self._describe()
        self.update()

    def show_message(self, text: str) -> None:
        """`text` in place of the picture (and its original), which no longer stands for
        what the window shows: another model's, say."""
        self._image = self._before = None
        self.caption = ""
        self.set_message(text)

    def _describe(self) -> None:
        """A screen reader hears what is drawn: the message while there is no picture."""
        shown = DESCRIPTION if self._image is not None else self.message
        self.setAccessibleDescription(f"{self.caption}. {shown}" if self.caption else shown)

    # ----------------------------------------------------------------- zoom
    def set_zoom(self, zoom: float | None) -> None:
        # the part of the picture at the view's centre stays there: the pan, in widget
        # pixels, was kept as it was, and each step in slid the view towards the picture's
        # centre (the spot panned to went out of view)
        old, r = self._effective_zoom(), self.image_rect()
        pan = self._clamped_pan(r.width(), r.height())
        self._zoom = zoom
        if old > 0:
            self._pan = pan * (self._effective_zoom() / old)
        self.zoom_changed.emit("fit" if zoom is None else f"{zoom * 100:.0f} %")
        self.update()

    def zoom_in(self) -> None:
        current = self._effective_zoom()
        self.set_zoom(next((z for z in ZOOM_STEPS if z > current + 1e-6), ZOOM_STEPS[-1]))

    def zoom_out(self) -> None:
        current = self._effective_zoom()
        self.set_zoom(next((z for z in reversed(ZOOM_STEPS) if z < current - 1e-6),
                           ZOOM_STEPS[0]))

    def _effective_zoom(self) -> float:
        """Screen pixels per image pixel: at 100 % one image pixel is one pixel of the
        screen, also on a HiDPI screen (where a widget pixel is several)."""
        if self._zoom is not None:
            return self._zoom
        if self._image is None:
            return 1.0
        return self.devicePixelRatioF() * min(self.width() / self._size.width(),
                                              self.height() / self._size.height())

    def image_rect(self) -> QRectF:
        if self._image is None:
            return QRectF()
        z = self._effective_zoom() / self.devicePixelRatioF()  # in widget pixels
        w, h = self._size.width() * z, self._size.height() * z
        pan = self._clamped_pan(w, h)
        return QRectF((self.width() - w) / 2 + pan.x(), (self.height() - h) / 2 + pan.y(),
                      w, h)

    def _clamped_pan(self, w: float, h: float) -> QPointF:
        """The pan, kept so that a larger-than-view image always covers the view and a
        smaller one stays centred."""
        room_x, room_y = max(0.0, (w - self.width()) / 2), max(0.0, (h - self.height()) / 2)
        return QPointF(min(max(self._pan.x(), -room_x), room_x),
                       min(max(self._pan.y(), -room_y), room_y))

    def pannable(self) -> bool:
        r = self.image_rect()
        return r.width() > self.width() + 0.5 or r.height() > self.height() + 0.5

    def pan_by(self, dx: float, dy: float) -> None:
        r = self.image_rect()
        self._pan = self._clamped_pan(r.width(), r.height()) + QPointF(dx, dy)
        self.update()

    # ----------------------------------------------------------------- before/after
    @property
    def comparing(self) -> bool:
        return self._holding_compare or self._split is not None

    @property
    def holding_compare(self) -> bool:
        return self._holding_compare

    def set_holding_compare(self, holding: bool) -> None:
        if holding != self._holding_compare:
            self._holding_compare = holding
            self.update()

    def set_split(self, on: bool) -> None:
        self._split = 0.5 if on else None
        self.update()

    # ----------------------------------------------------------------- painting
    def paintEvent(self, event):  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        if self._image is None:
            painter.setPen(self.palette().text().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
        else:
            self._paint_picture(painter)
        if self.drop_offer:
            self._draw_drop_offer(painter)

    def _paint_picture(self, painter: QPainter) -> None:
        target = self.image_rect()
        z = self._effective_zoom() * self._size.width() / self._image.width()  # its own
        # integer zoom: exact pixels; otherwise smooth, which suits small generators. A fit
        # is smooth at any size: one that came out whole (the 64 px demo in a 512 px view)
        # was blocky, and a pixel more or less of window turned it smooth again
        exact = self._zoom is not None and abs(z - round(z)) < 1e-6 and z >= 1
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not exact)
        after, before = self._image, self._before
        if self._holding_compare and before is not None:
            painter.drawImage(target, before)
        elif self._split is not None and before is not None:
            painter.drawImage(target, after)
            cut = target.width() * self._split
            src_cut = after.width() * self._split
            painter.drawImage(QRectF(target.left(), target.top(), cut, target.height()), before,
                              QRectF(0, 0, src_cut, before.height()))
            x = target.left() + cut
            painter.setPen(QPen(QColor(255, 255, 255, 220), 2))
            painter.drawLine(QPointF(x, target.top()), QPointF(x, target.bottom()))
            shown = target.intersected(QRectF(self.rect()))  # the labels stay in view
            self._draw_label(painter, QPointF(shown.left() + 6, shown.top() + 4),
                             Qt.AlignmentFlag.AlignLeft, "before")
            self._draw_label(painter, QPointF(shown.right() - 6, shown.top() + 4),
                             Qt.AlignmentFlag.AlignRight, "after")
        else:
            painter.drawImage(target, after)
        shown = target.intersected(QRectF(self.rect()))  # labels stay in view
        corner = QPointF(shown.left() + 6, shown.top() + 4)
        if self._holding_compare and before is not None:  # as the split view says it
            self._draw_label(painter, corner, Qt.AlignmentFlag.AlignLeft, "before")
        elif self.caption and self._split is None:  # cut to the picture's width
            caption = painter.fontMetrics().elidedText(
                self.caption, Qt.TextElideMode.ElideMiddle, max(0, int(shown.width()) - 20))
            self._draw_label(painter, corner, Qt.AlignmentFlag.AlignLeft, caption)
        if self.hasFocus():  # where the keys go (zoom, split, arrows), visible at a glance
            painter.setPen(QPen(self.palette().highlight().color(), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(self.rect()).adjusted(1, 1, -1, -1))

    def _draw_drop_offer(self, painter: QPainter) -> None:
        """Files dragged over the canvas: a tint, a dashed frame in the accent and what a
        drop opens, so that the user sees it will take them (nothing showed before)."""
        accent = self.palette().highlight().color()
        tint = QColor(accent)
        tint.setAlpha(40)
        area = QRectF(self.rect()).adjusted(4, 4, -4, -4)
        painter.fillRect(area, tint)
        pen = QPen(accent, 3, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(area, 8, 8)
        size = painter.fontMetrics().size(0, self.drop_offer)
        centre = area.center()
        corner = QPointF(centre.x() - (size.width() + 8) / 2, centre.y() - size.height() / 2)
        self._draw_label(painter, corner, Qt.AlignmentFlag.AlignLeft, self.drop_offer)

    def _draw_label(self, painter: QPainter, corner: QPointF, align: Qt.AlignmentFlag,
                    text: str) -> None:
        """White text on a dark backing: plain white was 1.1:1 on a light picture."""
        size = painter.fontMetrics().size(0, text)
        box = QRectF(0, 0, size.width() + 8, size.height() + 2)
        if align == Qt.AlignmentFlag.AlignLeft:
            box.moveTopLeft(corner)
        else:
            box.moveTopRight(corner)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(LABEL_BACKING)
        painter.drawRoundedRect(box, 3, 3)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def focusInEvent(self, event):  # noqa: N802 - Qt override
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event):  # noqa: N802 - Qt override
        super().focusOutEvent(event)
        self.update()

    # ----------------------------------------------------------------- keys: split, pan
    def keyPressEvent(self, event):  # noqa: N802 - Qt override
        """The arrows do with the keyboard what the mouse does: in split view ← and → move
        the line; otherwise they pan a zoomed image."""
        key = event.key()
        horizontal = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1}.get(key, 0)
        vertical = {Qt.Key.Key_Up: -1, Qt.Key.Key_Down: 1}.get(key, 0)
        if not (horizontal or vertical) or event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            super().keyPressEvent(event)
            return
        if horizontal and self._split is not None and self._image is not None:
            self._split = min(1.0, max(0.0, self._split + horizontal * SPLIT_KEY_STEP))
            self.update()
        elif self.pannable():
            # the image moves the way the view goes: → shows more of the right side
            self.pan_by(-horizontal * self.width() * PAN_KEY_STEP,
                        -vertical * self.height() * PAN_KEY_STEP)
        else:
            super().keyPressEvent(event)

    # ----------------------------------------------------------------- mouse: split, pan
    def mousePressEvent(self, event):  # noqa: N802 - Qt override
        # the middle button always pans; the left one moves the split line in split view,
        # and pans otherwise
        left = event.button() == Qt.MouseButton.LeftButton
        if left and self._split is not None and self._image is not None:
            self._dragging_split = True
            self._move_split(event.position().x())
        elif self.pannable() and (left or event.button() == Qt.MouseButton.MiddleButton):
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):  # noqa: N802 - Qt override
        if self._dragging_split:
            self._move_split(event.position().x())
        elif self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.pan_by(delta.x(), delta.y())
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):  # noqa: N802 - Qt override
        self._dragging_split = False
        if self._pan_from is not None:
            self._pan_from = None
            self.unsetCursor()
        super().mouseReleaseEvent(event)

    def _move_split(self, x: float) -> None:
        r = self.image_rect()
        if r.width() > 0:
            self._split = min(1.0, max(0.0, (x - r.left()) / r.width()))
            self.update()

    def wheelEvent(self, event):  # noqa: N802 - Qt override
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            # one zoom step per wheel notch (120 units): a touchpad sends a notch as many
            # small events, each of which zoomed a whole step; sideways scroll is not zoom
            self._wheel_zoom += event.angleDelta().y()
            while abs(self._wheel_zoom) >= WHEEL_NOTCH:
                step = 1 if self._wheel_zoom > 0 else -1
                self._wheel_zoom -= step * WHEEL_NOTCH
                (self.zoom_in if step > 0 else self.zoom_out)()
            event.accept()
        elif self.pannable():  # the wheel moves a zoomed image (sideways too)
            d = event.pixelDelta() if not event.pixelDelta().isNull() else \
                event.angleDelta() / 4
            self.pan_by(d.x(), d.y())
            event.accept()
        else:
            super().wheelEvent(event)

    # ----------------------------------------------------------------- drag and drop
    def dragEnterEvent(self, event):  # noqa: N802 - Qt override
        # files only: a web page's link was taken, and its drop then did nothing
        paths = _local_files(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.drop_offer = (f"Drop to open {Path(paths[0]).name}" if len(paths) == 1
                               else f"Drop to open {len(paths)} files")
            self.update()

    def dragLeaveEvent(self, event):  # noqa: N802 - Qt override
        self._end_drop_offer()

    def dropEvent(self, event):  # noqa: N802 - Qt override
        self._end_drop_offer()
        paths = _local_files(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)

    def _end_drop_offer(self) -> None:
        self.drop_offer = None
        self.update()


def _local_files(data: QMimeData) -> list[str]:
    return [u.toLocalFile() for u in data.urls() if u.isLocalFile()] if data.hasUrls() else []
