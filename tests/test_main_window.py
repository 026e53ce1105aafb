"""The real main window, driven offscreen: open a model, change the seed, bad files."""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np
import pytest
import torch
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from editor.core.checkpoints import save_generator
from editor.engine import render_worker
from editor.engine.renderer import Renderer
from editor.ui import settings_values
from editor.ui.app import init_application
from editor.ui.main_window import MainWindow
from tests.conftest import (
    close_without_questions,
    discard_on_close,
    make_tiny_generator,
    model_ready,
)


def _settings_in(folder) -> None:
    """The application, with the window's settings in an INI file of the test's own."""
    init_application()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))


def _recent_files(win) -> list[QAction]:
    """Open recent's files, without the Clear list below them."""
    actions = win.recent_menu.actions()
    return actions[:next((i for i, a in enumerate(actions) if a.isSeparator()), len(actions))]


def _demo_generator(tmp_path, monkeypatch, **tiny):
    """A tiny generator standing in for the demo pack (the window's fallback)."""
    demo = save_generator(make_tiny_generator(**tiny), tmp_path / "demo.safetensors")
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: demo)
    return demo


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    win = MainWindow(Renderer(device="cpu"))
    qtbot.addWidget(win)
    yield win
    close_without_questions(win, qtbot)


def _image_bytes(win):
    return None if win.last_result is None else win.last_result.image.copy()


def test_opens_a_generator_and_follows_the_seed(window, qtbot, tmp_path):
    path = save_generator(make_tiny_generator(resolution=32), tmp_path / "tiny.safetensors")
    window.open_generator(str(path))
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=10_000)
    first = _image_bytes(window)
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    # the status bar says what is open in words; the file's format is in its tooltip
    assert window.status_model.text() == "tiny · 32 px"
    # (after the whole text, where the field is too narrow for it: this window is not shown)
    assert window.status_model.toolTip().endswith(f"{path}\natelier checkpoint")
    assert window.status_zoom.text() == "zoom: fit"
    window.source_panel.step_seed(+1)
    seq = window.last_request.seq
    qtbot.waitUntil(lambda: window.last_result.seq >= seq, timeout=10_000)
    assert not np.array_equal(_image_bytes(window), first)
    # the canvas shows it
    assert window.canvas.current_image() is not None


def test_a_bad_file_shows_a_message_and_keeps_the_current_model(window, qtbot, tmp_path,
                                                                 monkeypatch):
    good = save_generator(make_tiny_generator(), tmp_path / "good.safetensors")
    window.open_generator(str(good))
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=10_000)
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x04 not really a pickle")
    window.open_generator(str(bad))
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert "bad.pt" in shown[0]
    assert window.model is not None and window.model.name == "good"


def test_a_new_model_whose_first_picture_fails_does_not_show_the_last_ones(
        window, qtbot, tmp_path, monkeypatch):
    # a model that opens but cannot draw (out of memory): the last model's picture and its
    # original stayed on the canvas, under the new model's name in the status bar, with
    # the message why hidden behind them
    old = save_generator(make_tiny_generator(resolution=32), tmp_path / "old.safetensors")
    new = save_generator(make_tiny_generator(resolution=16, seed=3), tmp_path / "new.safetensors")
    window.open_generator(str(old))
    window.canvas.set_split(True)  # its original too
    qtbot.waitUntil(lambda: window.last_result is not None
                    and window.last_result.before is not None, timeout=10_000)
    render = Renderer._render
    failing = [True]

    def out_of_memory(renderer, request, *args):
        if failing[0] and renderer.generator.img_resolution == 16:
            raise torch.OutOfMemoryError("out of memory")
        return render(renderer, request, *args)

    monkeypatch.setattr(Renderer, "_render", out_of_memory)
    window.open_generator(str(new))
    qtbot.waitUntil(lambda: window.canvas.message.startswith("This picture cannot be drawn"),
                    timeout=10_000)
    assert window.status_model.text() == "new · 16 px"
    assert window.canvas.current_image() is None and "out of memory" in window.canvas.message
    assert "from before" not in window.status_time.toolTip()  # no picture is shown
    failing[0] = False  # the next picture draws
    window.source_panel.step_seed(+1)
    qtbot.waitUntil(lambda: window.canvas.current_image() is not None, timeout=10_000)
    assert window.last_result.image.shape == (16, 16, 3)
    assert window.last_result.before.shape == (16, 16, 3)
    # a later change that fails leaves that picture, and says it is not the state's
    drawn = window.canvas.current_image()
    failing[0] = True
    window.source_panel.step_seed(+1)
    qtbot.waitUntil(lambda: window.status_time.text() == "⚠ not drawn", timeout=10_000)
    assert "out of memory" in window.status_time.toolTip()
    assert "The picture shown is from before it" in window.status_time.toolTip()
    assert window.canvas.current_image() == drawn
    failing[0] = False
    window.source_panel.step_seed(+1)
    qtbot.waitUntil(lambda: window.status_time.text().endswith("ms (full)"), timeout=10_000)
    assert window.status_time.toolTip() == ""


def test_a_loaded_model_whose_first_picture_is_on_its_way_says_it_is_drawn(
        window, qtbot, tmp_path, monkeypatch):
    # "Loading big.pt …" stayed on the canvas for the seconds a 1024 px model's first
    # picture took on a CPU, after the model had loaded (helper-150)
    import threading

    gen = save_generator(make_tiny_generator(resolution=16), tmp_path / "big.safetensors")
    go = threading.Event()
    render = Renderer._render

    def slow(renderer, request, *args):
        go.wait(20)
        return render(renderer, request, *args)

    monkeypatch.setattr(Renderer, "_render", slow)
    window.canvas.show_message("")  # no picture shown, as at the start
    try:
        window.open_generator(str(gen))
        assert window.canvas.message == "Loading big.safetensors …"
        qtbot.waitUntil(lambda: window.pack is not None
                        and window.pack.model.path == str(gen), timeout=10_000)
        assert window.canvas.message == "Drawing big …"
    finally:
        go.set()
    qtbot.waitUntil(lambda: window.canvas.current_image() is not None, timeout=10_000)


def test_a_drags_previews_are_shown_as_large_as_the_picture(qtbot, tmp_path, monkeypatch):
    # at a chosen zoom a drag's previews (256 px of a 1024 px model) were drawn at their
    # own size: the picture shrank to a quarter while the hand moved and jumped back
    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    win = MainWindow(Renderer(device="cpu", preview_res=16))
    qtbot.addWidget(win)
    try:
        win.open_generator(str(save_generator(make_tiny_generator(resolution=32),
                                              tmp_path / "g.safetensors")))
        qtbot.waitUntil(lambda: win.last_result is not None, timeout=10_000)
        win.canvas.set_zoom(2.0)
        shown = []
        win.worker.rendered.connect(  # after the window's own slot
            lambda r: shown.append((r.preview, win.canvas.image_rect().size().toTuple())))
        win._set_psi(0.5)  # a change while the hand moves: interactive
        qtbot.waitUntil(lambda: any(not preview for preview, _ in shown), timeout=10_000)
        assert shown[0] == (True, (64.0, 64.0)) and shown[-1] == (False, (64.0, 64.0))
        assert win.canvas.current_image().width() == 32
    finally:
        close_without_questions(win, qtbot)


BAD_SETTINGS = {
    "window/geometry": ["garbage", 42, b"\x01\x02garbage bytes"],
    "window/state": ["garbage", ["a", "b"]],
    "source/seed": ["hello", 3.5, -5, 2**32, "99999999999999999999"],
    "source/psi": ["hello", "nan", -50, 1e300],
    "recent/files": [5, "none-exists.pt", ["ok.pt", 3, None]],
    "view/theme": [7],
    "model/last_path": [["a", "b"]],
    "export/quality": ["abc", "99999999999999999999"],
    "export/sweep_start": ["nan", "inf"],
}


@pytest.mark.parametrize("key, value", [(k, v) for k, vs in BAD_SETTINGS.items() for v in vs])
def test_bad_values_in_the_settings_file_never_stop_the_window(qtbot, tmp_path, monkeypatch,
                                                               key, value):
    # Each of these raised from MainWindow() (TypeError, ValueError, OverflowError): the
    # program did not start until the user found and deleted the settings file.
    from editor.engine.session import MAX_SEED
    from editor.ui.export_dialog import ExportDialog

    _settings_in(tmp_path)
    QSettings().setValue(key, value)
    QSettings().sync()
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    win = MainWindow(Renderer(device="cpu"))
    qtbot.addWidget(win)
    try:
        assert 0 <= win.document.state.session.source.seed <= MAX_SEED
        assert -1 <= win.document.state.session.source.psi <= 2
        assert 200 <= win.width() and 200 <= win.height()
        assert all(isinstance(a.toolTip(), str) and len(a.text()) > 1
                   for a in _recent_files(win))
        dialog = ExportDialog(win.document.state.session, parent=win)  # reads export/*
        qtbot.addWidget(dialog)
        assert 1 <= dialog.quality_box.value() <= 100
    finally:
        close_without_questions(win, qtbot)


