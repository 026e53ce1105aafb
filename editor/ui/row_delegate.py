"""A list whose rows are widgets (the edit stack, the discovered directions) gives each item
its row's title as text: typing a letter finds a row and a screen reader reads it. The
row's widget shows the title, so the item does not draw it under the row as well."""

from __future__ import annotations

from PySide6.QtWidgets import QStyledItemDelegate


class TextUnderRows(QStyledItemDelegate):
    def initStyleOption(self, option, index) -> None:  # noqa: N802 - Qt override
        super().initStyleOption(option, index)
        option.text = ""
