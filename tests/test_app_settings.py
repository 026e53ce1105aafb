"""Where the window keeps its settings."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from editor.ui.app import init_application


def test_window_settings_live_under_atelier_config_dir(qapp, tmp_path, monkeypatch):
    config = tmp_path / "portable-config"
    monkeypatch.setenv("ATELIER_CONFIG_DIR", str(config))
    init_application()
    settings = QSettings()
    settings.setValue("view/theme", "dark")
    settings.sync()
    written = [p for p in config.rglob("*") if p.is_file()]
    assert len(written) == 1, written
    assert "theme=dark" in written[0].read_text()
    assert QSettings().value("view/theme") == "dark"


def test_without_a_display_the_window_says_so_instead_of_aborting(monkeypatch, capsys):
    # Qt's xcb plugin aborted the program (exit 134) after seconds of imports, with
    # advice about a library that was installed.
    from editor.ui import app

    monkeypatch.setattr(app.sys, "platform", "linux")
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    assert app.run_app([]) == 1
    assert "no display to open the editor's window on" in capsys.readouterr().err
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert app.missing_display() is None


def test_a_display_that_does_not_answer_is_said_before_qt_aborts(monkeypatch, capsys,
                                                                 tmp_path):
    # DISPLAY=:77 left from an old ssh or tmux session: Qt aborted (exit 134) advising to
    # install libxcb-cursor0, which was installed.
    import socket

    from editor.ui import app

    monkeypatch.setattr(app.sys, "platform", "linux")
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", ":7977")
    assert app.run_app([]) == 1
    assert "the display DISPLAY=:7977 does not answer" in capsys.readouterr().err
    monkeypatch.setenv("DISPLAY", "localhost:7977.0")  # ssh's forwarding, over TCP
    assert "does not answer" in app.missing_display()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:  # an X server
        server.bind("\0/tmp/.X11-unix/X7977")
        server.listen()
        monkeypatch.setenv("DISPLAY", ":7977.0")
        assert app.missing_display() is None
    monkeypatch.setenv("DISPLAY", "weird display name")  # not understood: left to Qt
    assert app.missing_display() is None
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-7")
    assert "WAYLAND_DISPLAY=wayland-7 does not answer" in app.missing_display()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(tmp_path / "wayland-7"))
        server.listen()
        assert app.missing_display() is None


def test_ctrl_c_in_the_terminal_closes_the_window(qtbot):
    # The interrupt was raised inside a Qt event filter, swallowed, and the window stayed.
    import signal

    from PySide6.QtWidgets import QWidget

    from editor.ui import app

    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    before = signal.getsignal(signal.SIGINT)
    waker = app.quit_on_interrupt(window)
    try:
        signal.raise_signal(signal.SIGINT)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=3000)
    finally:
        waker.restore()
        signal.signal(signal.SIGINT, before)


def test_ctrl_c_wakes_an_idle_event_loop_without_a_polling_timer(qtbot):
    # Python runs a signal's handler only when it next runs: a timer woke the process
    # five times a second, for the whole session, to give it the chance.
    import os
    import signal
    import threading

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QWidget

    from editor.ui import app

    window = QWidget()
    qtbot.addWidget(window)
    timers_before = len(window.findChildren(QTimer))
    before = signal.getsignal(signal.SIGINT)
    waker = app.quit_on_interrupt(window)
    try:
        assert len(window.findChildren(QTimer)) == timers_before
        loop = QEventLoop()
        what = []
        # the handler looks the window's close up when the signal comes
        window.close = lambda: (what.append("closed"), loop.quit())
        QTimer.singleShot(5000, lambda: (what.append("gave up"), loop.quit()))
        # sent from another thread while the loop waits in C++, running no Python
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        loop.exec()
        assert what[:1] == ["closed"]
    finally:
        waker.restore()
        signal.signal(signal.SIGINT, before)


def test_missing_x11_libraries_are_named_before_qt_aborts(monkeypatch, capsys):
    # With libxcb-icccm4 and libxcb-keysyms1 missing (a minimal Debian 12 with Xvfb), Qt
    # aborted the program (exit 134) saying "xcb-cursor0 or libxcb-cursor0 is needed",
    # which was installed.
    from editor.ui import app

    loads = app.library_loads
    assert loads("libc.so.6") and not loads("libnot-a-library.so.9")
    monkeypatch.setattr(app.sys, "platform", "linux")
    for name in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(app, "missing_display", lambda: None)  # a display that answers
    gone = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    monkeypatch.setattr(app, "library_loads", lambda name: name not in gone)

    class WentOn(Exception):
        pass

    def went_on():
        raise WentOn

    # said before Qt starts, and the start goes on (a later PySide6 may need fewer)
    monkeypatch.setattr(app, "serial_ui_thread", went_on)
    with pytest.raises(WentOn):
        app.run_app([])
    err = capsys.readouterr().err
    assert err.startswith("atelier: warning: the window may not open on X11")
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1 are not installed" in err
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1)" in err
    assert "cursor" not in err
    for platform in ("offscreen", "wayland"):  # no xcb: none of them needed
        monkeypatch.setenv("QT_QPA_PLATFORM", platform)
        assert app.missing_window_libraries() is None
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")  # Qt's choice there
    assert app.missing_window_libraries() is None
    monkeypatch.delenv("WAYLAND_DISPLAY")
    monkeypatch.setattr(app, "library_loads", lambda name: True)
    assert app.missing_window_libraries() is None