def test_open_recent_lists_no_more_than_its_own_number_from_a_longer_list(
        qtbot, tmp_path, monkeypatch):
    # a settings file listing 3,000 recent files (hand-edited, or written by another
    # program): all of them were in Open recent, a menu far taller than the screen
    from editor.ui.main_window import MAX_RECENT

    _settings_in(tmp_path)
    QSettings().setValue("recent/files", [f"/gone/s{i}.atelier.json" for i in range(3000)])
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    win = MainWindow(Renderer(device="cpu"), open_last_model=False)
    qtbot.addWidget(win)
    try:
        assert [a.toolTip() for a in _recent_files(win)] == [
            f"/gone/s{i}.atelier.json" for i in range(MAX_RECENT)]
    finally:
        close_without_questions(win, qtbot)


def test_the_seed_and_psi_come_back_after_a_restart(window, qtbot):
    # only the seed was remembered: on a real model the same seed at the default ψ 0.7
    # was another face than the one the user left
    window.source_panel.seed_box.setValue(1234)
    window.source_panel.psi_box.setValue(0.45)
    close_without_questions(window, qtbot)
    again = MainWindow(Renderer(device="cpu"))  # the same settings file
    qtbot.addWidget(again)
    try:
        source = again.document.state.session.source
        assert (source.seed, source.psi) == (1234, 0.45)
    finally:
        close_without_questions(again, qtbot)


def test_the_window_comes_back_as_it_was_left_without_an_empty_jobs_panel(window, qtbot,
                                                                        tmp_path):
    # The size, the panels' sizes and the last folder come back; the Jobs panel, in view
    # when the window closed (a job had run), came back too, empty, under the picture.
    from tests.test_editor_window import show_active

    show_active(window, qtbot)
    window.resize(700, 520)
    window.resizeDocks([window.source_dock], [330], Qt.Orientation.Horizontal)
    window.jobs_dock.show()
    window._remember_dir(str(tmp_path / "photos" / "me.jpg"))
    qtbot.wait(20)
    size, side = window.size(), window.source_dock.width()
    close_without_questions(window, qtbot)
    again = MainWindow(Renderer(device="cpu"), open_last_model=False)
    qtbot.addWidget(again)
    try:
        show_active(again, qtbot)
        assert again.size() == size and again.source_dock.width() == side
        assert again._last_dir() == str(tmp_path / "photos")
        assert again.jobs_dock.isHidden()
        assert again.jobs_dock not in again._focus_areas()  # F6 passes it by
    finally:
        close_without_questions(again, qtbot)


def test_the_jobs_panel_is_out_of_the_way_after_a_restart(window, qtbot):
    # Shown when a job started, it was saved as shown with the window's layout: every
    # later start opened with an empty Jobs panel under the picture
    window.show()
    job = window.jobs.submit("quick", lambda token: 1)
    qtbot.waitUntil(lambda: not job.is_active, timeout=10_000)
    assert window.jobs_dock.isVisible()
    close_without_questions(window, qtbot)
    again = MainWindow(Renderer(device="cpu"))  # the same settings file
    qtbot.addWidget(again)
    try:
        again.show()
        assert again.jobs_dock.isHidden()
        job = again.jobs.submit("another", lambda token: 1)
        qtbot.waitUntil(lambda: not job.is_active, timeout=10_000)
        assert again.jobs_dock.isVisible()  # back where it was left
        assert again.dockWidgetArea(again.jobs_dock) == Qt.DockWidgetArea.BottomDockWidgetArea
    finally:
        close_without_questions(again, qtbot)


def test_open_latent_and_open_image_start_the_next_dialog_in_their_folder(
        window, tmp_path, monkeypatch):
    # only sessions and generators moved the folder the file dialogs start in
    from PySide6.QtWidgets import QFileDialog

    win = window
    (tmp_path / "latents").mkdir()
    (tmp_path / "photos").mkdir()
    started_in: list[str] = []
    picks = iter([str(tmp_path / "latents" / "w.npy"), str(tmp_path / "photos" / "me.jpg"),
                  ""])

    def pick(_parent, _title, start, _filter):
        started_in.append(start)
        return next(picks), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", pick)
    monkeypatch.setattr(win, "open_latent", lambda path: None)
    monkeypatch.setattr(win, "_open_image_or_recipe", lambda path, **_k: None)
    win.open_latent_dialog()
    win.open_image_dialog()
    win.open_latent_dialog()
    assert started_in[1:] == [str(tmp_path / "latents"), str(tmp_path / "photos")]


def _tab_through(win, presses: int = 80) -> list:
    reached = []
    for _ in range(presses):
        QTest.keyClick(QApplication.focusWidget() or win, Qt.Key.Key_Tab)
        reached.append(QApplication.focusWidget())
    return reached


def test_tab_skips_the_dock_behind_the_current_tab(window, qtbot):
    """Tab moves through what can be seen: never into the dock behind another's tab."""
    from tests.test_editor_window import show_active

    show_active(window, qtbot)
    window.stack_dock.raise_()
    qtbot.waitUntil(lambda: not window.directions_panel.isEnabled())
    reached = _tab_through(window)
    assert not [w for w in reached if window.directions_dock.isAncestorOf(w)]

    window.directions_dock.raise_()  # the other tab: now its widgets, not the stack's
    qtbot.waitUntil(window.directions_panel.isEnabled)
    reached = _tab_through(window)
    assert [w for w in reached if window.directions_dock.isAncestorOf(w)]
    assert not [w for w in reached if window.stack_dock.isAncestorOf(w)]


def test_the_demo_pack_loaded_at_start_keeps_the_users_recent_files_and_folder(
        window, qtbot, tmp_path):
    # Every start loads the demo generator, which put it first in Open recent and made the
    # program's own folder the one the file dialogs start in.
    from editor.engine.models import DEMO_GENERATOR

    mine = save_generator(make_tiny_generator(resolution=32), tmp_path / "mine.safetensors")
    window.open_generator(str(mine))
    qtbot.waitUntil(lambda: model_ready(window)
                    and window.pack.model.path == str(mine), timeout=10_000)
    window.open_generator(str(DEMO_GENERATOR))
    # its file is generator.safetensors, a name that says nothing
    assert window.canvas.message == "Loading the demo pack …"
    qtbot.waitUntil(lambda: model_ready(window)
                    and window.pack.model.path == str(DEMO_GENERATOR), timeout=20_000)
    assert [a.toolTip() for a in _recent_files(window)] == [str(mine)]
    assert window._last_dir() == str(tmp_path)


def test_recent_files_of_one_name_say_their_folders_and_paths_show(window, tmp_path):
    # two "session.atelier.json" read the same in the menu, and the path tooltips set on
    # its items never showed (a menu's tooltips are off by default)
    from editor.engine.session import Session

    for folder in ("portraits", "landscapes"):
        (tmp_path / folder).mkdir()
        path = tmp_path / folder / "session.atelier.json"
        path.write_text(Session().to_json())
        window.open_session(str(path))
    assert [a.text() for a in _recent_files(window)] == [
        "&1 session.atelier.json — landscapes", "&2 session.atelier.json — portraits"]
    assert window.recent_menu.toolTipsVisible()


def test_a_name_that_is_not_utf8_is_not_remembered_as_another_file(window, qtbot, tmp_path):
    # Qt's strings drop the surrogates that stand for such a name's odd bytes: a session
    # "caf\xe9.atelier.json" was listed in Open recent as caf.atelier.json, another file that
    # the menu then opened; its generator came back as caf.safetensors at the next start
    from editor.engine.session import Session

    (tmp_path / "caf.atelier.json").write_text(Session().to_json())
    odd = tmp_path / os.fsdecode(b"caf\xe9.atelier.json")
    odd.write_text(Session().to_json())
    window.open_session(str(odd))
    assert [a.toolTip() for a in _recent_files(window)] == []
    model = save_generator(make_tiny_generator(resolution=32),
                           tmp_path / os.fsdecode(b"caf\xe9.safetensors"))
    window.open_generator(str(model))
    qtbot.waitUntil(lambda: model_ready(window)
                    and window.pack.model.path == str(model), timeout=10_000)
    assert QSettings().value("model/last_path") is None
    assert _recent_files(window) == []


