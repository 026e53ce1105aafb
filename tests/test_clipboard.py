"""Copy and paste through the system clipboard, in the real window: the picture goes out
with its recipe, and a recipe, a file or a picture comes back in."""
# ruff: noqa: F811 - the editor window's fixtures are imported, then named as arguments

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from editor.core.paths import cache_dir
from editor.engine.session import Session
from editor.ui import clipboard as cb
from editor.ui.qimages import qimage_from_array
from tests.conftest import close_without_questions, model_ready
from tests.test_editor_window import (  # noqa: F401 - fixtures used by name
    _answer_crop_dialog,
    models,
    settled,
    show_active,
    type_prompt,
    window,
    window_opening,
)


@pytest.fixture(autouse=True)
def _clipboard_emptied(qapp):
    """Mime data a test puts on the offscreen clipboard directly is not left for Qt's exit
    handlers (deleting it after Python has shut down crashes the process)."""
    yield
    QApplication.clipboard().clear()


def test_a_process_that_copied_a_picture_exits_cleanly(tmp_path):
    # Offscreen (Qt's in-process clipboard) the copied picture was deleted after Python had
    # shut down: the process crashed at exit (status 139).
    import subprocess
    import sys

    script = ("from PySide6.QtWidgets import QApplication\n"
              "from PySide6.QtGui import QImage\n"
              "from editor.ui.clipboard import put_picture\n"
              "app = QApplication([])\n"
              "put_picture(QImage(4, 4, QImage.Format.Format_RGB888), '{}')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr.decode()


def _clipboard_pixels() -> np.ndarray:
    image = QApplication.clipboard().image().convertToFormat(QImage.Format.Format_RGB888)
    h, w = image.height(), image.width()
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())
    return rows[:, :3 * w].reshape(h, w, 3).copy()


def _clipboard_recipe() -> dict:
    data = QApplication.clipboard().mimeData().data(cb.RECIPE_MIME)
    return json.loads(bytes(data.data()).decode())


def test_copy_puts_the_picture_and_its_recipe_and_paste_brings_the_session_back(
        window, qtbot):
    window.prompt_panel.auto_beta.setChecked(True)
    type_prompt(window, "face with glasses")
    window.add_draft_to_stack()
    shown = settled(window, qtbot)
    copied_session = window.document.state.session
    window.copy_image()
    assert np.array_equal(_clipboard_pixels(), shown)
    recipe = Session.from_recipe(_clipboard_recipe())
    assert [e.params.get("target") for e in recipe.edits] == ["face with glasses"]
    assert _clipboard_recipe()["output"]["rendered_on"]["device"] == "cpu"  # what drew it

    window.source_panel.step_seed(+1)  # something else, then paste the copy back
    window.document.end_merge()
    other = settled(window, qtbot)
    assert not np.array_equal(other, shown)
    window.paste()
    state = window.document.state.session
    assert state.source == copied_session.source
    assert [e.params for e in state.edits] == [e.params for e in copied_session.edits]
    assert np.array_equal(settled(window, qtbot), shown)
    window.undo()  # one undoable step
    assert np.array_equal(settled(window, qtbot), other)


def test_copy_right_after_a_change_copies_the_changed_picture(window, qtbot):
    before = settled(window, qtbot)
    window.source_panel.step_seed(+1)
    window.copy_image()  # the new seed is still being drawn
    after = settled(window, qtbot)
    assert not np.array_equal(after, before)
    qtbot.waitUntil(lambda: not QApplication.clipboard().image().isNull(), timeout=10_000)
    assert np.array_equal(_clipboard_pixels(), after)
    assert _clipboard_recipe()["source"]["seed"] == window.document.state.session.source.seed


