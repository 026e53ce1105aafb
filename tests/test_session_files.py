"""Session files in the real window, driven offscreen on tiny models: where a session's
latent comes from, paths given relative to another folder, files that cannot be read, and
files that must not be written over."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from editor.core.checkpoints import load_generator, save_generator
from editor.engine.compose import encode_wplus
from editor.engine.renderer import Renderer
from editor.engine.session import Session, Source
from editor.ui.main_window import MainWindow
from tests import test_editor_window as editor_window
from tests.conftest import (
    close_without_questions,
    discard_on_close,
    make_tiny_generator,
    model_ready,
)
from tests.test_editor_window import _answering, settled
from tests.test_main_window import _settings_in

# the editor window's fixtures: the window on tiny models with their directions
models, window = editor_window.models, editor_window.window


def _warnings(monkeypatch) -> list[tuple[str, str]]:
    """QMessageBox.warning and .information: the (title, text) shown."""
    shown = []
    for kind in ("warning", "information"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(
            lambda _p, title, text, *a, **k: shown.append((title, text))))
    return shown


def _latent(generator_path, seed: int = 5) -> torch.Tensor:
    g = load_generator(generator_path).generator
    torch.manual_seed(seed)
    return torch.randn(g.n_latent, g.w_dim)


def _write_session(path, source: Source) -> None:
    path.write_text(json.dumps(Session(source=source).to_recipe()), encoding="utf-8")


def _session_naming_its_latent_file(tmp_path, generator_path):
    """portraits/face.atelier.json naming its latent "face.npy" beside it, as older
    versions and hand-written sessions do; (the folder, the latent)."""
    folder = tmp_path / "portraits"
    folder.mkdir()
    latent = _latent(generator_path)
    np.save(folder / "face.npy", latent.numpy()[None])
    _write_session(folder / "face.atelier.json",
                   Source(kind="wplus", wplus_path="face.npy", label="face"))
    return folder, latent


@pytest.fixture
def bare(qtbot, tmp_path, monkeypatch):
    """The window with no model open (the first run without the demo pack)."""
    _settings_in(tmp_path / "settings")
    monkeypatch.setattr("editor.ui.main_window.default_generator_path", lambda: None)
    discard_on_close(monkeypatch)
    win = MainWindow(Renderer(device="cpu"))
    qtbot.addWidget(win)
    monkeypatch.setattr(win, "_offer_precompute", lambda: None)
    yield win
    close_without_questions(win, qtbot)


def test_a_latent_opened_with_no_model_is_not_replaced_by_a_seed_unasked(bare, qtbot,
                                                                          tmp_path,
                                                                          monkeypatch):
    # With no model open, a session of a latent opened, then a generator it does not fit:
    # the latent became seed 7 with a status line only, the document stayed "saved", and
    # Ctrl+S wrote the seed over the latent in the file.
    made_for = save_generator(make_tiny_generator(resolution=8), tmp_path / "a.safetensors")
    other = save_generator(make_tiny_generator(resolution=16, seed=3),
                           tmp_path / "b.safetensors")
    path = tmp_path / "photo.atelier.json"
    _write_session(path, Source(kind="wplus", seed=7, label="my photo",
                                wplus_data=encode_wplus(_latent(made_for))))
    bare.open_session(str(path))
    assert bare.document.state.session.source.kind == "wplus"
    asked = _answering(monkeypatch, QMessageBox.StandardButton.Discard)
    bare.open_generator(str(other))
    qtbot.waitUntil(lambda: model_ready(bare), timeout=30_000)
    assert asked == [("Replace the latent?", "my photo was made for another generator; "
                      "opening b replaces it with seed 7. Save the session first?")]
    assert bare.document.state.session.source.kind == "seed"
    assert bare.document.modified  # what the file holds is not what is shown
    assert json.loads(path.read_text())["source"]["kind"] == "wplus"


def test_a_session_named_relative_to_the_working_folder_is_remembered_by_its_full_path(
        window, qtbot, tmp_path, monkeypatch):
    # `atelier rel.atelier.json` kept "rel.atelier.json" in Open recent: from another
    # working folder it "no longer existed" and was taken off the list.
    folder = tmp_path / "work"
    folder.mkdir()
    _write_session(folder / "rel.atelier.json", Source(seed=3))
    monkeypatch.chdir(folder)
    window.open_path("rel.atelier.json")
    full = str(folder / "rel.atelier.json")
    assert str(window.session_path) == full
    assert QSettings().value("recent/files")[0] == full
    assert QSettings().value("recent/dir") == str(folder)
    monkeypatch.chdir(tmp_path)
    shown = _warnings(monkeypatch)
    window.recent_menu.actions()[0].trigger()
    assert shown == [] and str(window.session_path) == full


def test_a_latent_file_named_relative_to_the_session_is_found_and_carried(
        window, qtbot, tmp_path, models, monkeypatch):
    # A session naming its latent by file only was read from the working folder, and
    # saving kept only the name: a moved folder or a changed file lost or changed the
    # picture.
    gen, _, _ = models
    folder, latent = _session_naming_its_latent_file(tmp_path, gen)
    monkeypatch.chdir(tmp_path)
    shown = _warnings(monkeypatch)
    window.open_session(str(folder / "face.atelier.json"))
    assert shown == []
    source = window.document.state.session.source
    assert source.kind == "wplus" and source.wplus_data == encode_wplus(latent)
    picture = settled(window, qtbot)
    (folder / "face.npy").unlink()  # the file gone: the saved session still draws it
    assert window.save_session()
    saved = json.loads((folder / "face.atelier.json").read_text())
    assert saved["source"]["wplus_data"] == encode_wplus(latent)
    window.open_session(str(folder / "face.atelier.json"))
    assert np.array_equal(settled(window, qtbot), picture)


def test_a_latent_file_the_session_names_is_found_when_it_opens_before_any_model(
        bare, qtbot, tmp_path, monkeypatch):
    gen = save_generator(make_tiny_generator(resolution=8), tmp_path / "g.safetensors")
    folder, latent = _session_naming_its_latent_file(tmp_path, gen)
    monkeypatch.chdir(tmp_path)
    bare.open_session(str(folder / "face.atelier.json"))
    asked = _answering(monkeypatch, QMessageBox.StandardButton.Cancel)
    bare.open_generator(str(gen))
    qtbot.waitUntil(lambda: model_ready(bare), timeout=30_000)
    assert asked == []
    source = bare.document.state.session.source
    assert source.kind == "wplus" and source.wplus_data == encode_wplus(latent)


@pytest.mark.parametrize("content, said", [
    (b"", "face.atelier.json is empty."),
    (b"  \n", "face.atelier.json is empty."),
    (b"\xe9t\xe9 \x00\x01", "face.atelier.json is not a session (not UTF-8 text)."),
])
def test_a_session_that_is_no_text_says_so_in_words(window, tmp_path, monkeypatch, content,
                                                    said):
    # Python's own messages were shown: "'utf-8' codec can't decode byte 0xe9 in position
    # 0: invalid continuation byte", "Expecting value: line 1 column 1 (char 0)"
    path = tmp_path / "face.atelier.json"
    path.write_bytes(content)
    shown = _warnings(monkeypatch)
    before = window.document.state
    window.open_session(str(path))
    assert shown == [("Cannot open the session", said)]
    assert window.document.state == before


def test_a_session_saved_with_a_byte_order_mark_opens(window, tmp_path, monkeypatch):
    # Notepad's "UTF-8 with BOM": refused as "not valid JSON (Unexpected UTF-8 BOM ...)"
    path = tmp_path / "face.atelier.json"
    path.write_text(json.dumps(Session(source=Source(seed=42)).to_recipe()),
                    encoding="utf-8-sig")
    shown = _warnings(monkeypatch)
    window.open_session(str(path))
    assert shown == [] and window.document.state.session.source.seed == 42


def test_a_session_that_is_not_a_recipe_is_named_as_a_session(window, tmp_path,
                                                              monkeypatch):
    # the same file was "Cannot open the session" or "Cannot open the recipe" by the fault
    path = tmp_path / "face.atelier.json"
    path.write_text('{"format": "something else"}', encoding="utf-8")
    shown = _warnings(monkeypatch)
    window.open_session(str(path))
    assert [title for title, _ in shown] == ["Cannot open the session"]


def test_opening_the_open_unchanged_session_again_keeps_its_history(window, tmp_path,
                                                                      monkeypatch):
    # Open recent on the session open (and saved) read it again: a reload that cleared the
    # undo history, steps before the save included
    path = tmp_path / "face.atelier.json"
    _write_session(path, Source(seed=3))
    window.open_session(str(path))
    window.source_panel.step_seed(+1)
    assert window.save_session()
    shown = _warnings(monkeypatch)
    window.open_session(str(path))
    assert shown == [] and window.document.undo_stack.canUndo()
    assert window.statusBar().currentMessage() == "face.atelier.json is open already"
    window.document.undo_stack.undo()
    assert window.document.state.session.source.seed == 3
    # once the document differs from the file, or the file from what was saved, it is
    # read again (a reload: the file's contents, a history of their own)
    window.document.undo_stack.redo()
    _write_session(path, Source(seed=9))
    window.open_session(str(path))
    assert window.document.state.session.source.seed == 9
    assert not window.document.undo_stack.canUndo()


def test_a_write_protected_session_is_not_written_over(window, tmp_path, monkeypatch):
    # the atomic write replaced the file whatever its mode: Ctrl+S overwrote a session
    # the user had made read-only, and it stayed read-only
    path = tmp_path / "keep.atelier.json"
    _write_session(path, Source(seed=3))
    window.open_session(str(path))
    window.source_panel.step_seed(+1)
    path.chmod(0o444)
    before = path.read_bytes()
    shown = _warnings(monkeypatch)
    try:
        assert not window.save_session()
        assert path.read_bytes() == before and window.document.modified
        assert len(shown) == 1 and "keep.atelier.json is write-protected" in shown[0][1]
    finally:
        path.chmod(0o644)


def test_saving_a_session_whose_folder_is_gone_asks_where(window, tmp_path, monkeypatch):
    # Ctrl+S made the deleted folder (and every folder above it) anew in silence
    folder = tmp_path / "gone"
    folder.mkdir()
    _write_session(folder / "face.atelier.json", Source(seed=3))
    window.open_session(str(folder / "face.atelier.json"))
    os.remove(folder / "face.atelier.json")
    folder.rmdir()
    elsewhere = tmp_path / "here.atelier.json"
    monkeypatch.setattr("editor.ui.main_window.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(elsewhere), ""))
    shown = _warnings(monkeypatch)
    assert window.save_session()
    assert not folder.exists() and elsewhere.is_file()
    assert len(shown) == 1 and "no longer exists" in shown[0][1]
    assert window.session_path == elsewhere


# --------------------------------------------------------------- made with another generator


def _session_made_with_other(window, qtbot, tmp_path, models, monkeypatch):
    """A session saved on another generator ("other"), then the fixture's generator open
    again; (the session's path, what it showed)."""
    from editor.engine.packs import ClipSource
    from tests.test_editor_window import RELEVANCE, STATS, _open_other_generator

    monkeypatch.setattr(window, "_offer_precompute", lambda: None)
    gen, clip, _ = models
    _open_other_generator(window, qtbot, tmp_path, models, resolution=8)
    window.source_panel.step_seed(+1)
    shown = settled(window, qtbot)
    path = tmp_path / "made-with-other.atelier.json"
    window.session_path = path
    assert window.save_session()
    window.session_path = None  # the window goes on with another, untitled document
    other = window.pack
    window.open_generator(str(gen), ClipSource(path=str(clip)), relevance_config=RELEVANCE,
                          stats_samples=STATS)
    qtbot.waitUntil(lambda: model_ready(window) and window.pack is not other, timeout=30_000)
    return path, shown


def _choosing(monkeypatch, answer) -> list:
    asked = []
    monkeypatch.setattr("editor.ui.main_window.ask_which_generator",
                        lambda _p, name, made, open_name: asked.append(
                            (name, made.name, open_name)) or answer)
    return asked


def test_a_session_made_with_another_generator_can_open_that_one(window, qtbot, tmp_path,
                                                                 models, monkeypatch):
    # It was shown with the generator open, with a 10 s status line, left "saved", and
    # Ctrl+S then recorded the generator open over the one it was made with.
    from editor.ui.generator_choice import OPEN_ITS_OWN

    path, shown = _session_made_with_other(window, qtbot, tmp_path, models, monkeypatch)
    before = path.read_text()
    asked = _choosing(monkeypatch, OPEN_ITS_OWN)
    window.open_session(str(path))
    qtbot.waitUntil(lambda: window.session_path == path, timeout=30_000)
    assert asked == [("made-with-other.atelier.json", "other", "g")]
    assert window.pack.name == "other"
    assert not window.document.modified and "•" not in window.windowTitle()
    assert np.array_equal(settled(window, qtbot), shown)
    assert window.save_session() and path.read_text() == before


@pytest.mark.parametrize("answer", ["Cancel", "Discard"])
def test_work_done_while_its_generator_loads_is_asked_about_again(window, qtbot, tmp_path,
                                                                  models, monkeypatch,
                                                                  answer):
    # The save question came before the load; a seed set while the generator loaded was
    # then replaced by the file's, unasked.
    from editor.ui.generator_choice import OPEN_ITS_OWN

    path, _ = _session_made_with_other(window, qtbot, tmp_path, models, monkeypatch)
    _choosing(monkeypatch, OPEN_ITS_OWN)
    window.document.mark_saved()  # nothing unsaved when the user is asked
    window.open_session(str(path))
    assert window._session_after_load is not None  # loading; the window takes input
    window._set_seed(1234)
    window.document.end_merge()
    asked = _answering(monkeypatch, getattr(QMessageBox.StandardButton, answer))
    qtbot.waitUntil(lambda: model_ready(window) and window.pack.name == "other", timeout=30_000)
    qtbot.wait(50)  # the session opens from a timer after the load
    assert [title for title, _ in asked] == ["Save changes?"]
    seed = window.document.state.session.source.seed
    if answer == "Cancel":
        assert seed == 1234 and window.session_path is None and window.document.modified
    else:
        assert window.session_path == path
        assert seed == json.loads(path.read_text())["source"]["seed"] != 1234


def test_nothing_done_while_its_generator_loads_asks_nothing(window, qtbot, tmp_path,
                                                             models, monkeypatch):
    from editor.ui.generator_choice import OPEN_ITS_OWN

    path, _ = _session_made_with_other(window, qtbot, tmp_path, models, monkeypatch)
    _choosing(monkeypatch, OPEN_ITS_OWN)
    window._set_seed(77)  # unsaved: asked (Discard) before the load, and not again
    asked = _answering(monkeypatch, QMessageBox.StandardButton.Discard)
    window.open_session(str(path))
    qtbot.waitUntil(lambda: window.session_path == path, timeout=30_000)
    assert len(asked) == 1 and not window.document.modified


def test_a_session_shown_with_the_generator_open_is_left_unsaved(window, qtbot, tmp_path,
                                                                 models, monkeypatch):
    from editor.ui.generator_choice import SHOW_WITH_OPEN

    path, _ = _session_made_with_other(window, qtbot, tmp_path, models, monkeypatch)
    _choosing(monkeypatch, SHOW_WITH_OPEN)
    window.open_session(str(path))
    assert window.session_path == path and window.pack.name == "g"
    # saving would record another generator than the file's: a change, to be asked about
    assert window.document.modified and "•" in window.windowTitle()


def test_a_session_made_with_another_generator_is_not_opened_when_cancelled(
        window, qtbot, tmp_path, models, monkeypatch):
    path, _ = _session_made_with_other(window, qtbot, tmp_path, models, monkeypatch)
    (tmp_path / "other.safetensors").unlink()  # not here any more: still asked
    asked = _choosing(monkeypatch, None)
    before = window.document.state
    window.open_session(str(path))
    assert len(asked) == 1 and window.document.state == before
    assert window.session_path is None and window.pack.name == "g"


def _ask_which_generator(made, open_name: str) -> tuple[str, list[str]]:
    """ask_which_generator's answer with its default button pressed, and its buttons' texts."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from editor.ui.generator_choice import ask_which_generator

    texts = []

    def answer():
        box = QApplication.activeModalWidget()
        if box is None:
            QTimer.singleShot(20, answer)
            return
        texts.extend(b.text() for b in box.buttons())
        box.defaultButton().click()
    QTimer.singleShot(0, answer)
    return ask_which_generator(None, "s.json", made, open_name), texts


@pytest.mark.parametrize("here", [True, False])
def test_the_question_offers_the_generator_it_was_made_with_only_where_it_is(
        qtbot, tmp_path, here):
    from editor.engine.session import ModelIdentity
    from editor.ui.generator_choice import OPEN_ITS_OWN, SHOW_WITH_OPEN

    made = tmp_path / "ffhq.pkl"
    if here:
        made.write_bytes(b"weights")
    got, texts = _ask_which_generator(ModelIdentity("ffhq", "abc", str(made)), "demo")
    assert ("Open ffhq" in texts) == here and "Show with demo" in texts
    assert got == (OPEN_ITS_OWN if here else SHOW_WITH_OPEN)


def test_the_questions_buttons_show_an_ampersand_in_a_generators_name(qtbot, tmp_path):
    # "Open R&D faces" showed as "Open RD faces", Alt+D pressing it
    from PySide6.QtGui import QKeySequence

    from editor.engine.session import ModelIdentity

    made = tmp_path / "R&D faces.pt"
    made.write_bytes(b"weights")
    _, texts = _ask_which_generator(ModelIdentity("R&D faces", "abc", str(made)), "B&W")
    assert "Open R&&D faces" in texts and "Show with B&&W" in texts
    assert all(QKeySequence.mnemonic(t).isEmpty() for t in texts)


def test_a_session_of_random_noise_opens_with_fixed_noise_and_says_so(window, qtbot, tmp_path,
                                                                     monkeypatch):
    # every render drew other noise: the face changed at every slider move, undo did not
    # bring the picture back, and nothing said why
    from editor.engine import session as session_module

    path = tmp_path / "noisy.atelier.json"
    recipe = Session(source=Source(seed=3)).to_recipe()
    recipe["noise_mode"] = "random"
    assert "random" in session_module.NOISE_MODES
    path.write_text(json.dumps(recipe), encoding="utf-8")
    told = []
    monkeypatch.setattr("editor.ui.main_window.show_warning",
                        lambda _p, title, text: told.append((title, text)))
    window.open_session(str(path))
    assert window.document.state.session.noise_mode == "const"
    assert len(told) == 1 and "noisy.atelier.json draws random noise" in told[0][1]
    assert window.document.modified
    first = settled(window, qtbot)
    window.request_render()
    assert np.array_equal(settled(window, qtbot), first)


def test_a_pictures_recipe_made_with_another_generator_opens_it_first(window, qtbot, tmp_path,
                                                                      models, monkeypatch):
    # an exported picture opened (to go on editing it) drew its recipe with the generator
    # open: another face, said in a 10 s status line
    from editor.core.image_io import save_image
    from editor.ui.generator_choice import OPEN_ITS_OWN

    path, shown = _session_made_with_other(window, qtbot, tmp_path, models, monkeypatch)
    picture = tmp_path / "exported.png"
    save_image(picture, shown, recipe=json.loads(path.read_text()))
    asked = _choosing(monkeypatch, OPEN_ITS_OWN)
    window.open_path(str(picture))
    qtbot.waitUntil(lambda: window.document.undo_stack.undoText() == "Open exported.png",
                    timeout=30_000)
    assert asked == [("exported.png", "other", "g")] and window.pack.name == "other"
    assert np.array_equal(settled(window, qtbot), shown)


def test_the_stack_stops_at_what_a_session_file_may_hold(window, qtbot, monkeypatch):
    # the window added a 1,001st edit, saved it, and then refused to open its own file
    from editor.engine.session import MAX_EDITS, MAX_STACK
    from tests.test_editor_window import type_prompt

    assert MAX_STACK < MAX_EDITS  # the prompt being written is saved as one edit more
    monkeypatch.setattr("editor.ui.main_window.MAX_STACK", 2)
    for target in ("face with glasses", "smiling face", "face with a hat"):
        type_prompt(window, target)
        window.add_draft_to_stack()
    assert [e.params["target"] for e in window.document.state.session.edits] == \
        ["face with glasses", "smiling face"]
    assert "holds at most 2 edits" in window.statusBar().currentMessage()


def test_a_picture_exported_from_a_full_stack_with_a_drawn_prompt_opens_again(
        window, qtbot, tmp_path, monkeypatch):
    # its recipe held the stack and the drawn prompt, one edit more than the stack holds,
    # and was refused when opened to go on editing it
    from editor.core.image_io import save_image
    from tests.test_editor_window import type_prompt

    monkeypatch.setattr("editor.ui.main_window.MAX_STACK", 2)
    for target in ("face with glasses", "smiling face", "face with a hat"):
        type_prompt(window, target)
        if target != "face with a hat":
            window.add_draft_to_stack()
    shown = settled(window, qtbot)
    exported = window.current_session()
    assert len(exported.edits) == 3
    picture = tmp_path / "exported.png"
    save_image(picture, shown, recipe=exported.to_recipe())
    for _ in range(4):  # back to the start, so that opening it changes something
        window.document.undo_stack.undo()
    assert len(window.document.state.session.edits) < 2
    refused = []
    monkeypatch.setattr("editor.ui.main_window.ask_invert_instead",
                        lambda _w, _name, why: refused.append(why))
    window.open_path(str(picture))
    assert refused == []
    qtbot.waitUntil(lambda: window.document.undo_stack.undoText() == "Open exported.png",
                    timeout=30_000)
    state = window.document.state
    assert [e.params["target"] for e in state.session.edits] == \
        ["face with glasses", "smiling face"]
    assert state.draft == exported.edits[-1] and state.draft_drawn
    assert window.prompt_panel.target.text() == "face with a hat"
    assert np.array_equal(settled(window, qtbot), shown)


def test_a_latent_file_made_for_another_generator_is_read_with_that_one(window, qtbot,
                                                                        tmp_path,
                                                                        monkeypatch):
    # the latent named by file was read with the generator open, before the question:
    # one of another shape made the session unopenable ("Cannot open the session")
    from editor.ui.generator_choice import OPEN_ITS_OWN

    other = save_generator(make_tiny_generator(resolution=16, channel_max=16, seed=3),
                           tmp_path / "other.safetensors")
    folder, latent = _session_naming_its_latent_file(tmp_path, other)
    path = folder / "face.atelier.json"
    recipe = json.loads(path.read_text())
    recipe["generator"] = {"name": "other", "path": str(other),
                           "content_hash": load_generator(other).content_hash}
    path.write_text(json.dumps(recipe), encoding="utf-8")
    monkeypatch.setattr(window, "_offer_precompute", lambda: None)
    shown = _warnings(monkeypatch)
    asked = _choosing(monkeypatch, OPEN_ITS_OWN)
    window.open_session(str(path))
    qtbot.waitUntil(lambda: window.session_path == path, timeout=30_000)
    assert shown == [] and len(asked) == 1 and window.pack.name == "other"
    assert window.document.state.session.source.wplus_data == encode_wplus(latent)


# --------------------------------------------------------------- pictures that carry a recipe


def _exported_then_retouched(window, qtbot, tmp_path, recipe: dict | str):
    """A picture this program exported, with its recipe, painted on since."""
    from editor.core.image_io import save_image

    shown = settled(window, qtbot).copy()
    shown[:4, :4] = 0  # a black square painted on it
    picture = tmp_path / "retouched.png"
    save_image(picture, shown, recipe=recipe)
    return picture


def _picture_questions(monkeypatch, replay_or_invert: str | None, invert_instead: bool):
    asked = []
    monkeypatch.setattr("editor.ui.main_window.ask_replay_or_invert",
                        lambda _w, name: asked.append(("replay or invert", name))
                        or replay_or_invert)
    monkeypatch.setattr("editor.ui.main_window.ask_invert_instead",
                        lambda _w, name, why: asked.append(("invert instead", why))
                        or invert_instead)
    return asked


def _inversions_started(window, monkeypatch) -> list[str]:
    started = []
    monkeypatch.setattr(window.inversion, "start", lambda path, *a, **k: started.append(path))
    return started


@pytest.mark.parametrize("invert", [True, False])
def test_a_jpeg_whose_recipe_is_damaged_may_be_inverted_instead(window, qtbot, tmp_path,
                                                                 monkeypatch, invert):
    # its damaged XMP read as "no recipe", so a drop inverted it unasked; as a damaged
    # file it could not be opened at all, though its pixels are fine
    from editor.core.image_io import save_image

    picture = tmp_path / "export.jpg"
    save_image(picture, settled(window, qtbot), recipe=window.current_session().to_recipe())
    data = picture.read_bytes()
    picture.write_bytes(data.replace(b"</atelier:recipe>", b"</atelier:recipX>"))
    asked = _picture_questions(monkeypatch, None, invert)
    started = _inversions_started(window, monkeypatch)
    state = window.document.state
    window.open_path(str(picture))
    QApplication.processEvents()
    (question,) = asked
    assert question[0] == "invert instead"
    assert question[1].startswith("export.jpg cannot be replayed: its Latent Atelier recipe "
                                  "is damaged (the XMP metadata does not parse")
    assert started == ([str(picture)] if invert else [])
    assert window.document.state == state


@pytest.mark.parametrize("answer", ["replay", "invert", None])
def test_a_picture_opened_as_a_picture_asks_whether_to_replay_its_recipe(
        window, qtbot, tmp_path, monkeypatch, answer):
    # File > Open image on an export painted on since replayed the old render: the
    # painting was gone, unsaid, and the picture itself could never be inverted
    window.source_panel.step_seed(+2)
    recipe = window.current_session().to_recipe()
    picture = _exported_then_retouched(window, qtbot, tmp_path, recipe)
    window.source_panel.step_seed(+1)
    asked = _picture_questions(monkeypatch, answer, False)
    started = _inversions_started(window, monkeypatch)
    monkeypatch.setattr("editor.ui.main_window.QFileDialog.getOpenFileName",
                        lambda *a, **k: (str(picture), ""))
    window.open_image_dialog()
    assert asked == [("replay or invert", "retouched.png")]
    assert started == ([str(picture)] if answer == "invert" else [])
    assert window.document.state.session.source.seed == (2 if answer == "replay" else 3)


def test_a_dropped_export_replays_its_recipe_and_says_how_to_invert_it(window, qtbot,
                                                                        tmp_path, monkeypatch):
    window.source_panel.step_seed(+2)
    picture = _exported_then_retouched(window, qtbot, tmp_path,
                                       window.current_session().to_recipe())
    window.source_panel.step_seed(+1)
    asked = _picture_questions(monkeypatch, None, False)
    window.open_paths([str(picture)])
    assert asked == [] and window.document.state.session.source.seed == 2
    assert "Open image… inverts its pixels" in window.statusBar().currentMessage()


@pytest.mark.parametrize("invert", [True, False])
def test_a_picture_whose_recipe_cannot_be_used_may_be_inverted_instead(
        window, qtbot, tmp_path, monkeypatch, invert):
    # a recipe cut in half made the picture impossible to open at all
    text = json.dumps(Session(source=Source(seed=4)).to_recipe())
    picture = _exported_then_retouched(window, qtbot, tmp_path, text[:len(text) // 2])
    session = window.document.state.session
    asked = _picture_questions(monkeypatch, None, invert)
    started = _inversions_started(window, monkeypatch)
    shown = _warnings(monkeypatch)
    window.open_paths([str(picture)])
    assert [kind for kind, _ in asked] == ["invert instead"] and shown == []
    assert asked[0][1].startswith("retouched.png: ")
    assert started == ([str(picture)] if invert else [])
    assert window.document.state.session == session


@pytest.mark.parametrize("answer", ["Save", "Cancel"])
def test_saving_over_a_file_changed_on_disk_since_is_asked_first(window, tmp_path,
                                                                 monkeypatch, answer):
    # Ctrl+S replaced what another program or window had written meanwhile, unasked.
    path = tmp_path / "a.atelier.json"
    path.write_text(Session(source=Source(seed=3)).to_json())
    window.open_session(str(path))
    theirs = Session(source=Source(seed=99)).to_json()
    path.write_text(theirs)
    window._set_seed(5)
    window.document.end_merge()
    asked = _answering(monkeypatch, getattr(QMessageBox.StandardButton, answer))
    assert window.save_session() == (answer == "Save")
    assert len(asked) == 1 and "changed on disk" in asked[0][1]
    if answer == "Save":
        assert json.loads(path.read_text())["source"]["seed"] == 5
        assert not window.document.modified
        window._set_seed(6)
        assert window.save_session() and len(asked) == 1  # what it wrote itself: not asked
    else:
        assert path.read_text() == theirs and window.document.modified


def test_saving_a_file_deleted_since_makes_it_again_unasked(window, tmp_path, monkeypatch):
    path = tmp_path / "a.atelier.json"
    path.write_text(Session(source=Source(seed=3)).to_json())
    window.open_session(str(path))
    path.unlink()
    window._set_seed(5)
    asked = _answering(monkeypatch, QMessageBox.StandardButton.Cancel)
    assert window.save_session() and asked == []
    assert json.loads(path.read_text())["source"]["seed"] == 5


def test_a_file_reached_through_a_linked_folder_is_one_recent_file(window, tmp_path):
    # it was listed twice, and opening it by its other path read it again, clearing the
    # history, instead of saying it was open already
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    (real / "s.atelier.json").write_text(Session(source=Source(seed=3)).to_json())
    window.open_session(str(tmp_path / "link" / "s.atelier.json"))
    window._set_seed(8)
    window.document.end_merge()
    assert window.save_session()
    window.open_session(str(real / "s.atelier.json"))
    assert window.document.undo_stack.canUndo()  # not read again
    assert "open already" in window.statusBar().currentMessage()
    recent = QSettings().value("recent/files")
    recent = [recent] if isinstance(recent, str) else recent
    assert sum(os.path.realpath(p) == str(real / "s.atelier.json") for p in recent) == 1


def test_a_name_with_qts_placeholder_shows_in_the_title(window, qtbot, tmp_path):
    path = tmp_path / "v2 [*] final.atelier.json"
    path.write_text(Session(source=Source(seed=3)).to_json())
    window.open_session(str(path))
    window.show()
    qtbot.waitExposed(window)
    assert window.windowHandle().title().startswith("v2 [*] final.atelier.json")


def test_pasting_a_session_files_text_leaves_its_unadded_prompt_out(window, tmp_path):
    # the prompt typed but not drawn (strength 0) is kept in a session file for the prompt
    # panel; pasted, it became a strength-0 edit on the stack
    from PySide6.QtWidgets import QApplication

    from tests.test_editor_window import type_prompt

    type_prompt(window, "smiling face")
    state = window.document.state
    window._change(state.update(state.draft.id, strength=0.0), "strength")
    window.document.end_merge()
    text = json.dumps(window.document.state.to_session_file(window.current_session()))
    assert '"draft_id"' in text
    QApplication.clipboard().setText(text)
    window.paste()
    assert window.document.state.session.edits == ()


def test_a_file_too_large_to_be_a_session_is_refused_before_it_is_read(window, tmp_path,
                                                                       monkeypatch):
    # a 120 MB file was read and parsed on the window's thread: 5 s and 0.6 GB
    from editor.engine import session as session_module

    monkeypatch.setattr(session_module, "MAX_RECIPE_BYTES", 1_000_000)
    path = tmp_path / "huge.atelier.json"
    recipe = json.loads(Session(source=Source(seed=3)).to_json())
    path.write_text(json.dumps({**recipe, "pad": "x" * 2_500_000}))
    read = []
    monkeypatch.setattr(session_module, "open", lambda *a, **k: read.append(a),
                        raising=False)  # the reader's own open: never called
    shown = []
    monkeypatch.setattr(QMessageBox, "warning",
                        staticmethod(lambda _p, title, text: shown.append(text)))
    window.open_session(str(path))
    assert shown == ["huge.atelier.json is 2.5 MB: too large to be a session (they are at "
                     "most 1 MB)."]
    assert read == [] and window.session_path is None


def test_a_session_whose_latent_file_is_gone_opens_its_edits_on_the_picture_open(
        window, tmp_path, monkeypatch):
    # the whole session was refused ("could not read the latent file gone.npy"), and the
    # edit stack with it
    path = tmp_path / "a.atelier.json"
    recipe = Session(source=Source(kind="wplus", wplus_path="gone.npy")).to_recipe()
    recipe["edits"] = [{"kind": "global", "strength": 3.0, "name": "mine", "id": "abc",
                        "params": {"neutral": "face", "target": "smiling face"}}]
    path.write_text(json.dumps(recipe))
    window._set_seed(4)
    window.document.mark_saved()
    shown, refused = [], []
    monkeypatch.setattr("editor.ui.main_window.show_warning",
                        lambda _p, title, text: shown.append((title, text)))
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda *a: refused.append(a)))
    window.open_session(str(path))
    assert refused == []
    state = window.document.state.session
    assert window.session_path == path and [e.name for e in state.edits] == ["mine"]
    assert state.source == Source(seed=4, psi=state.source.psi)
    assert window.document.modified  # saving records another picture than the file's
    assert len(shown) == 1 and str(tmp_path / "gone.npy") in shown[0][1]


def test_a_session_made_with_the_demo_in_another_install_offers_the_demo_here(
        window, tmp_path, monkeypatch):
    # it names that install's path: "toyfaces-64 is not here" was the only answer, though
    # the same generator ships here
    from editor.engine.models import DEMO_GENERATOR, demo_generator_hash, local_generator
    from editor.engine.session import ModelIdentity

    elsewhere = ModelIdentity("toyfaces-64", demo_generator_hash(),
                              "/home/someone/atelier/generator.safetensors")
    assert local_generator(elsewhere) == DEMO_GENERATOR
    assert local_generator(ModelIdentity("x", "0" * 64, "/nowhere/x.pt")) is None
    path = tmp_path / "shared.atelier.json"
    recipe = Session(source=Source(seed=3)).to_recipe()
    recipe["generator"] = {"name": elsewhere.name, "content_hash": elsewhere.content_hash,
                           "path": elsewhere.path}
    path.write_text(json.dumps(recipe))
    asked = []
    monkeypatch.setattr("editor.ui.main_window.ask_which_generator",
                        lambda _p, name, made, open_name: asked.append(made) or None)
    window.open_session(str(path))
    assert [m.path for m in asked] == [str(DEMO_GENERATOR)]


def test_the_demos_hash_follows_its_file(tmp_path, monkeypatch):
    # cached once, a missing file's None (or a file rebuilt since) held for the session
    from editor.engine import models

    monkeypatch.setattr(models, "DEMO_GENERATOR", tmp_path / "generator.safetensors")
    assert models.demo_generator_hash() is None
    gen = make_tiny_generator(resolution=8, channel_max=16)
    save_generator(gen, tmp_path / "generator.safetensors")
    first = models.demo_generator_hash()
    assert first == load_generator(tmp_path / "generator.safetensors").content_hash
    save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=3),
                   tmp_path / "generator.safetensors")
    assert models.demo_generator_hash() not in (None, first)
