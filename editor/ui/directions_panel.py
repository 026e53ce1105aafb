"""Discovered directions (CLIP2StyleGAN): labelled directions found without prompts, each
with its confidence, a slider and "add to stack".

The window fills the list from editor.engine.discovered (discovered_entries for a pack, or
to_entries of a finished discovery_job), runs the job when the user asks (the Discover
button emits discover_requested) and reports its progress here; "Add" emits the entry and
the slider's strength (entry_edit turns them into an edit-stack entry).
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from editor.engine.discovered import DirectionEntry
from editor.engine.session import TRANSFERS

from .keys import claim_keys, scroll_to_focused_row, tab_through_rows
from .row_delegate import TextUnderRows
from .sliders import FloatSlider
from .theme import secondary_text_colour

__all__ = ["DirectionEntry", "DirectionsPanel"]

HOW_TO = ("No discovered directions for this model pack yet.\n\n"
          "Discover samples images from the generator, finds the main ways they differ "
          "(as CLIP sees them) and labels each with words, without any prompt. It takes "
          "a minute or more (longer for large generators) and is remembered for the pack.")
RUNNING = "Discovering directions…"
DISCOVER_TIP = "Find labelled edit directions for this model pack"
AGAIN_TIP = ("Discover again: the pack or the label words have changed since these "
             "directions were found (e.g. its global directions were computed); images an "
             "earlier run sampled on this computer are reused")
WORDS_TIP = ("Words of your own to label the directions with, besides the built-in ones "
             "(e.g. freckles, sunburn); then Discover again")
DONE_TIP = ("These are this pack's discovered directions; discovering again would find the "
            "same ones (its samples and settings are fixed)")
STRENGTH_RANGE = 10.0
# TRANSFERS: short names, which the side column shows whole ("Focused (W on the relevant
# channe" was cut mid-word), with the explanation in each one's tooltip
TRANSFER_TIPS = {
    "focused": "W on the relevant channels: the direction fitted in W from the sampled "
               "images, on the style channels that both respond to it and vary with it (the "
               "generator's own change, kept local)",
    "style": "Style channels by relevance: the style channels most relevant to the "
             "direction (as a prompt edit), each moved by its relevance",
    "w": "All of W: the direction fitted in W from the sampled images; moves everything "
         "that varies with the direction"}


class _CurrentRowKeys(QObject):
    """On the list: Return adds the current row's direction, and Tab goes into the current
    row's controls (the Tab order alone goes into the first row's)."""

    def __init__(self, panel: DirectionsPanel):
        super().__init__(panel.list)
        self._panel = panel

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if (event.type() != QEvent.Type.KeyPress
                or event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):
            return False
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return self._panel.add_current()
        if event.key() == Qt.Key.Key_Tab:
            return self._panel.focus_current_row()
        return False


class DirectionsPanel(QWidget):
    add_requested = Signal(object, float)  # DirectionEntry, strength
    discover_requested = Signal()
    words_requested = Signal()
    method_changed = Signal(str)  # a TRANSFERS key: which transfer's entries to show

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.info = QLabel(HOW_TO)
        self.info.setWordWrap(True)
        self.discover_button = QPushButton("Discover")
        self.discover_button.setToolTip(DISCOVER_TIP)
        self.discover_button.clicked.connect(self.discover_requested.emit)
        self.words_button = QPushButton("&Words…")
        self.words_button.setToolTip(WORDS_TIP)
        self.words_button.clicked.connect(self.words_requested.emit)
        self.method = QComboBox()
        for key, text in TRANSFERS:
            self.method.addItem(text, key)
            self.method.setItemData(self.method.count() - 1, TRANSFER_TIPS[key],
                                    Qt.ItemDataRole.ToolTipRole)
        self.method.setToolTip("How a direction found in CLIP space is applied to the "
                               "generator")
        # no label beside it (the column is narrow): a screen reader on Windows or macOS
        # named the box by nothing but its role
        self.method.setAccessibleName("How directions are applied")
        # sized by its longest name, it held the whole side column at 450 px or more, and
        # so the picture small on a small screen: 12 characters, which show each (short)
        # name whole
        self.method.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.method.setMinimumContentsLength(12)
        # activated: every pick of the user's, also of the transfer a fallback shows already
        # (which changes no index, and must still become their choice)
        self.method.activated.connect(
            lambda _i: self.method_changed.emit(self.method.currentData()))
        self.note = QLabel()  # why the transfer shown is not the one chosen
        self.note.setWordWrap(True)
        self.note.hide()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.list = QListWidget()
        self.list.setAccessibleName("Discovered directions")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.hide()
        self.list.setItemDelegate(TextUnderRows(self.list))
        self.list.installEventFilter(_CurrentRowKeys(self))
        self.list.itemSelectionChanged.connect(self._show_titles)
        # letters pick an item, PgDown pages; Del here is not the edit stack's Del
        for widget in (self.method, self.list):
            claim_keys(widget)
        scroll_to_focused_row(self.list)
        top = QHBoxLayout()
        top.addWidget(self.discover_button)
        top.addWidget(self.words_button)
        top.addWidget(self.method, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.note)
        layout.addWidget(self.info)
        layout.addWidget(self.progress)
        layout.addWidget(self.list, 1)
        self._sliders: dict[str, FloatSlider] = {}
        self._entries: list[DirectionEntry] = []
        self._first_controls: list[QWidget] = []  # per row, where Tab into it goes
        self._titles: list[QLabel] = []  # per row: its title and confidence
        self._rediscover = False  # whether Discover would find something new

    # ----------------------------------------------------------------- state
    @property
    def entries(self) -> list[DirectionEntry]:
        return list(self._entries)

    def method_title(self, key: str) -> str:
        """The transfer's name as the box shows it."""
        return dict(TRANSFERS)[key]

    def current_method(self) -> str:
        return str(self.method.currentData())

    def set_method(self, key: str) -> None:
        """Show another transfer's entries (as if the user picked it)."""
        self.method.setCurrentIndex(self._index(key))
        self.method_changed.emit(key)

    def show_method(self, key: str, note: str = "") -> None:
        """Show that `key`'s entries are listed, without emitting method_changed (it is not
        the user's pick), with `note` saying why when it is not the one they chose."""
        self.method.setCurrentIndex(self._index(key))  # no `activated`: not a pick
        self.note.setText(note)
        self.note.setVisible(bool(note))

    def _index(self, key: str) -> int:
        index = self.method.findData(key)
        if index < 0:
            raise ValueError(f"unknown transfer {key!r}")
        return index

    def set_unavailable(self, reason: str) -> None:
        """Discovery cannot run for this pack (e.g. no CLIP model): say why."""
        self.set_directions([])
        self.info.setText(f"Discovered directions are unavailable: {reason}")
        self.discover_button.setEnabled(False)
        self.words_button.setEnabled(False)

    def set_running(self, fraction: float | None = None, message: str = "") -> None:
        """Discovery is under way (the jobs panel can cancel it)."""
        self.discover_button.setEnabled(False)
        self.progress.show()
        if fraction is None:
            self.progress.setRange(0, 0)  # busy
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * max(0.0, min(1.0, fraction))))
        self.progress.setFormat(message or RUNNING)
        self.progress.setTextVisible(True)
        if not self._entries:
            self.info.setText(RUNNING + (f"\n{message}" if message else ""))

    def set_idle(self) -> None:
        """No job running (finished, failed or cancelled): Discover can run (again, if it
        would find something new)."""
        self.progress.hide()
        self.discover_button.setEnabled(self._can_discover())
        if not self._entries:
            self.info.setText(HOW_TO)

    def set_directions(self, entries: list[DirectionEntry], rediscover: bool = False) -> None:
        """List `entries`. With entries, Discover runs again only if `rediscover` (the
        pack changed since they were found): with the same pack it finds the same ones."""
        self._titles = []  # before clear(): its selection change must not reach them
        self.list.clear()
        self._sliders = {}
        self._entries = list(entries)
        controls = []
        self._first_controls = []
        for entry in entries:
            row = self._add_row(entry)
            self._first_controls.append(row[0])
            controls += row
        tab_through_rows(self.list, controls)
        self._show_titles()
        self.progress.hide()
        self.note.hide()
        self._rediscover = rediscover
        self.words_button.setEnabled(True)
        self._show_discover_button()
        self.info.setText(HOW_TO)
        self.info.setVisible(not entries)
        self.list.setVisible(bool(entries))

    def _can_discover(self) -> bool:
        return not self._entries or self._rediscover

    def _show_discover_button(self) -> None:
        if not self._entries:
            text, tip = "Discover", DISCOVER_TIP
        elif self._rediscover:
            text, tip = "Discover again", AGAIN_TIP
        else:  # a run would find the same directions: nothing to offer
            text, tip = "Discovered", DONE_TIP
        self.discover_button.setText(text)
        self.discover_button.setToolTip(tip)
        self.discover_button.setEnabled(self._can_discover())

    def strength(self, key: str) -> float:
        return self._sliders[key].value()

    def _request_add(self, entry: DirectionEntry) -> None:
        self.add_requested.emit(entry, self.strength(entry.key))

    def add_current(self) -> bool:
        """Add the current row's direction at its slider's strength; False if no row is
        current."""
        row = self.list.currentRow()
        if not 0 <= row < len(self._entries):
            return False
        self._request_add(self._entries[row])
        return True

    def focus_current_row(self) -> bool:
        """Move the focus to the current row's first control; False if no row is
        current."""
        row = self.list.currentRow()
        if not 0 <= row < len(self._first_controls):
            return False
        self._first_controls[row].setFocus(Qt.FocusReason.TabFocusReason)
        return True

    # ----------------------------------------------------------------- rows
    def _show_titles(self) -> None:
        """Each row's title with its confidence in the theme's secondary colour (a fixed
        grey was 4:1), or on a selected row in the row's text colour: no grey reads on the
        selection."""
        colour = secondary_text_colour(self.palette()).name()
        for i, label in enumerate(self._titles):
            entry, item = self._entries[i], self.list.item(i)
            confidence = f"{entry.confidence:.0%}"
            if item is None or not item.isSelected():
                confidence = f"<span style='color:{colour}'>{confidence}</span>"
            label.setText(f"{html.escape(entry.title)}  {confidence}")

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) \
                and hasattr(self, "_titles"):  # not while the panel is being built
            self._show_titles()
        super().changeEvent(event)

    def _add_row(self, entry: DirectionEntry) -> list[QWidget]:
        """One direction's row; returns its controls in Tab order."""
        row = QWidget()
        label = QLabel()  # its text: _show_titles
        label.setTextFormat(Qt.TextFormat.RichText)
        self._titles.append(label)
        words = ", ".join(f"{w} {abs(c):.0%}" for w, c in entry.words)
        tip = (f"+ moves toward “{entry.label}”"
               + (f", − toward “{entry.negative_label}”" if entry.negative_label else "")
               + (f"\nLabels (confidence): {words}" if words else "")
               + f"\n{entry.variance:.1%} of the sampled images' variation")
        label.setToolTip(tip)
        slider = FloatSlider(-STRENGTH_RANGE, STRENGTH_RANGE, entry.default_strength)
        unit = ("one standard deviation of this direction among sampled images"
                if entry.method == "w" else "the style channel it moves furthest moves "
                "one standard deviation")
        slider.setToolTip(f"Strength: 1 = {unit}; negative values go the other way")
        add = QPushButton("Add")
        add.setToolTip("Add this direction to the edit stack at the chosen strength")
        add.setAccessibleName(f"Add {entry.title}")
        slider.set_accessible_name(f"Strength of {entry.title}")
        add.clicked.connect(lambda _c=False, e=entry: self._request_add(e))
        top = QHBoxLayout()
        top.addWidget(label, 1)
        top.addWidget(add)
        col = QVBoxLayout(row)
        col.addLayout(top)
        col.addWidget(slider)
        item = QListWidgetItem(entry.title)  # type-ahead and screen readers read it
        # height from the row, width from the list: rows follow the dock's width
        item.setSizeHint(QSize(0, row.sizeHint().height()))
        self.list.addItem(item)
        self.list.setItemWidget(item, row)
        self._sliders[entry.key] = slider
        return [add, *slider.focus_chain()]