def test_pasting_a_picture_inverts_it_from_a_file_in_the_cache(window, qtbot, monkeypatch):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 255, (24, 30, 3), dtype=np.uint8)
    QApplication.clipboard().setImage(qimage_from_array(pixels))
    _answer_crop_dialog(accept=True)
    with qtbot.waitSignal(window.jobs.job_finished, timeout=120_000):
        window.paste()
    source = window.document.state.session.source
    assert source.kind == "wplus" and source.label == "pasted picture"
    kept = list((cache_dir() / cb.PASTED_DIR).glob("pasted-*.png"))
    assert len(kept) == 1 and np.array_equal(np.asarray(Image.open(kept[0])), pixels)
    assert not list(kept[0].parent.glob(".*.tmp"))  # written atomically

    # the same picture again is the same file (its crop is remembered by it)
    _answer_crop_dialog(accept=False)
    window.paste()
    assert list((cache_dir() / cb.PASTED_DIR).glob("pasted-*.png")) == kept


def test_pasted_files_open_as_if_dropped(window, qtbot, tmp_path):
    window.prompt_panel.auto_beta.setChecked(True)
    type_prompt(window, "face with glasses")
    shown = settled(window, qtbot)
    session_file = tmp_path / "look.atelier.json"
    window.session_path = session_file
    assert window.save_session()
    window.source_panel.step_seed(+1)
    window.document.end_merge()
    settled(window, qtbot)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(session_file))])
    QApplication.clipboard().setMimeData(mime)
    window.paste()
    assert np.array_equal(settled(window, qtbot), shown)


def test_dropped_files_open_after_the_drop_has_ended(window, qtbot, tmp_path):
    # The crop dialog (or any question) ran inside the canvas's drop handler, keeping the
    # program the files were dragged from waiting until it closed.
    session_file = tmp_path / "look.atelier.json"
    window.session_path = session_file
    window.source_panel.step_seed(+3)
    window.document.end_merge()
    assert window.save_session()
    seed = window.document.state.session.source.seed
    window.source_panel.step_seed(+1)
    window.document.end_merge()
    window.canvas.files_dropped.emit([str(session_file)])  # what dropEvent does
    assert window.document.state.session.source.seed == seed + 1  # not opened inside it
    qtbot.waitUntil(lambda: window.document.state.session.source.seed == seed, timeout=5000)


def test_pasting_recipe_text_opens_it_and_other_text_changes_nothing(window, qtbot):
    session = window.document.state.session
    QApplication.clipboard().setText("face with glasses")
    window.paste()
    assert window.document.state.session == session
    assert "no picture, recipe or file" in window.statusBar().currentMessage()

    recipe = json.loads(json.dumps(session.to_recipe()))
    recipe["source"]["seed"] = session.source.seed + 5
    QApplication.clipboard().setText(json.dumps(recipe, indent=2))
    window.paste()
    assert window.document.state.session.source.seed == session.source.seed + 5
    # its keys sorted by another tool (jq -S): "format" comes after the edits (a long
    # name here, a discovered edit's delta), past the first 4 KiB where alone it was
    # looked for
    recipe["source"]["seed"] = session.source.seed + 6
    recipe["edits"] = [{"kind": "global", "params": {"target": "a face with glasses"},
                        "strength": 2.0, "enabled": False, "name": "x" * 5000, "id": "e1"}]
    text = json.dumps(recipe, indent=2, sort_keys=True)
    assert text.index('"format"') > 4096
    QApplication.clipboard().setText(text)
    window.paste()
    pasted = window.document.state.session
    assert pasted.source.seed == session.source.seed + 6 and pasted.edits[0].id == "e1"


def test_a_damaged_pasted_recipe_says_why_and_changes_nothing(window, qtbot, monkeypatch):
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: warnings.append(a[1:]))
    session = window.document.state.session
    mime = QMimeData()
    mime.setData(cb.RECIPE_MIME, b'{"format": "latent-atelier-recipe", "version": 99}')
    QApplication.clipboard().setMimeData(mime)
    window.paste()
    assert window.document.state.session == session
    assert len(warnings) == 1 and "newer Latent Atelier" in warnings[0][1]