def test_recent_files_are_numbered_and_show_an_ampersand_as_itself(window, qtbot, tmp_path):
    # Qt reads "&D" in "R&D.safetensors" as the item's Alt letter and shows "RD"; the items
    # had no Alt keys of their own.
    first = save_generator(make_tiny_generator(resolution=32), tmp_path / "R&D.safetensors")
    second = save_generator(make_tiny_generator(resolution=32), tmp_path / "plain.safetensors")
    for path in (first, second):
        window.open_generator(str(path))
        qtbot.waitUntil(lambda p=path: model_ready(window)
                        and window.pack.model.path == str(p), timeout=10_000)
    assert [a.text() for a in _recent_files(window)] == [
        "&1 plain.safetensors", "&2 R&&D.safetensors"]


@pytest.mark.parametrize("last", ["mine", "gone", "broken", "none"])
def test_the_window_starts_on_the_last_model_and_falls_back_to_the_demo(
        qtbot, tmp_path, monkeypatch, last):
    # Every start opened the demo pack, whatever the user had worked on.
    _settings_in(tmp_path)
    demo = _demo_generator(tmp_path, monkeypatch, resolution=8, seed=1)
    mine = save_generator(make_tiny_generator(resolution=16, seed=2),
                          tmp_path / "mine.safetensors")
    (tmp_path / "broken.pt").write_bytes(b"\x80\x04 not a checkpoint")
    paths = {"mine": mine, "gone": tmp_path / "gone.pt", "broken": tmp_path / "broken.pt"}
    if last in paths:
        QSettings().setValue("model/last_path", str(paths[last]))
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    discard_on_close(monkeypatch)
    win = MainWindow(Renderer(device="cpu"))
    qtbot.addWidget(win)
    try:
        qtbot.waitUntil(lambda: model_ready(win) and win.last_result is not None,
                        timeout=20_000)
        assert win.pack.model.path == str(mine if last == "mine" else demo)
        assert bool(warned) == (last == "broken")  # a file that is gone is no news
    finally:
        close_without_questions(win, qtbot)


def test_a_last_model_that_is_another_installs_demo_opens_this_demo(
        qtbot, tmp_path, monkeypatch):
    # A checkout's .venv and a `pip install` (or two checkouts) share the user's settings:
    # the demo used last in one was opened by the other as a foreign generator, without the
    # demo's directions ("Prompt edits need this pack's directions: Models ▸ Precompute")
    import shutil

    from editor.engine.models import DEMO_GENERATOR

    _settings_in(tmp_path)
    other = tmp_path / "other install" / "editor" / "resources" / "models" / "toyfaces"
    other.mkdir(parents=True)
    elsewhere = shutil.copy(DEMO_GENERATOR, other / DEMO_GENERATOR.name)
    mine = other / "mine.safetensors"  # a user's file beside it is theirs
    save_generator(make_tiny_generator(resolution=8), mine)
    discard_on_close(monkeypatch)
    for last, expected in ((elsewhere, DEMO_GENERATOR), (mine, mine)):
        QSettings().setValue("model/last_path", str(last))
        asked = []
        monkeypatch.setattr(MainWindow, "open_generator",
                            lambda self, path, *a, asked=asked, **k: asked.append(path))
        win = MainWindow(Renderer(device="cpu"))
        qtbot.addWidget(win)
        close_without_questions(win, qtbot)
        assert asked == [str(expected)]


def test_a_window_asked_not_to_open_the_last_model_opens_none(qtbot, tmp_path, monkeypatch):
    # `atelier gui G.pt` opens G.pt: the last model was loaded first, for nothing
    _settings_in(tmp_path)
    demo = _demo_generator(tmp_path, monkeypatch, resolution=8)
    discard_on_close(monkeypatch)
    asked = []
    monkeypatch.setattr(MainWindow, "open_generator", lambda self, path, *a, **k:
                        asked.append(path))
    first = MainWindow(Renderer(device="cpu"))
    qtbot.addWidget(first)
    close_without_questions(first, qtbot)
    assert asked == [str(demo)]  # what a window that opens the last model asks for
    asked.clear()
    win = MainWindow(Renderer(device="cpu"), open_last_model=False)
    qtbot.addWidget(win)
    try:
        assert asked == []
    finally:
        close_without_questions(win, qtbot)


def test_a_generator_named_at_start_that_does_not_open_leaves_the_demo(qtbot, tmp_path,
                                                                       monkeypatch):
    # `atelier gui broken.pt` left an empty window (the demo had been loaded first before)
    _settings_in(tmp_path)
    demo = _demo_generator(tmp_path, monkeypatch, resolution=8)
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    discard_on_close(monkeypatch)
    (tmp_path / "broken.pt").write_bytes(b"\x80\x04 not a checkpoint")
    win = MainWindow(Renderer(device="cpu"), open_last_model=False)
    qtbot.addWidget(win)
    try:
        win.open_at_start(str(tmp_path / "broken.pt"))
        qtbot.waitUntil(lambda: model_ready(win), timeout=20_000)
        assert win.pack.model.path == str(demo) and "broken.pt" in warned[0]
    finally:
        close_without_questions(win, qtbot)


def test_the_window_starts_on_the_demo_when_the_cache_folder_cannot_be_made(
        qtbot, tmp_path, monkeypatch):
    # A read-only home, or ATELIER_CACHE_DIR naming a file: the window's Models menu read
    # the model index, making the folder raised, and the program ended with a traceback
    # before showing anything (the demo needs no cache folder).
    _settings_in(tmp_path)
    (tmp_path / "a-file").write_bytes(b"")
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path / "a-file"))
    discard_on_close(monkeypatch)
    win = MainWindow(Renderer(device="cpu"))
    qtbot.addWidget(win)
    try:
        qtbot.waitUntil(lambda: model_ready(win) and win.last_result is not None,
                        timeout=30_000)
        assert win.pack.is_demo and win.pack.data is not None  # its text edits work
    finally:
        close_without_questions(win, qtbot)


def test_files_named_at_start_open_once_the_model_is_there(qtbot, tmp_path, monkeypatch):
    # The desktop's "Open with" on a picture ran `atelier FILE`, which argparse refused,
    # and `atelier gui face.png` took the picture for a generator ("not a checkpoint").
    from PIL import Image

    from editor.cli import main
    from editor.engine.session import Session, Source

    _settings_in(tmp_path)
    _demo_generator(tmp_path, monkeypatch, resolution=8)
    discard_on_close(monkeypatch)
    session = tmp_path / "s.atelier.json"
    session.write_text(Session(source=Source(seed=1234, psi=0.7)).to_json())
    picture = tmp_path / "face.png"
    Image.new("RGB", (32, 32), "white").save(picture)
    inverted = []
    monkeypatch.setattr("editor.ui.inversion_flow.InversionFlow.start",
                        lambda self, path, name=None: inverted.append(path))
    win = MainWindow(Renderer(device="cpu"))  # on the model used last: the demo here
    qtbot.addWidget(win)
    try:
        win.open_at_start(str(session))
        win.open_at_start(str(picture))
        assert win.pack is None and inverted == []  # waiting for a model to open them with
        qtbot.waitUntil(lambda: inverted == [str(picture)], timeout=20_000)
        assert win.document.state.session.source.seed == 1234
    finally:
        close_without_questions(win, qtbot)
    started = []
    monkeypatch.setattr("editor.cli._run_gui", lambda args: started.append(args.paths) or 0)
    assert main([str(picture)]) == 0 and started == [[str(picture)]]


def test_the_last_model_opens_at_start_whatever_its_file_is_called(qtbot, tmp_path,
                                                                   monkeypatch):
    # Generators are known by their content (an imported 'net.pth'), but the start took
    # such a file for a picture or session to open once a model was there: none ever
    # came, and the window started empty, without the demo or a word.
    _settings_in(tmp_path)
    _demo_generator(tmp_path, monkeypatch, resolution=8)
    mine = tmp_path / "net.pth"
    mine.write_bytes(save_generator(make_tiny_generator(resolution=16, seed=3),
                                    tmp_path / "g.safetensors").read_bytes())
    QSettings().setValue("model/last_path", str(mine))
    discard_on_close(monkeypatch)
    win = MainWindow(Renderer(device="cpu"))
    qtbot.addWidget(win)
    try:
        qtbot.waitUntil(lambda: model_ready(win), timeout=20_000)
        assert win.pack.model.path == str(mine)
    finally:
        close_without_questions(win, qtbot)


