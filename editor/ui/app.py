"""Application start-up: QApplication, identity for QSettings, icon, main window."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from editor.engine.compute_threads import serial_ui_thread

ICON = Path(__file__).resolve().parents[2] / "resources" / "icons" / "latent-atelier.svg"


def init_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName("LatentAtelier")
    app.setApplicationName("Latent Atelier")
    app.setDesktopFileName("latent-atelier")
    if ICON.exists():
        app.setWindowIcon(QIcon(str(ICON)))
    return app


def run_app(paths: list[str] | None = None) -> int:
    serial_ui_thread()  # before any tensor work: the render worker gets the cores
    app = init_application()
    from .main_window import MainWindow

    window = MainWindow()
    for path in paths or []:
        window.open_generator(path)
    window.show()
    return app.exec()
