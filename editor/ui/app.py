"""Application start-up: QApplication, identity for QSettings, icon, main window."""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import threading

from PySide6.QtCore import QObject, QSettings, QSocketNotifier, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QWidget

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


HEADLESS_ADVICE = ("Run it on a desktop, or use the headless commands (atelier --help); "
                   "QT_QPA_PLATFORM=offscreen runs the window without a screen.")


def missing_display() -> str | None:
    """Why no window can be shown here, or None. On Linux without a display Qt's xcb
    plugin aborts the program (exit 134) with advice about a library; this says why. A
    display that is named but does not answer (a stale DISPLAY in ssh or tmux) counts."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    x11, wayland = os.environ.get("DISPLAY"), os.environ.get("WAYLAND_DISPLAY")
    if not x11 and not wayland:
        return ("no display to open the editor's window on (neither DISPLAY nor "
                "WAYLAND_DISPLAY is set). " + HEADLESS_ADVICE)
    answers = [x11_display_answers(x11) if x11 else False,
               wayland_display_answers(wayland) if wayland else False]
    if any(a is not False for a in answers):  # one answers, or cannot be told
        return None
    named = " or ".join(f"{k}={v}" for k, v in (("DISPLAY", x11), ("WAYLAND_DISPLAY", wayland))
                        if v)
    return f"the display {named} does not answer (is it still open?). " + HEADLESS_ADVICE


# What Qt's xcb platform plugin (PySide6's wheels: libqxcb.so and libQt6XcbQpa) links to
# besides Qt and the C/C++ runtime, each with its Debian/Ubuntu package. Without one of them
# Qt aborts the program (exit 134, "Aborted (core dumped)"), and its message names
# xcb-cursor0 whatever is missing (seen with libxcb-cursor0 installed and libxcb-icccm4
# missing).
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libGL.so.1": "libgl1",
    "libglib-2.0.so.0": "libglib2.0-0",
}


def missing_window_libraries() -> str | None:
    """Why Qt's xcb plugin cannot load here (system libraries it needs are missing), or
    None; checked only where the window would use it (X11, no platform chosen)."""
    if not sys.platform.startswith("linux") or not os.environ.get("DISPLAY") \
            or os.environ.get("QT_QPA_PLATFORM", "xcb") != "xcb" \
            or (not os.environ.get("QT_QPA_PLATFORM") and os.environ.get("WAYLAND_DISPLAY")):
        return None
    missing = [name for name in XCB_LIBRARIES if not library_loads(name)]
    if not missing:
        return None
    return (f"the window may not open on X11: the system libraries {', '.join(missing)} "
            f"are not installed (Debian/Ubuntu: sudo apt install "
            f"{' '.join(XCB_LIBRARIES[m] for m in missing)}). The headless commands "
            f"(atelier --help) need none of them; QT_QPA_PLATFORM=offscreen runs the window "
            f"without a screen.")


def library_loads(name: str) -> bool:
    """Whether the dynamic linker finds and loads the shared library `name`."""
    import ctypes

    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def x11_display_answers(display: str) -> bool | None:
    """Whether an X server takes connections at `display` (":0", "localhost:10.0");
    None for a name this cannot read (left to Qt)."""
    match = re.fullmatch(r"(?P<host>[\w.-]*)(?:/unix)?:(?P<number>\d+)(?:\.\d+)?", display)
    if match is None:
        return None
    host, number = match["host"], int(match["number"])
    if host in ("", "unix"):
        socket_path = f"/tmp/.X11-unix/X{number}"
        # Linux servers listen on an abstract socket and the file; either will do
        return any(_connects(socket.AF_UNIX, address)
                   for address in ("\0" + socket_path, socket_path))
    return _connects(socket.AF_INET, (host, 6000 + number))


def wayland_display_answers(name: str) -> bool:
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    path = name if os.path.isabs(name) else os.path.join(runtime, name)
    return _connects(socket.AF_UNIX, path)


def _connects(family: int, address) -> bool:
    try:
        if family == socket.AF_INET:
            socket.create_connection(address, timeout=2).close()
            return True
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(address)
        return True
    except OSError:
        return False


def unusable_device(device: str) -> str | None:
    """Why the device named on the command line cannot be used here, or None: said before
    a window opens, as the other commands say it."""
    from editor.core.devices import pick_device

    try:
        pick_device(device)
    except AtelierError as e:
        return str(e)
    return None


class _SignalWaker(QObject):
    """Python runs a signal's handler only when it next runs, and Qt's loop may wait in
    C++ for minutes. Python writes a byte to a socket on every signal
    (signal.set_wakeup_fd); this reads it in the loop, which runs the handler. No timer
    wakes the process while nothing happens."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno())
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read,
                                         self)
        self._notifier.activated.connect(self._drain)

    def _drain(self) -> None:
        try:
            while self._reader.recv(64):
                pass
        except BlockingIOError:
            pass

    def restore(self) -> None:
        """Python's earlier wakeup fd back, the sockets closed."""
        self._notifier.setEnabled(False)
        signal.set_wakeup_fd(self._old_fd)
        self._reader.close()
        self._writer.close()


def quit_on_interrupt(window: QWidget) -> _SignalWaker:
    """Ctrl+C in the terminal that started the editor closes its window as the close
    button would (asking about unsaved work): by default it raised KeyboardInterrupt in
    whatever Python code Qt ran next, which Qt swallowed, and the window stayed."""
    signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, window.close))
    return _SignalWaker(window)


def run_app(paths: list[str] | None = None, device: str | None = None) -> int:
    """`device`: auto, cpu, cuda or cuda:N for this run (None: the one chosen last)."""
    if (problem := missing_display()) is not None:
        print(f"atelier: {problem}", file=sys.stderr)
        return 1
    if (missing := missing_window_libraries()) is not None:
        # said, not refused: the list is what PySide6's plugin links to now, and a later one
        # may need less; where one is really missing, Qt aborts next, naming another
        print(f"atelier: warning: {missing}", file=sys.stderr)
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
    waker = quit_on_interrupt(window)
    # what a killed earlier run left half-written in the cache (a pack, an import's copy)
    threading.Thread(target=sweep_stale_temps, args=(cache_dir(),), daemon=True,
                     name="stale temp sweep").start()
    status = app.exec()
    waker.restore()
    note_exit_status(status)
    return status