def test_a_session_that_cannot_be_saved_says_why_without_the_temporary_file(
        window, tmp_path, monkeypatch):
    # The message named the hidden temporary file: "[Errno 30] Read-only file system:
    # '/x/.s.json.49a69f0a.tmp'", and for a folder "[Errno 21] Is a directory: ... -> ...".
    import errno

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    folder = tmp_path / "d.json"
    folder.mkdir()
    window.session_path = folder
    assert not window.save_session()
    assert shown == [f"{folder} is a folder; choose a file name."]
    assert list(folder.iterdir()) == [] and [p.name for p in tmp_path.glob(".*")] == []

    def read_only(path, text):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".s.json.49a6.tmp"))

    monkeypatch.setattr("editor.core.paths.atomic_write_text", read_only)
    window.session_path = tmp_path / "s.json"
    assert not window.save_session()
    assert shown[1] == f"{tmp_path / 's.json'}: Read-only file system"
    assert _recent_files(window) == []  # neither was saved


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="named pipes are POSIX")
def test_saving_a_session_onto_a_pipe_says_so_instead_of_freezing_the_window(
        window, tmp_path, monkeypatch):
    # a device or a pipe is written into (no file renamed over it), and the saved file was
    # then read back for its hash: the window's thread waited in open() for ever
    import os
    import time

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    fifo = tmp_path / "s.atelier.json"
    os.mkfifo(fifo)
    finished = threading.Event()

    def rescue():  # lets a frozen save go on, so that the test fails instead of hanging
        if finished.wait(3):
            return
        reading = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the write's open goes on
        while not finished.wait(0.2):
            with contextlib.suppress(OSError):  # and so does the read of it
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        os.close(reading)

    rescuer = threading.Thread(target=rescue, daemon=True)
    rescuer.start()
    window.session_path = fifo
    t0 = time.monotonic()
    try:
        saved = window.save_session()
    finally:
        took = time.monotonic() - t0
        finished.set()
        rescuer.join(10)
    assert not saved and took < 2
    assert shown == [f"{fifo} is not a file (a pipe or a device); choose a file name."]
    assert _recent_files(window) == []


def test_open_recent_can_be_cleared_and_stays_cleared(window, tmp_path):
    # nothing took a file off the list but its going missing: a finished project's files,
    # or ones not to be shown to whoever looks over the shoulder, stayed for good
    window.session_path = tmp_path / "private.atelier.json"
    assert window.save_session()
    actions = window.recent_menu.actions()
    assert [a.text() for a in actions[-2:]] == ["", "&Clear list"] and actions[-2].isSeparator()
    actions[-1].trigger()
    assert window.recent_menu.actions() == [] and not window.recent_menu.isEnabled()
    assert settings_values.text_list(QSettings(), "recent/files") == []  # at the next start too


def test_a_very_long_file_name_does_not_make_open_recent_wider_than_the_screen(window,
                                                                               tmp_path):
    # it showed the whole name: a 200-character one made a menu 1,500 pixels wide
    long = tmp_path / ("holiday-" * 25 + ".atelier.json")
    window.session_path = long
    assert window.save_session()
    (act,) = _recent_files(window)
    assert act.text().startswith("&1 holiday-") and act.text().endswith(".atelier.json")
    assert "…" in act.text() and act.toolTip() == str(long)
    assert window.recent_menu.sizeHint().width() < 700


def test_open_recent_on_a_deleted_file_says_it_is_gone_and_forgets_it(window, tmp_path,
                                                                       monkeypatch):
    # It said "keep.atelier.json is not a file." and kept offering it.
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    kept, gone = tmp_path / "other.atelier.json", tmp_path / "keep.atelier.json"
    for path in (kept, gone):
        window.session_path = path
        assert window.save_session()
    gone.unlink()
    recent = _recent_files(window)
    assert [a.toolTip() for a in recent] == [str(gone), str(kept)]
    recent[0].trigger()
    assert shown == [f"keep.atelier.json no longer exists in {tmp_path}."]
    assert [a.toolTip() for a in _recent_files(window)] == [str(kept)]
    window.open_path(str(gone))  # not listed any more (a drop, the command line)
    assert shown[1] == f"keep.atelier.json does not exist in {tmp_path}."


def test_a_file_named_at_start_that_does_not_open_falls_back_on_the_model_used_last(
        qtbot, tmp_path, monkeypatch):
    # `atelier gui notes.txt` fell back on the demo, which then was the model used last:
    # one mistyped name lost the user's model for the next starts too
    _settings_in(tmp_path)
    demo = _demo_generator(tmp_path, monkeypatch, resolution=8)
    discard_on_close(monkeypatch)
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    last = save_generator(make_tiny_generator(resolution=16, seed=2), tmp_path / "mine.safetensors")
    QSettings().setValue("model/last_path", str(last))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    win = MainWindow(Renderer(device="cpu"), open_last_model=False)
    qtbot.addWidget(win)
    win.open_at_start(str(notes))
    qtbot.waitUntil(lambda: model_ready(win), timeout=20_000)
    assert win.pack.model.path == str(last) and len(shown) == 1 and "notes.txt" in shown[0]
    assert QSettings().value("model/last_path") == str(last)
    assert str(demo) != str(last)
    close_without_questions(win, qtbot)


def _open_demo_window(qtbot) -> MainWindow:
    """A window on the bundled demo pack, once it has loaded."""
    win = MainWindow(Renderer(device="cpu"))
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: model_ready(win), timeout=30_000)
    return win


def test_the_demo_psi_is_not_remembered_for_the_next_model(qtbot, tmp_path, monkeypatch):
    # the demo forces its own ψ (1.0); saved at close, the next start on a real generator
    # drew its seeds untruncated, unlike `atelier edit --seed` and the documented 0.7
    _settings_in(tmp_path)
    discard_on_close(monkeypatch)
    QSettings().setValue("source/psi", 0.5)  # the user's, on a real model
    win = _open_demo_window(qtbot)
    assert win.pack.model.z_for_seed is not None
    assert win.document.state.session.source.psi == win.pack.model.seed_psi != 0.5
    close_without_questions(win, qtbot)
    assert float(QSettings().value("source/psi")) == 0.5


def test_the_demo_starts_on_the_face_it_showed_at_close(qtbot, tmp_path, monkeypatch):
    # the seed came back at the demo's own ψ: the seed box said 385, the face was another
    _settings_in(tmp_path)
    discard_on_close(monkeypatch)
    QSettings().setValue("source/psi", 0.5)  # the user's, on a real model
    win = _open_demo_window(qtbot)
    win._set_seed(385)
    win._set_psi(0.55)
    close_without_questions(win, qtbot)
    win = _open_demo_window(qtbot)
    source = win.document.state.session.source
    assert (source.seed, source.psi) == (385, 0.55)
    assert not win.document.modified
    close_without_questions(win, qtbot)
    assert float(QSettings().value("source/psi")) == 0.5  # the real models' own, untouched
    QSettings().setValue("source/demo_psi", "nan")  # a damaged value: the demo's own ψ
    win = _open_demo_window(qtbot)
    assert win.document.state.session.source.psi == win.pack.model.seed_psi
    close_without_questions(win, qtbot)


def test_a_latent_shown_at_close_leaves_the_remembered_seed_and_psi_as_they_were(
        qtbot, tmp_path, monkeypatch):
    # a latent source (an `atelier invert` recipe opened in the window) carries no seed of
    # the user's (0) and the default ψ (0.7): kept as the demo's, the next start drew seed
    # 0 at ψ 0.7 on the demo, a face the user never saw, unlike `atelier edit --seed 0`
    import dataclasses

    from editor.engine.compose import encode_wplus
    from editor.engine.session import Source

    _settings_in(tmp_path)
    discard_on_close(monkeypatch)
    QSettings().setValue("source/psi", 0.5)  # the user's, on a real model
    win = _open_demo_window(qtbot)
    win._set_seed(385)
    gen = win.pack.model.generator
    latent = Source(kind="wplus", wplus_data=encode_wplus(
        torch.zeros(gen.n_latent, gen.style_dim)), label="me.png")
    state = win.document.state
    win.document.reset(dataclasses.replace(state, session=state.session.with_source(latent)))
    close_without_questions(win, qtbot)
    assert float(QSettings().value("source/psi")) == 0.5
    win = _open_demo_window(qtbot)
    source = win.document.state.session.source
    assert (source.seed, source.psi) == (385, win.pack.model.seed_psi)
    close_without_questions(win, qtbot)


def _device_actions(win) -> dict:
    """The View ▸ Device menu's actions by their choice (auto, cpu, cuda:N)."""
    return {act.data(): act for act in win.device_group.actions()}


