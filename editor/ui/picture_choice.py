"""The questions asked of a picture that carries a recipe (an export of this program): replay
the recipe, which draws the exported picture exactly, or invert the pixels as they are now
(retouched since, say); and, where its recipe cannot be used, whether to invert it instead."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

REPLAY, INVERT = "replay", "invert"


def ask_replay_or_invert(parent: QWidget, name: str) -> str | None:
    """REPLAY, INVERT or None (cancelled), for a picture opened as a picture."""
    box = QMessageBox(QMessageBox.Icon.Question, "Open image",
                      f"{name} carries the recipe it was exported with.\n\nReplay the recipe "
                      "(the exported picture exactly, with its edits), or invert the picture "
                      "(its pixels as they are now, retouched or not: a new source)?",
                      parent=parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    replay = box.addButton("Replay the recipe", QMessageBox.ButtonRole.AcceptRole)
    invert = box.addButton("Invert the picture", QMessageBox.ButtonRole.ApplyRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(replay)
    box.exec()
    clicked = box.clickedButton()
    return REPLAY if clicked is replay else INVERT if clicked is invert else None


def ask_invert_instead(parent: QWidget, name: str, why: str) -> bool:
    """Whether to invert a picture whose recipe cannot be used (`why`, in words)."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Cannot use the recipe",
                      f"{why}\n\nInvert the picture instead? Its pixels become a new source; "
                      f"the recipe in {name} is not used.", parent=parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    invert = box.addButton("Invert the picture", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(invert)
    box.exec()
    return box.clickedButton() is invert
