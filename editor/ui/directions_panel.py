"""Discovered directions (CLIP2StyleGAN): labelled directions found without prompts, each
with a slider and "add to stack".

The list is filled from a discovery result (label, confidence, a style delta per unit
strength); until discovery has been run for the model pack, the panel says how to run it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .sliders import FloatSlider

HOW_TO = ("No discovered directions for this model pack yet.\n\n"
          "Discovery finds edit directions without prompts (CLIP2StyleGAN) and labels them "
          "with words. It is not part of this version yet; prompt edits above work now.")


@dataclass(frozen=True)
class DirectionEntry:
    """One discovered direction as the UI sees it: plain data, no tensors."""

    key: str
    label: str
    confidence: float
    delta: tuple[float, ...]  # flat style delta for strength 1


class DirectionsPanel(QWidget):
    add_requested = Signal(object, float)  # DirectionEntry, strength

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.info = QLabel(HOW_TO)
        self.info.setWordWrap(True)
        self.list = QListWidget()
        self.list.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addWidget(self.list, 1)
        self._sliders: dict[str, FloatSlider] = {}

    def set_directions(self, entries: list[DirectionEntry]) -> None:
        self.list.clear()
        self._sliders = {}
        for entry in entries:
            row = QWidget()
            label = QLabel(f"{entry.label}  <span style='color:gray'>"
                           f"{entry.confidence:.0%}</span>")
            slider = FloatSlider(-10.0, 10.0, 0.0)
            add = QPushButton("Add")
            add.setToolTip("Add this direction to the edit stack at the chosen strength")
            add.clicked.connect(lambda _c=False, e=entry, s=slider:
                                self.add_requested.emit(e, s.value() or 3.0))
            top = QHBoxLayout()
            top.addWidget(label, 1)
            top.addWidget(add)
            col = QVBoxLayout(row)
            col.addLayout(top)
            col.addWidget(slider)
            item = QListWidgetItem()
            item.setSizeHint(row.sizeHint())
            self.list.addItem(item)
            self.list.setItemWidget(item, row)
            self._sliders[entry.key] = slider
        self.info.setVisible(not entries)
        self.list.setVisible(bool(entries))