def test_the_device_menu_reopens_the_model_there_and_is_remembered(
        qtbot, tmp_path, monkeypatch):

    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    _fake_working_gpu(monkeypatch)
    win = MainWindow(Renderer(device="cpu"), open_last_model=False)
    qtbot.addWidget(win)
    path = save_generator(make_tiny_generator(resolution=32), tmp_path / "tiny.safetensors")
    win.open_generator(str(path))
    qtbot.waitUntil(lambda: win.last_result is not None, timeout=10_000)
    actions = _device_actions(win)
    assert [a.text() for a in actions.values()] == ["&Auto", "&CPU", "CUDA &0: Fake"]
    assert actions["cpu"].isChecked() and win.status_device.text() == "device: cpu"
    asked = []  # there is no GPU to load on here: what the worker is asked for
    monkeypatch.setattr(win.worker, "load_model",
                        lambda *a, **k: asked.append((a[0], str(a[2]))))
    actions["cuda:0"].trigger()
    assert asked == [(str(path), "cuda:0")]
    assert actions["cuda:0"].isChecked()
    # remembered once the model opened there: a device it cannot open on is not kept
    assert QSettings().value("render/device") is None
    win._on_model_loaded(win.pack)
    assert QSettings().value("render/device") == "cuda:0"
    close_without_questions(win, qtbot)
    monkeypatch.undo()  # the machine as it is: no GPU
    discard_on_close(monkeypatch)
    QSettings().setValue("render/device", "cpu")
    again = MainWindow(open_last_model=False)  # the next start: the choice remembered
    qtbot.addWidget(again)
    assert _device_actions(again)["cpu"].isChecked() and str(again.renderer.device) == "cpu"
    close_without_questions(again, qtbot)


def test_each_device_in_the_menu_has_an_alt_key_of_its_own(window, monkeypatch):
    # CPU and every CUDA device were all on Alt+C: the key went back and forth between
    # them in the open menu and chose none.
    from PySide6.QtWidgets import QMenu

    _fake_working_gpu(monkeypatch)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 3)
    menu = QMenu()
    window._build_device_menu(menu)
    texts = [a.text() for a in menu.actions()]
    assert texts == ["&Auto", "&CPU", "CUDA &0: Fake", "CUDA &1: Fake", "CUDA &2: Fake"]
    letters = [t[t.index("&") + 1].lower() for t in texts]
    assert len(set(letters)) == len(letters)
    assert window._device_label("cuda:1") == "CUDA 1: Fake"  # as the status line says it


def _fake_working_gpu(monkeypatch) -> None:
    """torch says there is a CUDA device "Fake", and it passes auto's test kernel."""
    import torch

    for name, fake in (("is_available", lambda: True), ("device_count", lambda: 1),
                       ("current_device", lambda: 0), ("get_device_name", lambda *a: "Fake")):
        monkeypatch.setattr(torch.cuda, name, fake)
    monkeypatch.setattr("editor.core.devices._cuda_unusable", lambda device: None)


def _on_a_fake_gpu(tmp_path, monkeypatch, remembered: str) -> list[str]:
    """Settings in `tmp_path` with the device `remembered`, no model at start, a fake GPU
    (which cannot hold a tensor: there is none here); the warnings shown are listed."""
    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    _fake_working_gpu(monkeypatch)
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    QSettings().setValue("render/device", remembered)
    return shown


def test_a_device_the_model_cannot_open_on_is_not_kept(qtbot, tmp_path, monkeypatch):
    # Choosing a GPU that failed to open the model left it ticked, remembered for the next
    # start and used for every model opened after (each failing the same way).
    shown = _on_a_fake_gpu(tmp_path, monkeypatch, remembered="cpu")
    win = MainWindow(open_last_model=False)
    qtbot.addWidget(win)
    path = save_generator(make_tiny_generator(resolution=32), tmp_path / "tiny.safetensors")
    win.open_generator(str(path))
    qtbot.waitUntil(lambda: win.last_result is not None, timeout=10_000)
    _device_actions(win)["cuda:0"].trigger()
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert shown[0].endswith("View ▸ Device is back to CPU (CUDA 0: Fake was chosen).")
    assert _device_actions(win)["cpu"].isChecked()
    assert QSettings().value("render/device") == "cpu"
    assert str(win.renderer.device) == "cpu" and win.pack is not None
    other = save_generator(make_tiny_generator(resolution=32, seed=1), tmp_path / "o.safetensors")
    win.open_generator(str(other))  # the next model opens where the pictures are drawn
    qtbot.waitUntil(lambda: model_ready(win) and win.pack.model.path == str(other), timeout=10_000)
    assert len(shown) == 1
    close_without_questions(win, qtbot)


def test_a_model_that_failed_to_open_at_start_opens_on_the_device_chosen_next(
        qtbot, tmp_path, monkeypatch):
    # With the remembered GPU failing, choosing the CPU did nothing: no model, no message
    shown = _on_a_fake_gpu(tmp_path, monkeypatch, remembered="cuda:0")
    win = MainWindow(open_last_model=False)
    qtbot.addWidget(win)
    path = save_generator(make_tiny_generator(resolution=32), tmp_path / "tiny.safetensors")
    win.open_generator(str(path))
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert win.pack is None
    _device_actions(win)["cpu"].trigger()
    qtbot.waitUntil(lambda: win.last_result is not None, timeout=10_000)
    assert win.pack.model.path == str(path) and str(win.renderer.device) == "cpu"
    assert QSettings().value("render/device") == "cpu" and len(shown) == 1
    close_without_questions(win, qtbot)


def test_the_window_starts_where_cuda_is_reported_but_cannot_start(qtbot, tmp_path,
                                                                   monkeypatch):
    import torch

    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)

    def no_driver(*args):
        raise RuntimeError("Found no NVIDIA driver on your system.")

    for name, fake in (("is_available", lambda: True), ("device_count", lambda: 1),
                       ("current_device", no_driver), ("get_device_name", no_driver)):
        monkeypatch.setattr(torch.cuda, name, fake)
    for remembered in ("auto", "cuda:0"):
        QSettings().setValue("render/device", remembered)
        win = MainWindow(open_last_model=False)  # it raised RuntimeError
        qtbot.addWidget(win)
        assert str(win.renderer.device) == "cpu" and _device_actions(win)["auto"].isChecked()
        assert [a.text() for a in _device_actions(win).values()][2] == "CUDA &0"
        win.set_device("cuda:0")  # it raised out of the menu's slot
        assert "cannot be used" in win.statusBar().currentMessage()
        assert _device_actions(win)["auto"].isChecked()
        close_without_questions(win, qtbot)


def test_a_device_gone_or_passed_over_is_said_once_when_the_model_loads(
        qtbot, tmp_path, monkeypatch):
    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    monkeypatch.setattr("editor.core.devices.auto_device", lambda: (
        Renderer(device="cpu").device, "rendering on the CPU: GTX 1080 (sm_61) is not "
        "supported by this PyTorch build"))
    QSettings().setValue("render/device", "cuda:7")  # a GPU taken out since
    win = MainWindow(open_last_model=False)
    qtbot.addWidget(win)
    assert _device_actions(win)["auto"].isChecked()
    path = save_generator(make_tiny_generator(resolution=32), tmp_path / "tiny.safetensors")
    win.open_generator(str(path))
    qtbot.waitUntil(lambda: win.last_result is not None, timeout=10_000)
    message = win.statusBar().currentMessage()
    assert "'cuda:7'" in message and "sm_61" in message
    win.source_panel.step_seed(+1)
    win.set_device("auto")  # chosen again: said again, as an answer to the choice
    assert "sm_61" in win.statusBar().currentMessage()
    close_without_questions(win, qtbot)


def test_a_garbage_remembered_device_is_said_in_the_menus_words(qtbot, tmp_path,
                                                                 monkeypatch):
    # a hand-edited setting was answered with the command line's advice ("use auto, cpu,
    # cuda or cuda:N"), which the window has no box to type into
    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    QSettings().setValue("render/device", "tpu:0")
    win = MainWindow(open_last_model=False)
    qtbot.addWidget(win)
    assert _device_actions(win)["auto"].isChecked()
    assert win._start_note.startswith("View ▸ Device was 'tpu:0' last time, which this "
                                      "computer does not have; ")
    assert "use auto" not in win._start_note
    close_without_questions(win, qtbot)


def test_atelier_gui_refuses_a_device_that_is_not_here():
    from editor.ui.app import unusable_device

    assert unusable_device("cpu") is None
    assert "use auto, cpu, cuda or cuda:N" in unusable_device("tpu")


def test_f6_goes_round_the_picture_and_the_panels_in_view(window, qtbot):
    # Tab walked every control of every panel; the panel behind the tab bar was reached
    # only by going round the whole window, and nothing jumped between panels.
    from tests.test_editor_window import show_active

    show_active(window, qtbot)
    window.directions_dock.raise_()  # the edit stack goes behind its tab
    qtbot.waitUntil(lambda: not window.stack_panel.isEnabled())
    window.canvas.setFocus()
    reached = []
    for _ in range(5):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_F6)
        focused = QApplication.focusWidget()
        reached.append(next((d.objectName() for d in window._panel_docks()
                             if d.isAncestorOf(focused)), "canvas" if focused is
                            window.canvas else repr(focused)))
    jobs = ["jobs_dock"] if window.jobs_dock.isVisible() else []
    expected = ["source_dock", "prompt_dock", "directions_dock", *jobs, "canvas"]
    assert reached == (expected * 2)[:5]
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_F6, Qt.KeyboardModifier.ShiftModifier)
    last = window.jobs_dock if jobs else window.directions_dock  # backwards from the picture
    assert last.isAncestorOf(QApplication.focusWidget())


