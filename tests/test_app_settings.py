"""Where the window keeps its settings."""

from __future__ import annotations

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
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert app.missing_display() is None
    monkeypatch.delenv("WAYLAND_DISPLAY")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert app.missing_display() is None
