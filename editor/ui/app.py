"""Application start-up: QApplication, identity for QSettings, icon, main window."""

from __future__ import annotations

import os
import sys
import threading

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from editor.core.errors import AtelierError
from editor.core.paths import CONFIG_ENV, RESOURCES_DIR, cache_dir, config_dir, sweep_stale_temps
from editor.engine.compute_threads import serial_ui_thread
from editor.engine.jobs import note_exit_status

ICON = RESOURCES_DIR / "icons" / "latent-atelier.svg"


def init_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName("LatentAtelier")
    app.setApplicationName("Latent Atelier")
    app.setDesktopFileName("latent-atelier")
    place_settings()
    if ICON.exists():
        app.setWindowIcon(QIcon(str(ICON)))
    return app


def place_settings() -> None:
    """With ATELIER_CONFIG_DIR set, the window's settings (geometry, recent files, export
    choices, theme) live there too, as an INI file, beside the zoo entries: one variable
    keeps a portable install, a test or a second profile away from the user's own."""
    if os.environ.get(CONFIG_ENV):
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                          str(config_dir() / "window"))


def missing_display() -> str | None:
    """Why no window can be shown here, or None. On Linux without a display Qt's xcb
    plugin aborts the program (exit 134) with advice about a library; this says why."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display to open the editor's window on (neither DISPLAY nor "
            "WAYLAND_DISPLAY is set). Run it on a desktop, or use the headless commands "
            "(atelier --help); QT_QPA_PLATFORM=offscreen runs the window without a screen.")


def unusable_device(device: str) -> str | None:
    """Why the device named on the command line cannot be used here, or None: said before
    a window opens, as the other commands say it."""
    from editor.engine.renderer import pick_device

    try:
        pick_device(device)
    except AtelierError as e:
        return str(e)
    return None


def run_app(paths: list[str] | None = None, device: str | None = None) -> int:
    """`device`: auto, cpu, cuda or cuda:N for this run (None: the one chosen last)."""
    if (problem := missing_display()) is not None:
        print(f"atelier: {problem}", file=sys.stderr)
        return 1
    serial_ui_thread()  # before any tensor work: the render worker gets the cores
    if device is not None and (problem := unusable_device(device)) is not None:
        print(f"atelier gui: {problem}", file=sys.stderr)
        return 2
    app = init_application()
    from .main_window import MainWindow, names_a_generator

    # a generator named starts the window; other files (a picture given to "Open with")
    # open on the model used last
    window = MainWindow(open_last_model=not any(map(names_a_generator, paths or [])),
                        device=device)
    for path in paths or []:
        window.open_at_start(path)
    window.show()
    # what a killed earlier run left half-written in the cache (a pack, an import's copy)
    threading.Thread(target=sweep_stale_temps, args=(cache_dir(),), daemon=True,
                     name="stale temp sweep").start()
    status = app.exec()
    note_exit_status(status)
    return status
