"""Warnings about background work that finished while the user went on working, and the
words of errors that several flows show."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from editor.core.errors import OUT_OF_GPU_MEMORY, ImageLoadError, says_out_of_memory
from editor.engine.renderer import DEVICE_MENU


def notice(parent: QWidget, title: str, text: str,
           icon: QMessageBox.Icon = QMessageBox.Icon.Information,
           buttons: QMessageBox.StandardButton = QMessageBox.StandardButton.Ok) -> QMessageBox:
    """A box to open without waiting (`open()`: a job's slot must return, and a modal
    one held the job "running"), deleted when closed; buttons may be added before."""
    box = QMessageBox(icon, title, text, buttons, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    return box


def show_warning(parent: QWidget, title: str, text: str) -> QMessageBox:
    """A warning the user must see but that does not stop the window (a job's result came
    with a problem): opened without waiting, deleted when closed."""
    box = notice(parent, title, text, QMessageBox.Icon.Warning)
    box.open()
    return box


def failed_job_text(message: str, progress_kept: bool = False) -> str:
    """A failed job's line, with what to do when it ran out of memory: the job shares the
    memory with the renders and any other job, and may run on the CPU instead.
    `progress_kept`: the job saves its progress when it fails (a precompute, a discovery)."""
    if not says_out_of_memory(message):
        return message
    if message.startswith(OUT_OF_GPU_MEMORY):
        advice = ("Cancel other running jobs or close other programs that use the GPU, or "
                  f"run it on the CPU ({DEVICE_MENU}).")
    else:
        advice = "Cancel other running jobs or close other programs, then try again."
    kept = " Its progress is saved: running it again resumes." if progress_kept else ""
    return f"{message}.\n\n{advice}{kept}"


def cannot_open_image_text(e: Exception, name: str | None = None) -> str:
    """Why a picture cannot be opened, for a box titled so: the picture's name (`name`, or
    its file's) and the reason; the message's "Cannot open image '/the/whole/path'" is for
    a terminal, and a pasted picture's path is a temporary file's."""
    if isinstance(e, ImageLoadError) and e.why:
        return f"{name or Path(e.path or '').name}: {e.why}."
    return str(e)
