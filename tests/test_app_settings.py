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
