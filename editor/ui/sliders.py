"""A float slider with a numeric box beside it, for α, β and edit strengths.

QSlider only knows integers; this maps a float range onto it and keeps a QDoubleSpinBox in
step. `value_changed` fires while dragging (the canvas follows the hand), `drag_finished`
when the hand (or a held key) lets go or a value is typed, so the undo history can merge
one drag into one step. Navigation keys (arrows, PgUp/PgDown, Home/End) step the focused
slider or box even where the window binds them to an action (PgUp/PgDown change the seed).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QObject, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QDoubleSpinBox,
    QHBoxLayout,
    QSlider,
    QWidget,
)

from .keys import claim_keys, route_undo_keys
from .theme import FILL_ORIGIN

# A wheel turned notch by notch, or a touchpad swipe, is one change of the user's: it ends
# at the swipe's end (its phase says so), or this long after a wheel's last notch.
WHEEL_SETTLE_MS = 400

NAVIGATION_KEYS = frozenset({
    Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down,
    Qt.Key.Key_PageUp, Qt.Key.Key_PageDown, Qt.Key.Key_Home, Qt.Key.Key_End})


def round_step(size: float, decimals: int) -> float:
    """The largest 1, 2 or 5 times a power of ten within `size`, and no finer than the
    box shows: a 400th of β's range (0.001375) rounded to the box's 3 decimals stepped
    0.150, 0.152, 0.153, and its box's hundredth 0.050, 0.056, 0.061."""
    finest = 10.0 ** -decimals
    if size <= finest:
        return finest
    power = 10.0 ** math.floor(math.log10(size))
    return max(m * power for m in (1, 2, 5) if m * power <= size * (1 + 1e-9))