def test_a_panel_chosen_in_the_view_menu_gets_the_keyboard(window, qtbot):
    # View ▸ Panels ▸ X brought the panel to the front and left the focus where it was.
    from tests.test_editor_window import show_active

    show_active(window, qtbot)
    window.stack_dock.raise_()
    qtbot.waitUntil(lambda: not window.directions_panel.isEnabled())
    window.canvas.setFocus()
    view = next(a.menu() for a in window.menuBar().actions() if "View" in a.text())
    panels = next(a.menu() for a in view.actions() if a.menu() and "Panels" in a.text())
    directions = next(a for a in panels.actions() if "direction" in a.text().lower())
    directions.trigger()
    qtbot.waitUntil(lambda: window.directions_dock.isAncestorOf(QApplication.focusWidget()),
                    timeout=2000)


def test_f6_and_the_compare_key_work_with_a_panel_floated_off_the_window(window, qtbot):
    # A floated panel is a window of its own: F6 set the focus in it without going there,
    # so the keyboard stayed on the picture at every press (the panels after it never
    # reached), and holding \\ there compared nothing.
    from tests.test_editor_window import show_active

    show_active(window, qtbot)
    window.source_dock.setFloating(True)
    qtbot.waitExposed(window.source_dock)
    show_active(window, qtbot)
    window.canvas.setFocus()
    reached = [window.canvas]
    for _ in range(2):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_F6)
        qtbot.waitUntil(lambda: QApplication.focusWidget() is not reached[-1], timeout=2000)
        reached.append(QApplication.focusWidget())
    reached.pop(0)
    assert reached[0] is window.source_panel.seed_box
    assert QApplication.activeWindow() is window  # and on, back in the window
    assert window.prompt_dock.isAncestorOf(reached[1])
    QTest.keyClick(reached[1], Qt.Key.Key_F6, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window.source_dock, timeout=2000)
    box = window.source_panel.psi_box
    box.setFocus()
    QTest.keyPress(box, Qt.Key.Key_Backslash)
    assert window.canvas.holding_compare
    QTest.keyRelease(box, Qt.Key.Key_Backslash)
    assert not window.canvas.holding_compare


@contextlib.contextmanager
def _window_in_a_font(qtbot, tmp_path, monkeypatch, scale: float, size: tuple[int, int]):
    """A window shown at `size` with the application's font `scale` times as large, after
    its first fit."""
    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    app = QApplication.instance()
    font = app.font()
    big = app.font()
    big.setPointSizeF(font.pointSizeF() * scale)
    app.setFont(big)
    try:
        win = MainWindow(Renderer(device="cpu"))
        qtbot.addWidget(win)
        win.resize(*size)
        win.show()
        qtbot.waitExposed(win)
        qtbot.wait(100)  # the fit runs after the first layout
        yield win
        close_without_questions(win, qtbot)
    finally:
        app.setFont(font)


def test_the_first_layout_fits_a_small_screen_with_a_big_font(qtbot, tmp_path, monkeypatch,
                                                              qtlog):
    # At 960x540 (QT_SCALE_FACTOR=2 on a 1080p screen) or with a 2x font, the forms'
    # first fit asked the edit stack for a negative height: Qt refused ("resizeDocks:
    # all sizes need to be larger than 0") and the forms started scrolled.
    with _window_in_a_font(qtbot, tmp_path, monkeypatch, 2, (800, 600)) as win:
        assert not [m for m in qtlog.records if "resizeDocks" in m.message]
        assert win.stack_dock.height() >= win.stack_dock.widget().minimumSizeHint().height()


def test_with_a_large_font_the_side_column_is_as_wide_as_the_forms_need(qtbot, tmp_path,
                                                                        monkeypatch):
    # a 14 pt font made the forms wider than the column's 440 px cap: they scroll only up
    # and down, so the α box, the … button and "New prompt" were cut off
    with _window_in_a_font(qtbot, tmp_path, monkeypatch, 1.6, (1600, 1000)) as win:
        for dock in (win.source_dock, win.prompt_dock):
            area = win.form_area(dock)
            assert area.viewport().width() >= area.widget().minimumSizeHint().width()
        # and the toolbar's icons grow with the text (16 px were specks beside 14 pt)
        assert win.toolbar.iconSize().height() >= 1.4 * win.fontMetrics().height() - 1


def test_the_jobs_panel_opened_by_a_first_job_shows_it_whole(window, qtbot):
    # At 1280x820 the panel that opened for an export cut the job's status line in half,
    # behind a scroll bar.
    import threading

    from PySide6.QtWidgets import QScrollArea

    from editor.ui.jobs_panel import JobRow
    from tests.test_editor_window import show_active

    window.resize(1280, 820)
    show_active(window, qtbot)
    release = threading.Event()
    job = window.jobs.submit("Export image", lambda token: release.wait(20))
    try:
        qtbot.waitUntil(lambda: window.jobs_dock.isVisible(), timeout=5000)
        qtbot.wait(100)  # the dock's first layout
        row = window.jobs_panel.findChildren(JobRow)[0]
        viewport = window.jobs_panel.findChild(QScrollArea).viewport()
        assert viewport.height() >= row.sizeHint().height()
    finally:
        release.set()
        qtbot.waitUntil(lambda: not job.is_active, timeout=5000)


# --- inversion lands in the document it was started for
# Found by an audit: a session opened while a picture was being inverted got the picture's
# latent as its source when the job ended ("Invert me.png" on its undo stack, marked
# modified), a document the user never inverted into.


@pytest.fixture
def gated_inversion(window, qtbot, tmp_path, monkeypatch):
    """The window on a tiny generator; `start()` starts inverting me.png (a short run, held
    until `release()`) and returns the job."""
    import threading

    from PIL import Image

    from editor.methods.inversion import InversionSettings
    from editor.ui import inversion_flow

    gen = save_generator(make_tiny_generator(resolution=8, channel_max=16),
                         tmp_path / "g.safetensors")
    window.open_generator(str(gen))
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=20_000)
    gate = threading.Event()
    real = inversion_flow.invert_image
    quick = InversionSettings(steps=3, candidates=2, starts=1, perceptual="none")

    def held(pack, rgb, box, label, settings=None, cancel=None):
        gate.wait(30)
        yield from real(pack, rgb, box, label, quick, cancel=cancel)

    monkeypatch.setattr(inversion_flow, "invert_image", held)
    monkeypatch.setattr(inversion_flow, "choose_crop", lambda *a, **k: (0, 0, 20, 20))
    picture = tmp_path / "me.png"
    Image.new("RGB", (20, 20), (200, 30, 30)).save(picture)

    class Gate:
        generator = gen

        @staticmethod
        def start():
            job = window.inversion.start(str(picture))
            assert job is not None
            return job

        @staticmethod
        def release():
            with qtbot.waitSignal(window.jobs.job_ended, timeout=60_000):
                gate.set()
            QApplication.processEvents()

    try:
        yield Gate
    finally:
        gate.set()


def _inversion_offers(window) -> list[QMessageBox]:
    return [b for b in window.findChildren(QMessageBox)
            if b.windowTitle() == "Inversion finished" and b.isVisible()]


def _button(box: QMessageBox, text: str):
    return next(b for b in box.buttons() if b.text().replace("&", "") == text)


def test_an_inversion_finished_after_another_session_opened_is_offered_not_applied(
        window, qtbot, tmp_path, gated_inversion):
    from editor.engine.session import Session, Source

    b = tmp_path / "B.atelier.json"
    b.write_text(Session(source=Source(seed=42, psi=0.7)).to_json())
    gated_inversion.start()
    window.open_session(str(b))
    b_source = window.document.state.session.source
    assert b_source.seed == 42
    gated_inversion.release()
    # B is left as it was opened: not the picture's latent, no step, not modified
    assert window.document.state.session.source == b_source
    assert window.document.undo_stack.count() == 0 and not window.document.modified
    assert "not applied" in window.statusBar().currentMessage()
    (offer,) = _inversion_offers(window)  # the inverted latent is not dropped unsaid
    assert "me.png" in offer.text()
    assert not window.jobs.active_jobs()  # the box did not hold the job
    # the user takes it: one undoable step in the document open now
    _button(offer, "Use as Source").click()
    QApplication.processEvents()
    source = window.document.state.session.source
    assert source.kind == "wplus" and source.label == "me.png"
    assert window.document.undo_stack.undoText() == "Invert me.png"
    assert window.document.modified and not _inversion_offers(window)
    window.document.undo_stack.undo()
    assert window.document.state.session.source == b_source


