"""The question asked before a session or a picture's recipe made with another generator
opens: its own generator (where that file is here), the one open, or neither."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from editor.engine.session import ModelIdentity

from .keys import menu_text

OPEN_ITS_OWN, SHOW_WITH_OPEN = "own", "open"


def ask_which_generator(parent: QWidget, name: str, made: ModelIdentity,
                        open_name: str) -> str | None:
    """OPEN_ITS_OWN, SHOW_WITH_OPEN or None (cancelled). The picture drawn by another
    generator differs, and saving records that generator instead of the one made with."""
    here = bool(made.path) and Path(made.path).is_file()
    where = f" ({made.path})" if made.path else ""
    box = QMessageBox(QMessageBox.Icon.Question, "Made with another generator",
                      f"{name} was made with {made.name}{where}; {open_name} is open." + (
                          f"\n\nOpen {made.name} for it?" if here else
                          f"\n\n{made.name} is not here. Show {name} with {open_name}? Its "
                          f"picture will differ, and saving records {open_name}."), parent=parent)
    # the names are files' ("R&D faces"): an '&' in them is shown, not taken for a mnemonic
    own = box.addButton(menu_text(f"Open {made.name}"), QMessageBox.ButtonRole.AcceptRole) \
        if here else None
    other = box.addButton(menu_text(f"Show with {open_name}"),
                          QMessageBox.ButtonRole.ApplyRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(own or other)
    box.exec()
    clicked = box.clickedButton()
    return OPEN_ITS_OWN if own is not None and clicked is own else \
        SHOW_WITH_OPEN if clicked is other else None