class FloatSlider(QWidget):
    value_changed = Signal(float)
    drag_finished = Signal()

    def __init__(self, minimum: float, maximum: float, value: float = 0.0,
                 decimals: int = 2, steps: int = 400, parent: QWidget | None = None,
                 wheel_needs_focus: bool = False,
                 typed_range: tuple[float, float] | None = None):
        """`typed_range`: what the box takes when typed, where it is wider than the
        slider's range (the slider then stays at its end)."""
        super().__init__(parent)
        # in a scrolling list the wheel must scroll the list, not the row under the hand
        self._wheel_needs_focus = wheel_needs_focus
        self._steps = steps  # about how many arrow presses cross the range
        # a navigation key held down: its repeats are one step too, ending when let go
        # (each repeat was a step of its own: a second's hold made 30)
        self._held_key: int | None = None
        self._typed = typed_range or (float(minimum), float(maximum))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.box = QDoubleSpinBox()
        self.box.setRange(*self._typed)
        self.box.setDecimals(decimals)
        self._set_slider_range(minimum, maximum)
        self.box.setKeyboardTracking(False)  # typing "1.5" must not apply "1" first
        self.box.setMinimumWidth(72)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.box)
        self.slider.valueChanged.connect(self._from_slider)
        self.slider.sliderReleased.connect(self.drag_finished)
        self.box.valueChanged.connect(self._from_box)
        for w in (self.slider, self.box):
            w.installEventFilter(self)
            if wheel_needs_focus:
                w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel gives no focus
        route_undo_keys([self.box])
        for w in (self.slider, self.box):
            claim_keys(w, NAVIGATION_KEYS)  # the arrows and PgUp/PgDown move this value
        # a wheel turning: drag_finished waits for its end (one undo step, as a drag)
        self._wheeling = self._moved = False
        self._wheel_settled = QTimer(self, singleShot=True, interval=WHEEL_SETTLE_MS)
        self._wheel_settled.timeout.connect(self._end_wheel)
        self.set_value(value)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        if (self._wheel_needs_focus and event.type() == QEvent.Type.Wheel
                and not watched.hasFocus()):
            self._scroll_enclosing_list(event)
            event.accept()  # handled: not passed up as well (it would scroll twice)
            return True
        if event.type() == QEvent.Type.Wheel:
            self._wheeling = True
            if event.phase() == Qt.ScrollPhase.ScrollEnd:  # a swipe that says it ended
                QTimer.singleShot(0, self, self._end_wheel)  # after this event's own change
            else:
                self._wheel_settled.start()
        elif (event.type() == QEvent.Type.KeyPress and event.key() in NAVIGATION_KEYS
              and not event.isAutoRepeat()):
            self._held_key = event.key()
        elif self._held_key is not None and (
                event.type() == QEvent.Type.FocusOut  # its release goes elsewhere
                or event.type() == QEvent.Type.KeyRelease
                and event.key() == self._held_key and not event.isAutoRepeat()):
            self._held_key = None
            self._end_change()
        return super().eventFilter(watched, event)

    def _end_wheel(self) -> None:
        self._wheel_settled.stop()
        self._wheeling = False
        self._end_change()

    def _end_change(self) -> None:
        """A wheel turn or a held key ended: what it changed is one step."""
        if self._wheeling or self._held_key is not None:  # the other goes on
            return
        moved, self._moved = self._moved, False
        if moved:
            self.drag_finished.emit()

    def focus_chain(self) -> tuple[QWidget, QWidget]:
        """Its two focusable parts, in Tab order."""
        return self.slider, self.box

    def set_accessible_name(self, name: str) -> None:
        """What a screen reader calls the slider and its box (a form label names only the
        container)."""
        self.slider.setAccessibleName(name)
        self.box.setAccessibleName(name)

    def set_accessible_description(self, text: str) -> None:
        """What a screen reader adds after the name (an edit's error, say)."""
        self.slider.setAccessibleDescription(text)
        self.box.setAccessibleDescription(text)

    def _scroll_enclosing_list(self, event: QWheelEvent) -> None:
        """Hand the wheel to the scroll area this slider sits in (a row of the edit stack)."""
        area = self.parentWidget()
        while area is not None and not isinstance(area, QAbstractScrollArea):
            area = area.parentWidget()
        if area is None:
            return
        viewport = area.viewport()
        QApplication.sendEvent(viewport, QWheelEvent(
            viewport.mapFromGlobal(event.globalPosition()), event.globalPosition(),
            event.pixelDelta(), event.angleDelta(), event.buttons(), event.modifiers(),
            event.phase(), event.inverted()))

    # ----------------------------------------------------------------- value
    def value(self) -> float:
        return self.box.value()

    def set_value(self, value: float) -> None:
        """Show a value without emitting anything (the model is being reflected). A value
        beyond the slider's range (from a recipe or the command line) shows in the box as
        it is, with the slider at its end, rather than as the nearest value it can reach."""
        with QSignalBlocker(self.slider), QSignalBlocker(self.box):
            low, high = min(self._typed[0], value), max(self._typed[1], value)
            if (low, high) != (self.box.minimum(), self.box.maximum()):
                self.box.setRange(low, high)
            self.box.setValue(value)
            self.slider.setValue(self._to_tick(value))

    def set_read_only(self, read_only: bool) -> None:
        """Show the value in the text colour without letting it be changed: one the engine
        chose (auto β). Disabled, the box drew it in grey, 1.6:1 in the light theme."""
        self.slider.setEnabled(not read_only)
        self.box.setReadOnly(read_only)
        self.box.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.NoButtons if read_only
                                  else QAbstractSpinBox.ButtonSymbols.UpDownArrows)

    @property
    def editable(self) -> bool:
        """Whether the user can change the value (enabled, and not read-only)."""
        return self.isEnabled() and not self.box.isReadOnly()

    def show_blank(self) -> None:
        """Show no value: one the engine derives (auto β) that does not exist right now.
        The next set_value shows a number again; the value itself is unchanged."""
        self.box.lineEdit().setText("—")

    def set_range(self, minimum: float, maximum: float) -> None:
        """The slider's range, which is also what the box takes from now on."""
        value = self.value()
        self._set_slider_range(minimum, maximum)
        self._typed = (self._min, self._max)
        with QSignalBlocker(self.box):
            self.box.setRange(*self._typed)
        self.set_value(min(max(value, self._min), self._max))

    def _set_slider_range(self, minimum: float, maximum: float) -> None:
        """Ticks a round step apart, so that arrows give evenly spaced, round values; the
        box's arrows step about a hundredth of the range, as round."""
        self._min, self._max = float(minimum), float(maximum)
        span, decimals = self._max - self._min, self.box.decimals()
        self._step = round_step(span / self._steps, decimals)
        with QSignalBlocker(self.slider):
            # the last tick is the maximum, also where the span is no whole number of steps
            self.slider.setRange(0, math.ceil(span / self._step - 1e-9))
        self.slider.setPageStep(self._steps // 20)
        self.box.setSingleStep(round_step(span / 100, decimals))
        # a strength slider fills from 0, not from its negative end (theme.AtelierStyle)
        self.slider.setProperty(FILL_ORIGIN, self._to_tick(0.0) if self._min < 0 < self._max
                                else None)

    def setToolTip(self, text: str) -> None:  # noqa: N802 - Qt naming
        super().setToolTip(text)
        self.slider.setToolTip(text)
        self.box.setToolTip(text)

    # ----------------------------------------------------------------- mapping
    def _to_tick(self, value: float) -> int:
        """The slider position for a value; one beyond the range (a recipe's α of 1e9) is
        the slider's end: its tick overflowed QSlider's 32-bit int and raised."""
        tick = round((value - self._min) / self._step)
        return min(max(tick, 0), self.slider.maximum())

    def _from_tick(self, tick: int) -> float:
        return min(self._min + self._step * tick, self._max)

    def _from_slider(self, tick: int) -> None:
        value = round(self._from_tick(tick), self.box.decimals())
        with QSignalBlocker(self.box):
            self.box.setValue(value)
        self.value_changed.emit(value)
        self._finished_unless_held()

    def _finished_unless_held(self) -> None:
        """A click on the groove or a typed value is a step of its own; a wheel's change
        ends with the wheel (_end_wheel), a key's when it is let go (its repeats too), a
        drag's when the hand lets go (sliderReleased)."""
        if self._wheeling or self._held_key is not None:
            self._moved = True
        elif not self.slider.isSliderDown():
            self.drag_finished.emit()

    def _from_box(self, value: float) -> None:
        with QSignalBlocker(self.slider):
            self.slider.setValue(self._to_tick(value))
        self.value_changed.emit(value)
        self._finished_unless_held()