def test_an_inversion_finished_after_a_new_history_can_be_discarded(
        window, qtbot, tmp_path, gated_inversion):
    # the same weights opened from another file start a new history (Document.reset)
    import shutil

    gated_inversion.start()
    copy = tmp_path / "copy.safetensors"
    shutil.copy(gated_inversion.generator, copy)
    old = window.pack
    window.open_generator(str(copy))
    qtbot.waitUntil(lambda: model_ready(window) and window.pack is not old, timeout=20_000)
    session = window.document.state.session
    count = window.document.undo_stack.count()
    gated_inversion.release()
    assert window.document.state.session == session
    assert window.document.undo_stack.count() == count
    (offer,) = _inversion_offers(window)
    _button(offer, "Discard").click()
    QApplication.processEvents()
    assert window.document.state.session == session and not _inversion_offers(window)


def test_an_inversion_still_lands_in_the_document_it_was_started_for(
        window, qtbot, gated_inversion):
    gated_inversion.start()
    window.source_panel.step_seed(+1)  # a change is no other document
    gated_inversion.release()
    source = window.document.state.session.source
    assert source.kind == "wplus" and source.label == "me.png"
    assert window.document.undo_stack.undoText() == "Invert me.png"
    assert not _inversion_offers(window)


def test_reset_layout_puts_every_panel_back_in_view(window, qtbot):
    # a panel closed, floated off or dragged to the other side could only be brought
    # back by hand (dock dividers and floating panels take no keys)
    from tests.test_editor_window import show_active

    show_active(window, qtbot)
    right, left = Qt.DockWidgetArea.RightDockWidgetArea, Qt.DockWidgetArea.LeftDockWidgetArea
    window.source_dock.hide()
    window.prompt_dock.setFloating(True)
    window.prompt_dock.move(-5000, -5000)
    window.addDockWidget(left, window.stack_dock)
    window.directions_dock.raise_()
    reset = next(a for a in window.findChildren(QAction) if a.text() == "&Reset layout")
    reset.trigger()
    docks = (window.source_dock, window.prompt_dock, window.stack_dock,
             window.directions_dock)
    assert all(not d.isFloating() and not d.isHidden() for d in docks)
    assert all(window.dockWidgetArea(d) == right for d in docks)
    assert window.tabifiedDockWidgets(window.stack_dock) == [window.directions_dock]
    qtbot.waitUntil(lambda: window.stack_dock.visibleRegion().isEmpty() is False,
                    timeout=5_000)
    assert window.directions_dock.visibleRegion().isEmpty()  # behind the stack's tab
    assert window.jobs_dock.isHidden()  # no job runs: it stays out of the way


def test_a_remembered_value_nested_too_deep_is_forgotten_not_fatal(tmp_path):
    # a hand-edited value of 100,000 nested lists: every start ended in a RecursionError
    from editor.ui.remembered import REMEMBERED_CLIPS, remembered_clip

    _settings_in(tmp_path)
    QSettings().setValue(REMEMBERED_CLIPS.settings_key, "[" * 100_000)
    assert REMEMBERED_CLIPS.all() == {} and remembered_clip("g.safetensors") is None


def test_settings_that_cannot_be_saved_are_said_with_the_first_model(qtbot, tmp_path,
                                                                     monkeypatch):
    # a read-only config folder: every choice (seed, theme, device, export) was lost at
    # the next start, without a word
    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    monkeypatch.setattr("editor.ui.main_window.unwritable_reason",
                        lambda folder: "Read-only file system")
    win = MainWindow(Renderer(device="cpu"), open_last_model=False)
    qtbot.addWidget(win)
    path = save_generator(make_tiny_generator(resolution=16), tmp_path / "tiny.safetensors")
    win.open_generator(str(path))
    qtbot.waitUntil(lambda: model_ready(win), timeout=20_000)
    message = win.statusBar().currentMessage()
    assert message.startswith("tiny loaded; settings cannot be saved in ")
    assert message.endswith("(Read-only file system)")
    close_without_questions(win, qtbot)


def test_a_settings_file_that_takes_no_changes_is_said_as_an_unwritable_folder_is(
        qtbot, tmp_path, monkeypatch):
    # the folder took files but the file took no changes (one left by a run as another
    # user, a folder in its place): every choice was lost at the next start, without a word
    from pathlib import Path

    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    settings_file = QSettings().fileName()
    Path(settings_file).mkdir(parents=True)
    win = MainWindow(Renderer(device="cpu"), open_last_model=False)
    qtbot.addWidget(win)
    assert win._start_note == (f"settings cannot be saved in {settings_file} "
                               "(the file cannot be written)")
    close_without_questions(win, qtbot)


def test_the_window_closed_last_comes_back_with_its_own_model_and_seed(qtbot, tmp_path,
                                                                       monkeypatch):
    # two windows on two models, closed in turn: the next start opened the model opened
    # last, at the seed of the window closed last, a picture neither window showed
    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    windows = []
    for seed, name in ((11, "first"), (22, "second")):
        win = MainWindow(Renderer(device="cpu"), open_last_model=False)
        qtbot.addWidget(win)
        win.open_generator(str(save_generator(make_tiny_generator(seed=seed),
                                              tmp_path / f"{name}.safetensors")))
        qtbot.waitUntil(lambda w=win: model_ready(w), timeout=10_000)
        win._set_seed(seed)
        windows.append(win)
    first, second = windows
    close_without_questions(second, qtbot)
    close_without_questions(first, qtbot)
    again = MainWindow(Renderer(device="cpu"))
    qtbot.addWidget(again)
    try:
        qtbot.waitUntil(lambda: model_ready(again), timeout=10_000)
        assert again.pack.model.path == str(tmp_path / "first.safetensors")
        assert again.document.state.session.source.seed == 11
    finally:
        close_without_questions(again, qtbot)


def test_a_remembered_clip_that_no_longer_loads_gives_way_to_the_default(
        qtbot, tmp_path, monkeypatch):
    # a CLIP file remembered for the generator, replaced since by something else: it was
    # tried at every start, text edits stayed off, and the panel said to download a CLIP
    from editor.engine.models import default_generator_path
    from editor.engine.packs import ClipSource
    from editor.ui.remembered import REMEMBERED_CLIPS, remembered_clip

    _settings_in(tmp_path)
    discard_on_close(monkeypatch)
    demo = str(default_generator_path())
    broken = tmp_path / "clip.safetensors"
    broken.write_bytes(b"not a CLIP any more")
    REMEMBERED_CLIPS.put(demo, {"path": str(broken), "arch": None, "tag": None})
    win = MainWindow(Renderer(device="cpu"))  # on the bundled demo pack
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.pack is not None and win.pack.clip is not None,
                    timeout=60_000)
    assert win.pack.model.path == demo and win.prompt_panel.target.isEnabled()
    assert remembered_clip(demo) != ClipSource(path=str(broken))
    close_without_questions(win, qtbot)


def test_the_models_menu_knows_the_generator_being_loaded_until_it_loads_or_fails(
        window, qtbot, tmp_path, monkeypatch):
    # the Models dialog let a generator be removed while the window loaded it
    path = save_generator(make_tiny_generator(), tmp_path / "g.safetensors")
    window.open_generator(str(path))
    assert window.models_menu.loading_generator == str(path)
    qtbot.waitUntil(lambda: model_ready(window), timeout=10_000)
    assert window.models_menu.loading_generator is None
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: None)
    window.open_generator(str(broken))
    assert window.models_menu.loading_generator == str(broken)
    qtbot.waitUntil(lambda: window.models_menu.loading_generator is None, timeout=10_000)
    assert window._loading is None


def test_a_load_asked_for_while_another_loads_stays_in_use_until_it_has_loaded(
        window, qtbot, tmp_path, monkeypatch):
    # the first load's end was taken for the second's: the Models dialog let the second
    # be removed while it loaded, and a device switch reopened the first
    first = save_generator(make_tiny_generator(), tmp_path / "a.safetensors")
    second = save_generator(make_tiny_generator(seed=5), tmp_path / "b.safetensors")
    gates = {str(first): threading.Event(), str(second): threading.Event()}
    opened = []
    open_pack = render_worker.open_pack

    def held(path, *args, **kwargs):
        gates[str(path)].wait(10)
        pack = open_pack(path, *args, **kwargs)
        opened.append(str(path))
        return pack

    monkeypatch.setattr(render_worker, "open_pack", held)
    loaded = []
    window.worker.model_loaded.connect(lambda pack: loaded.append(pack.model.path))
    window.open_generator(str(first))
    qtbot.wait(100)
    window.open_generator(str(second))  # chosen while the first still loads
    gates[str(first)].set()
    qtbot.waitUntil(lambda: opened == [str(first)], timeout=10_000)
    qtbot.wait(200)  # what the first load's end sends has arrived
    assert window.models_menu.loading_generator == str(second)
    assert window._loading is not None and window._loading[0] == str(second)
    gates[str(second)].set()
    qtbot.waitUntil(lambda: model_ready(window), timeout=10_000)
    assert window.pack.model.path == str(second) and loaded == [str(second)]
    assert window.models_menu.loading_generator is None