def test_a_text_box_keeps_its_own_copy_and_paste_keys(window, qtbot):
    show_active(window, qtbot)
    target = window.prompt_panel.target
    target.setFocus()
    target.setText("")
    session = window.document.state.session
    QApplication.clipboard().setText("face with a hat")
    QTest.keyClick(target, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert target.text() == "face with a hat"
    assert window.document.state.session.source == session.source  # nothing pasted there
    target.selectAll()
    QApplication.clipboard().clear()
    QTest.keyClick(target, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.clipboard().text() == "face with a hat"  # the text, not the picture

    window.canvas.setFocus()  # elsewhere the keys are the window's
    QTest.keyClick(window.canvas, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: QApplication.clipboard().mimeData().hasFormat(cb.RECIPE_MIME),
                    timeout=10_000)


def test_a_huge_pasted_picture_is_refused_before_it_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(cb, "DEFAULT_MAX_PIXELS", 100)
    with pytest.raises(cb.PasteError, match="11x10 pixels"):
        cb.save_pasted_image(QImage(11, 10, QImage.Format.Format_RGB888), tmp_path)
    assert not list(tmp_path.iterdir())


def test_only_the_newest_pasted_pictures_are_kept(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(cb, "KEEP_PASTED", 3)
    paths = []
    for i in range(5):
        image = QImage(4, 4, QImage.Format.Format_RGB888)
        image.fill(i * 40)
        paths.append(cb.save_pasted_image(image, tmp_path))
        os.utime(paths[-1], (1000 + i, 1000 + i))  # written in this order
    assert sorted(tmp_path.iterdir()) == sorted(paths[2:])


def test_a_pasted_picture_with_transparency_is_flattened_onto_white_as_a_file_is(tmp_path):
    # Premultiplied transparency came out black, plain transparency showed the colour under
    # it; the same picture opened as a file is flattened onto white, with a note.
    from editor.core.image_io import load_image

    for fmt in (QImage.Format.Format_ARGB32_Premultiplied, QImage.Format.Format_ARGB32,
                QImage.Format.Format_RGBA8888):
        image = QImage(6, 4, QImage.Format.Format_ARGB32)
        image.fill(0x00FF0000)  # red, fully transparent
        image.setPixel(0, 0, 0xFF0000FF)  # one opaque blue pixel
        loaded = load_image(cb.save_pasted_image(image.convertToFormat(fmt), tmp_path))
        assert loaded.rgb[1, 1].tolist() == [255, 255, 255], fmt
        assert loaded.rgb[0, 0].tolist() == [0, 0, 255], fmt
        assert any("white" in note for note in loaded.notes), fmt


def test_the_same_pixels_pasted_again_are_the_same_file(tmp_path):
    # The name hashed the padding that ends each line of an RGB picture (memory left as
    # it was) and the format it came in: the same picture pasted twice was two files, its
    # remembered crop lost and a second inversion of it started.
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (3, 5, 3), dtype=np.uint8)  # 15 bytes a line: padded
    images = []
    for pad in (0, 255):
        lines = np.full((3, 16), pad, np.uint8)
        lines[:, :15] = pixels.reshape(3, 15)
        images.append(QImage(lines.tobytes(), 5, 3, 16, QImage.Format.Format_RGB888).copy())
    opaque = images[0].convertToFormat(QImage.Format.Format_ARGB32)
    paths = {cb.save_pasted_image(image, tmp_path) for image in (*images, opaque)}
    assert len(paths) == 1
    assert np.array_equal(np.asarray(Image.open(paths.pop())), pixels)
    see_through = QImage(opaque)
    see_through.setPixel(0, 0, 0x00000000)
    assert cb.save_pasted_image(see_through, tmp_path) not in paths


def test_a_pasted_picture_that_carries_a_recipe_asks_whether_to_replay_it(
        window, qtbot, monkeypatch):
    # An export's pixels pasted from another program keep its recipe; pasting always
    # inverted them, where File > Open image asks
    from editor.core.image_io import RECIPE_KEY
    from tests.test_session_files import _inversions_started, _picture_questions

    window.source_panel.step_seed(+2)
    image = qimage_from_array(settled(window, qtbot).copy())
    image.setText(RECIPE_KEY, json.dumps(window.current_session().to_recipe()))
    window.source_panel.step_seed(+1)
    QApplication.clipboard().setImage(image)
    asked = _picture_questions(monkeypatch, "replay", False)
    started = _inversions_started(window, monkeypatch)
    window.paste()
    assert asked == [("replay or invert", "pasted picture")] and started == []
    assert window.document.state.session.source.seed == 2
    _picture_questions(monkeypatch, "invert", False)
    window.paste()
    assert len(started) == 1 and window.document.state.session.source.seed == 2


def test_a_pasted_recipe_made_with_another_generator_asks_which_to_show_it_with(
        window, qtbot, tmp_path, models, monkeypatch):
    # It was shown with the generator open, with a status line; an opened one asks
    from editor.ui.generator_choice import OPEN_ITS_OWN
    from tests.test_session_files import _choosing, _session_made_with_other

    path, shown = _session_made_with_other(window, qtbot, tmp_path, models, monkeypatch)
    asked = _choosing(monkeypatch, OPEN_ITS_OWN)
    QApplication.clipboard().setText(path.read_text())
    window.paste()
    qtbot.waitUntil(lambda: model_ready(window) and window.pack.name == "other", timeout=30_000)
    qtbot.waitUntil(lambda: np.array_equal(settled(window, qtbot), shown), timeout=30_000)
    assert asked == [("the pasted recipe", "other", "g")]


def test_copy_recipe_puts_text_that_pastes_back_into_the_same_picture(window, qtbot):
    # the recipe went to the clipboard only beside the picture, in a format of our own:
    # nothing to paste into a message or a note
    window.prompt_panel.auto_beta.setChecked(True)
    type_prompt(window, "face with glasses")
    window.add_draft_to_stack()
    shown = settled(window, qtbot)
    assert window.copy_recipe_act.shortcut().toString() == "Ctrl+Shift+C"
    window.copy_recipe_act.trigger()  # Edit > Copy recipe
    qtbot.waitUntil(lambda: bool(QApplication.clipboard().text()), timeout=10_000)
    text = QApplication.clipboard().text()
    assert not QApplication.clipboard().mimeData().hasImage()
    recipe = Session.from_recipe(json.loads(text))
    assert [e.params.get("target") for e in recipe.edits] == ["face with glasses"]
    window.source_panel.step_seed(+1)
    window.document.end_merge()
    assert not np.array_equal(settled(window, qtbot), shown)
    window.paste()
    assert np.array_equal(settled(window, qtbot), shown)


def test_a_picture_pasted_while_the_first_model_loads_opens_with_it(qtbot, tmp_path,
                                                                    monkeypatch, models):
    # It said "Open a generator first." while the generator opened at start was loading
    # (a dropped or pasted file waited for it)
    told = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: told.append(a[2]))
    inverted = []
    win = window_opening(qtbot, tmp_path, monkeypatch, models)
    monkeypatch.setattr(win.inversion, "start",
                        lambda path, name=None: inverted.append((path, name)))
    try:
        QApplication.clipboard().setImage(qimage_from_array(
            np.full((24, 24, 3), 90, np.uint8)))
        win.paste()
        assert told == [] and inverted == []
        assert "opens once g.safetensors has loaded" in win.statusBar().currentMessage()
        qtbot.waitUntil(lambda: bool(inverted), timeout=20_000)
        path, name = inverted[0]
        assert name == "pasted picture" and os.path.dirname(path) == str(cache_dir() / "pasted")
        assert win.pack is not None
        # the next is told apart (two Jobs rows, two history steps read the same)
        QApplication.clipboard().setImage(qimage_from_array(
            np.full((24, 24, 3), 150, np.uint8)))
        win.paste()
        assert [n for _, n in inverted] == ["pasted picture", "pasted picture 2"]
    finally:
        close_without_questions(win, qtbot)