def test_a_load_replaced_by_another_that_fails_says_nothing(window, qtbot, tmp_path,
                                                             monkeypatch):
    # the second one is what the window waits for: the first's failure dropped the hold
    # on it (and asked the user about a model they had already turned from)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    good = save_generator(make_tiny_generator(), tmp_path / "g.safetensors")
    gate = threading.Event()
    open_pack = render_worker.open_pack

    def held(path, *args, **kwargs):
        if str(path) == str(broken):
            gate.wait(10)
        return open_pack(path, *args, **kwargs)

    monkeypatch.setattr(render_worker, "open_pack", held)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: None)
    failures = []
    window.worker.model_failed.connect(failures.append)
    window.open_generator(str(broken))
    qtbot.wait(100)
    window.open_generator(str(good))
    gate.set()
    qtbot.waitUntil(lambda: model_ready(window), timeout=10_000)
    assert failures == [] and window.models_menu.loading_generator is None


def test_the_status_bars_fields_stay_put_while_pictures_come_in(window, qtbot):
    # the render time is the last field and changes on every frame of a drag ("rendering…",
    # "9 ms (full)", "1234 ms (preview) · rendering…"): with it the model, device and zoom
    # beside it jumped back and forth by up to 200 px; zooming in moved them too
    from editor.ui.main_window import RENDERING_TEXT

    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    places = set()
    for time in (RENDERING_TEXT, "9 ms (full)", f"1234 ms (preview) · {RENDERING_TEXT}", ""):
        for zoom in ("fit", "25 %", "1600 %"):
            window.status_time.setText(time)
            window.status_zoom.setText(f"zoom: {zoom}")
            QApplication.processEvents()
            window.statusBar().layout().activate()
            places.add((window.status_model.x(), window.status_zoom.x()))
    assert len(places) == 1, places


def test_a_long_model_name_in_the_status_bar_is_cut_with_its_whole_text_in_the_tooltip(
        window, qtbot, tmp_path):
    # the model's field was cut off mid-word at the window's edge ("…-my-own-fir"), the
    # rest of its text nowhere to be read
    path = save_generator(make_tiny_generator(),
                          tmp_path / ("my-own-finetune-of-the-portrait-model-" * 3 + "v3.pt"))
    window.resize(700, 500)
    window.show()
    qtbot.waitExposed(window)
    window.open_generator(str(path))
    qtbot.waitUntil(lambda: model_ready(window), timeout=20_000)
    qtbot.wait(50)
    label = window.status_model
    assert label.width() < label.fontMetrics().horizontalAdvance(label.text())
    assert label.text() in label.toolTip()
    assert f"{path}\natelier checkpoint" in label.toolTip()  # and still its file
    window.resize(1900, 500)
    qtbot.waitUntil(lambda: label.toolTip() == f"{path}\natelier checkpoint", timeout=2000)


def test_each_status_bar_field_is_read_as_text(window):
    # the model's field, drawn by hand since it is elided, was a "client" pane to a screen
    # reader where its neighbours (and it, as a QLabel before) were static text
    from PySide6.QtGui import QAccessible

    for field in (window.status_model, window.status_device, window.status_zoom,
                  window.status_time):
        read = QAccessible.queryAccessibleInterface(field)
        assert read.role() == QAccessible.Role.StaticText, field
    assert QAccessible.queryAccessibleInterface(window.status_model).text(
        QAccessible.Text.Name) == "no model"


def test_the_forms_are_never_cut_off_at_the_right(window, qtbot):
    # the forms scroll only up and down, yet the side column could be narrower than they
    # need: at the window's least size, and at any size after it (or with the column
    # dragged narrow), the β box, the … button and "New prompt" were cut off at the right
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    qtbot.wait(100)  # the first fit
    window.resize(window.minimumSizeHint())
    qtbot.wait(50)
    window.resizeDocks([window.source_dock], [50], Qt.Orientation.Horizontal)
    qtbot.wait(50)
    for dock in (window.source_dock, window.prompt_dock):
        area = window.form_area(dock)
        assert area.viewport().width() >= area.widget().minimumSizeHint().width(), \
            dock.objectName()


def test_a_long_latent_name_does_not_widen_the_side_column(window, qtbot):
    # the forms' column is as wide as their least width, and the Source form's note on a
    # latent ("Starting from your picture IMG_…_final.png") asked for its file name's
    # whole width: a name without spaces, once the column was laid out again (a theme
    # switched), made the window 2134 px wide, the picture squeezed to its least
    from editor.engine.session import Source

    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    qtbot.wait(100)  # the first fit
    least = window.minimumSizeHint().width()
    name = "IMG_20261207_123456_HDR_portrait_mode_" + "edited_" * 30 + "final.png"
    window.source_panel.show_source(Source(kind="wplus", wplus_path=f"/x/{name}", label=name))
    for theme in ("dark", "light"):
        window.set_theme(theme)
        qtbot.wait(50)
        assert window.minimumSizeHint().width() == least
        assert window.width() == 1280
    label = window.source_panel.latent_label  # still wrapped, at its lines' height
    assert label.isVisible() and label.height() >= 2 * label.fontMetrics().height()


def test_the_precompute_offer_says_how_long_it_takes_on_this_device(window, qtbot, tmp_path,
                                                                    monkeypatch):
    # it said "this can take a while on a CPU", asked before the first picture: at 1024 px
    # with ViT-B/32 that is about 66 days on a 2-core CPU (a picture takes 4.9 s)
    from editor.core.durations import rough_duration
    from editor.engine.packs import ClipSource
    from tests.conftest import make_tiny_clip

    offered, suggested = [], []
    monkeypatch.setattr("editor.ui.models_dialog.offer_precompute",
                        lambda parent, name, estimate="", suggest=True: (
                            offered.append(estimate), suggested.append(suggest)) and False)
    gen = save_generator(make_tiny_generator(resolution=16), tmp_path / "gen.safetensors")
    clip = make_tiny_clip().save(tmp_path / "clip.safetensors")
    window.open_generator(str(gen), ClipSource(path=str(clip)))
    qtbot.waitUntil(lambda: bool(offered), timeout=20_000)
    drawn = window.last_result
    assert drawn is not None and not drawn.preview  # asked once the picture is drawn
    render_s = drawn.timings["total_ms"] / 1000
    seconds = window.pack.precompute_seconds(render_s)
    assert offered == [f"roughly {rough_duration(seconds)} on cpu, where a picture takes "
                       f"{render_s:.1f} s"]
    assert suggested == [seconds < 24 * 3600]


def test_a_closed_window_offers_no_precompute(qtbot, tmp_path, monkeypatch):
    # its first picture arriving as it closed, the offer came after: a box over a window
    # gone (a later test's setup crashed on it, "double free or corruption")
    from editor.engine.packs import ClipSource
    from tests.conftest import make_tiny_clip

    offered = []
    monkeypatch.setattr("editor.ui.models_dialog.offer_precompute",
                        lambda *a, **k: offered.append(a) and False)
    _settings_in(tmp_path)
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    win = MainWindow(Renderer(device="cpu"))
    qtbot.addWidget(win)
    gen = save_generator(make_tiny_generator(resolution=16), tmp_path / "gen.safetensors")
    clip = make_tiny_clip().save(tmp_path / "clip.safetensors")
    win.open_generator(str(gen), ClipSource(path=str(clip)))
    qtbot.waitUntil(lambda: win.pack is not None and win.last_result is not None,
                    timeout=20_000)
    qtbot.wait(50)
    offered.clear()
    close_without_questions(win, qtbot)
    win._offer_precompute()  # as the timer set by the last picture would, after the close
    assert offered == []


def test_days_of_precompute_are_offered_with_no_as_the_default_answer(qtbot, monkeypatch):
    # Enter on "roughly 78 days on cpu … Compute them now?" started the 78 days
    from PySide6.QtWidgets import QMessageBox

    from editor.ui.models_dialog import offer_precompute

    defaults = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a: defaults.append(a[-1]) or a[-1])
    assert offer_precompute(None, "ffhq", "roughly 78 days on cpu") is True
    assert offer_precompute(None, "ffhq", "roughly 78 days on cpu", suggest=False) is False
    assert defaults == [QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No]
