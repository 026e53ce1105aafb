"""The export dialog offscreen: widgets -> plan, remembered choices, asking before
replacing files."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QSettings
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox, QWidget

from editor.engine.export import ExportPlan
from editor.engine.session import Edit, Session, Source
from editor.ui import export_dialog
from editor.ui.app import init_application
from editor.ui.export_dialog import ExportDialog, confirm_overwrite

SMILE = Edit(kind="global", params={"neutral": "face", "target": "smiling face"}, id="smile")
HAIR = Edit(kind="delta", params={"delta": [0.0]}, name="hair", id="hair")
SESSION = Session(source=Source(seed=42, psi=0.7), edits=(SMILE, HAIR))


@pytest.fixture(autouse=True)
def settings(tmp_path):
    init_application()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "settings"))
    QSettings().clear()
    QSettings().setValue("export/dir", str(tmp_path))
    yield QSettings()


@pytest.fixture
def make_dialog(qtbot):
    def make(session=SESSION, resolution=256, **kw):
        dialog = ExportDialog(session, resolution=resolution, **kw)
        qtbot.addWidget(dialog)
        return dialog
    return make


@pytest.fixture
def answers(monkeypatch):
    """Record QMessageBox questions and answer them from a list (Yes by default)."""
    asked, replies = [], []

    def question(parent, title, text, buttons, default):
        asked.append(text)
        return replies.pop(0) if replies else QMessageBox.StandardButton.Yes
    monkeypatch.setattr(QMessageBox, "question", question)
    return asked, replies


def _select(box, data):
    i = box.findData(data)
    assert i >= 0, data
    box.setCurrentIndex(i)


def test_image_plan_from_widgets(make_dialog, tmp_path):
    d = make_dialog()
    assert d.kind == "image"
    assert Path(d.path_edit.text()) == tmp_path / "seed42.png"  # a sensible default name
    assert not d.quality_box.isEnabled() and not d.filter_box.isEnabled()
    _select(d.format_box, "JPEG")
    assert d.path_edit.text().endswith("seed42.jpg")  # the name follows the format
    assert d.quality_box.isEnabled()
    _select(d.scale_box, 4)
    assert d.filter_box.isEnabled() and "1024 × 1024" in d.summary_label.text()
    _select(d.filter_box, "nearest")
    d.quality_box.setValue(80)
    assert d.build_plan() == ExportPlan(
        kind="image", path=str(tmp_path / "seed42.jpg"), format="JPEG", scale=4,
        upscale_filter="nearest", quality=80, edit_id="smile", folder=str(tmp_path), first_seed=42,
        count=16)


def test_sweep_plan_from_widgets(make_dialog, tmp_path):
    d = make_dialog(edit_id="hair")
    _select(d.kind_box, "sweep")
    assert d.edit_box.currentText() == "hair"  # preselected, shown by title
    assert [d.edit_box.itemText(i) for i in range(2)] == ["face → smiling face", "hair"]
    assert d.format_box.currentData() == "GIF" and d.path_edit.text().endswith(".gif")
    assert d.edit_box.isVisibleTo(d) and not d.count_box.isVisibleTo(d)
    d.start_box.setValue(-2.5)
    d.stop_box.setValue(6)
    d.frames_box.setValue(10)
    d.fps_box.setValue(20)
    d.bounce_box.setChecked(True)
    assert "18 frames, 0.9 s" in d.summary_label.text()
    plan = d.build_plan()
    assert (plan.kind, plan.edit_id, plan.start, plan.stop, plan.frames, plan.fps,
            plan.bounce, plan.format) == ("sweep", "hair", -2.5, 6.0, 10, 20.0, True, "GIF")
    assert plan.path == str(tmp_path / "seed42.gif")


def test_batch_plan_with_a_chosen_folder(make_dialog, tmp_path, monkeypatch):
    d = make_dialog()
    _select(d.kind_box, "batch")
    assert d.count_box.isVisibleTo(d) and not d.path_edit.isVisibleTo(d)
    monkeypatch.setattr(d, "_ask_folder", lambda start: str(tmp_path / "out"))
    d.folder_button.click()
    assert d.folder_edit.text() == str(tmp_path / "out")
    assert d.first_seed_box.value() == 42  # starts at the session's seed
    d.count_box.setValue(5)
    _select(d.format_box, "WEBP")
    assert d.pattern_edit.text() == "seed{seed:06d}.webp"
    plan = d.build_plan()
    assert (plan.kind, plan.folder, plan.first_seed, plan.count, plan.name_pattern,
            plan.format) == ("batch", str(tmp_path / "out"), 42, 5, "seed{seed:06d}.webp",
                             "WEBP")
    assert list(plan.seeds) == [42, 43, 44, 45, 46]


def test_a_batch_says_its_first_and_last_file_names(make_dialog, monkeypatch):
    # "seed{seed:06d}.png" is Python's format syntax: the summary shows what it gives
    d = make_dialog()
    _select(d.kind_box, "batch")
    assert "16 files: seed000042.png … seed000057.png" in d.summary_label.text()
    d.first_seed_box.setValue(7)
    d.count_box.setValue(1)
    assert "1 file: seed000007.png" in d.summary_label.text()
    assert "…" not in d.summary_label.text()
    _select(d.format_box, "JPEG")  # the names the export writes, extension and all
    d.pattern_edit.setText("face-{seed}")
    d.count_box.setValue(3)
    assert "3 files: face-7.jpg … face-9.jpg" in d.summary_label.text()
    d.pattern_edit.setText("face-{nope}")  # refused at Export, which says why
    assert "3 files" in d.summary_label.text() and "face" not in d.summary_label.text()
    # only the first and last names are made, however many seeds
    made = []
    real = export_dialog.batch_paths
    monkeypatch.setattr(export_dialog, "batch_paths",
                        lambda folder, seeds, *a: made.append(list(seeds)) or real(
                            folder, seeds, *a))
    d.pattern_edit.setText("seed{seed:06d}.jpg")
    d.count_box.setValue(100_000)
    assert made[-1] == [7, 100_006]
    assert "seed000007.jpg … seed100006.jpg" in d.summary_label.text()


def test_kinds_the_session_cannot_do_are_not_offered(make_dialog, tmp_path):
    w = Session(source=Source(kind="wplus", wplus_path=str(tmp_path / "w.npy")))
    d = make_dialog(w)
    model = d.kind_box.model()
    enabled = {d.kind_box.itemData(i): model.item(i).isEnabled() for i in range(3)}
    assert enabled == {"image": True, "sweep": False, "batch": False}
    assert Path(d.path_edit.text()).name == "edited.png"


def test_browse_picks_a_file_and_its_extension_picks_the_format(make_dialog, tmp_path,
                                                                  monkeypatch):
    d = make_dialog()
    seen = []

    def ask(start, filters):
        seen.append(filters)
        return str(tmp_path / "portrait.webp")
    monkeypatch.setattr(d, "_ask_save_path", ask)
    d.browse_button.click()
    assert seen[0][0].startswith("PNG")  # the current format's filter comes first
    assert d.format_box.currentData() == "WEBP"
    assert d.path_edit.text() == str(tmp_path / "portrait.webp")
    monkeypatch.setattr(d, "_ask_save_path", lambda start, filters: "")  # cancelled
    d.browse_button.click()
    assert d.path_edit.text() == str(tmp_path / "portrait.webp")


def test_choices_are_remembered(make_dialog, tmp_path, settings):
    d = make_dialog()
    _select(d.kind_box, "sweep")
    _select(d.format_box, "WEBP")
    _select(d.scale_box, 2)
    _select(d.filter_box, "nearest")
    d.quality_box.setValue(70)
    d.start_box.setValue(-1.5)
    d.stop_box.setValue(3.5)
    d.frames_box.setValue(30)
    d.fps_box.setValue(24)
    d.bounce_box.setChecked(True)
    d.path_edit.setText(str(tmp_path / "anims" / "smile.webp"))
    d.accept()
    assert d.result() == QDialog.DialogCode.Accepted and d.plan.kind == "sweep"
    assert settings.value("export/kind") == "sweep"

    again = make_dialog()
    assert again.kind == "sweep" and again.format_box.currentData() == "WEBP"
    assert again.scale_box.currentData() == 2 and again.filter_box.currentData() == "nearest"
    assert (again.quality_box.value(), again.start_box.value(), again.stop_box.value(),
            again.frames_box.value(), again.fps_box.value()) == (70, -1.5, 3.5, 30, 24)
    assert again.bounce_box.isChecked()
    assert Path(again.path_edit.text()).parent == tmp_path / "anims"  # the last folder
    _select(again.kind_box, "image")
    assert again.format_box.currentData() == "PNG"  # the image format is kept apart


def test_accept_refuses_an_incomplete_plan(make_dialog, monkeypatch):
    d = make_dialog()
    warnings = []
    monkeypatch.setattr(d, "_warn", warnings.append)
    _select(d.kind_box, "batch")
    d.folder_edit.setText("")
    d.accept()
    assert d.plan is None and "folder" in warnings[0]
    _select(d.kind_box, "batch")
    d.folder_edit.setText("/tmp")
    d.pattern_edit.setText("same.png")
    d.accept()
    assert d.plan is None and "same file name" in warnings[1]


def test_existing_files_are_replaced_only_when_the_user_agrees(make_dialog, tmp_path,
                                                               answers):
    asked, replies = answers
    for seed in (42, 44):
        (tmp_path / f"seed{seed:06d}.png").write_bytes(b"x")
    d = make_dialog()
    _select(d.kind_box, "batch")
    d.folder_edit.setText(str(tmp_path))
    d.count_box.setValue(4)
    replies.append(QMessageBox.StandardButton.No)
    d.accept()
    assert d.plan is None and d.result() != QDialog.DialogCode.Accepted  # still open
    assert asked[0].startswith("2 files already exist (seed000042.png, seed000044.png)")
    d.accept()  # now Yes
    assert d.plan.overwrite and d.result() == QDialog.DialogCode.Accepted


def test_no_question_when_nothing_exists(make_dialog, answers):
    asked, _ = answers
    d = make_dialog()
    d.accept()
    assert asked == [] and d.plan is not None and not d.plan.overwrite


def test_confirm_overwrite(answers, tmp_path):
    asked, replies = answers
    assert confirm_overwrite(None, []) and asked == []
    replies.append(QMessageBox.StandardButton.No)
    assert not confirm_overwrite(None, [tmp_path / "a.png"])
    assert "“a.png” already exists" in asked[0] and "Replace it?" in asked[0]
    names = [tmp_path / f"{i}.png" for i in range(5)]
    assert confirm_overwrite(None, names)
    assert asked[1].startswith("5 files already exist (0.png, 1.png, 2.png, …)")


def test_get_export_plan_returns_none_when_cancelled(monkeypatch):
    monkeypatch.setattr(ExportDialog, "exec", lambda self: QDialog.DialogCode.Rejected)
    assert export_dialog.get_export_plan(None, SESSION) is None


def test_the_dialog_is_deleted_once_it_has_answered(qtbot, monkeypatch, tmp_path):
    # a child of the window, kept alive by its own connections: each Ctrl+E of a long
    # session left another dialog (and the session it was shown) behind
    parent = QWidget()
    qtbot.addWidget(parent)

    def accept(self):
        self.plan = ExportPlan(kind="image", path=str(tmp_path / "a.png"), format="PNG")
        return QDialog.DialogCode.Accepted
    for answer in (lambda self: QDialog.DialogCode.Rejected, accept):
        monkeypatch.setattr(ExportDialog, "exec", answer)
        export_dialog.get_export_plan(parent, SESSION)
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        gc.collect()
        assert parent.findChildren(ExportDialog) == []


def test_targets_that_cannot_be_written_are_refused_before_any_question(
        make_dialog, tmp_path, monkeypatch, answers):
    asked, _ = answers
    d = make_dialog()
    warnings = []
    monkeypatch.setattr(d, "_warn", warnings.append)
    (tmp_path / "adir.png").mkdir()
    (tmp_path / "a_file").write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    cases = [(str(tmp_path / ("n" * 300 + ".png")), "too long"),
             (str(tmp_path / "adir.png"), "is a folder"),
             (str(tmp_path / "a_file" / "x.png"), "is a file, not a folder"),
             (str(tmp_path / "bad\x00name.png"), "NUL")]
    import os
    if os.geteuid() != 0:  # root may write anywhere
        cases.append((str(locked / "x.png"), "Cannot write into"))
    for path, match in cases:
        d.path_edit.setText(path)
        d.accept()
        assert d.plan is None and match in warnings[-1], (path, warnings[-1])
    assert asked == []  # nothing was offered for replacing
    _select(d.kind_box, "batch")
    d.folder_edit.setText(str(tmp_path))
    d.pattern_edit.setText("{seed:0300d}.png")
    d.accept()
    assert d.plan is None and "too long" in warnings[-1]


def test_a_bare_name_goes_to_the_export_folder_and_its_extension_picks_the_format(
        make_dialog, tmp_path):
    d = make_dialog()
    d.path_edit.setText("rel.jpg")
    plan = d.build_plan()
    assert plan.path == str(tmp_path / "rel.jpg") and plan.format == "JPEG"
    assert d.format_box.currentData() == "JPEG"  # the typed extension chose it
    d.path_edit.setText("take.final")  # not an image extension: the chosen format's is added
    assert d.build_plan().path == str(tmp_path / "take.final.jpg")


def test_the_dialogs_upscale_filters_are_the_ones_a_recipe_may_record():
    from editor.engine.export_formats import UPSCALE_FILTERS

    assert tuple(export_dialog.FILTER_LABELS) == UPSCALE_FILTERS


def test_a_batch_cannot_run_past_the_largest_seed(make_dialog, tmp_path):
    """Its files would carry seeds no recipe may hold: they could not be replayed. The
    dialog says so (its count is left as the user set it)."""
    from editor.engine.export import ExportPlan
    from editor.engine.session import MAX_SEED

    dialog = make_dialog()
    _select(dialog.kind_box, "batch")
    dialog.folder_edit.setText(str(tmp_path))
    dialog.first_seed_box.setValue(MAX_SEED - 2)
    dialog.count_box.setValue(500)
    with pytest.raises(ValueError, match="go past it"):
        dialog.build_plan()
    dialog.count_box.setValue(3)
    assert list(dialog.build_plan().seeds)[-1] == MAX_SEED
    with pytest.raises(ValueError, match="go past it"):
        ExportPlan(kind="batch", folder="x", first_seed=MAX_SEED, count=2)
    assert list(ExportPlan(kind="batch", folder="x", first_seed=MAX_SEED, count=1).seeds) == [
        MAX_SEED]


def test_a_name_too_long_to_look_at_is_refused_in_words(make_dialog, monkeypatch):
    # Path.is_dir() raised first: the user read "[Errno 36] File name too long".
    d = make_dialog()
    warnings = []
    monkeypatch.setattr(d, "_warn", warnings.append)
    d.path_edit.setText("é" * 130 + ".png")  # 264 bytes
    _select(d.format_box, "JPEG")  # the name follows the format without an error
    d.accept()
    assert d.plan is None and "is too long (the limit is 255 bytes)" in warnings[-1]


def test_the_dialog_shows_a_name_that_is_written_differently(make_dialog, tmp_path):
    # As an image, "photo.GIF" became photo.png and "x." became "x..png" without a word.
    d = make_dialog()
    d.path_edit.setText("photo.GIF")
    assert "saved as photo.png" in d.summary_label.text()
    assert d.build_plan().path == str(tmp_path / "photo.png")
    d.path_edit.setText("x.")
    assert "saved as x.png" in d.summary_label.text()
    assert d.build_plan().path == str(tmp_path / "x.png")
    d.path_edit.setText("plain.png")
    assert "saved as" not in d.summary_label.text()


def test_a_sweep_of_an_edit_the_canvas_cannot_apply_is_refused_up_front(
        make_dialog, monkeypatch):
    # It ran, and failed after the dialog had closed.
    d = make_dialog(edit_id="hair", failing={"hair": "no style channel passes β 0.99"})
    warnings = []
    monkeypatch.setattr(d, "_warn", warnings.append)
    _select(d.kind_box, "sweep")
    d.accept()
    assert d.plan is None
    assert warnings == ["“hair” cannot be applied, so it cannot be swept: no style channel "
                        "passes β 0.99"]
    _select(d.kind_box, "image")  # the image leaves it out, as the canvas does
    d.accept()
    assert d.plan is not None


def test_a_file_that_a_running_export_writes_is_refused(make_dialog, tmp_path, monkeypatch,
                                                        answers):
    # A second sweep to the same new name rendered everything, then failed asking to
    # "allow overwriting", which the window does not offer.
    asked, _ = answers
    d = make_dialog(edit_id="hair", busy=[tmp_path / "same.gif"])
    warnings = []
    monkeypatch.setattr(d, "_warn", warnings.append)
    _select(d.kind_box, "sweep")
    d.path_edit.setText(str(tmp_path / "." / "same.gif"))
    d.accept()
    assert d.plan is None and "still running" in warnings[-1] and asked == []
    d.path_edit.setText("other.gif")
    d.accept()
    assert d.plan is not None


def test_every_label_has_its_own_alt_key_and_names_its_box(make_dialog):
    from PySide6.QtWidgets import QAbstractButton, QLabel

    d = make_dialog()
    labels = [w for w in d.findChildren(QLabel) if w is not d.summary_label]
    buttons = d.findChildren(QAbstractButton)
    keys = []
    for w in labels + buttons:
        text = w.text().replace("&&", "")
        assert "&" in text, w.text()  # Cancel's too (Qt gives it one on some platforms)
        if "&" in text:
            keys.append(text[text.index("&") + 1].lower())
    assert len(keys) == len(set(keys)), sorted(keys)
    form = d._form
    assert form.labelForField(d._file_row).buddy() is d.path_edit
    assert form.labelForField(d._folder_row).buddy() is d.folder_edit
    assert all(label.buddy() is not None for label in labels)
    assert d.path_edit.accessibleName() == "File" and d.folder_edit.accessibleName() == "Folder"


def test_a_gif_is_not_offered_faster_than_it_plays(make_dialog):
    # A GIF frame lasts at least 20 ms: 60 fps played at 50 with the 60 fps duration shown.
    d = make_dialog(edit_id="hair")
    _select(d.kind_box, "sweep")
    _select(d.format_box, "GIF")
    d.fps_box.setValue(60)
    assert d.fps_box.value() == 50 and "24 frames, 0.5 s" in d.summary_label.text()
    d.fps_box.setValue(12)  # 80 ms frames, as the file plays them (not 24 / 12 = 2.0 s)
    assert "24 frames, 1.9 s" in d.summary_label.text()
    d.fps_box.setValue(60)
    _select(d.format_box, "WEBP")
    d.fps_box.setValue(60)
    assert d.fps_box.value() == 60
    # the speed asked for comes back with a format that plays it (GIF kept it at 50)
    _select(d.format_box, "GIF")
    assert d.fps_box.value() == 50
    _select(d.format_box, "WEBP")
    assert d.fps_box.value() == 60


def _gif_sweep_of_600_frames(d: ExportDialog, scale: int) -> None:
    _select(d.kind_box, "sweep")
    _select(d.format_box, "GIF")
    d.frames_box.setValue(600)
    d.bounce_box.setChecked(False)
    _select(d.scale_box, scale)


def test_a_gif_sweep_that_fills_the_memory_says_so(make_dialog):
    # Pillow's GIF writer keeps every upscaled frame until the end: 600 frames of 256 px
    # at 8x (2048 px) hold 2.5 GB, with nothing said; the rendered frames held beside them
    # (0.1 GB) were not counted
    d = make_dialog(edit_id="hair")
    _gif_sweep_of_600_frames(d, scale=8)
    assert "making this sweep holds about 2.6 GB in memory (as a WebP, 0.1 GB)" \
        in d.summary_label.text()
    _select(d.format_box, "WEBP")
    assert "GB" not in d.summary_label.text()
    _select(d.format_box, "GIF")
    _select(d.scale_box, 1)
    assert "GB" not in d.summary_label.text()  # 600 frames of 256 px: 39 MB


def test_a_sweep_counts_the_rendered_frames_it_holds(make_dialog):
    # 600 native-size frames of a 1024 px model: the GIF's own copies (0.6 GB) were all
    # that was counted, and no note came, though the rendered frames hold 1.9 GB beside them
    d = make_dialog(resolution=1024, edit_id="hair")
    _gif_sweep_of_600_frames(d, scale=1)
    assert "making this sweep holds about 2.5 GB in memory (as a WebP, 1.9 GB)" \
        in d.summary_label.text()
    _select(d.format_box, "WEBP")
    assert "GB" not in d.summary_label.text()  # under the note's 2 GB (600 frames at most)


def test_an_extension_typed_chooses_the_format_shown(make_dialog, tmp_path):
    # "shot.jpg" typed with PNG chosen wrote a JPEG at the hidden, greyed quality while
    # the box said PNG (and remembered PNG); a batch's "shot{seed}.jpg" wrote PNGs
    d = make_dialog()
    d.path_edit.setText(str(tmp_path / "shot.jpg"))
    assert d.format_box.currentData() == "JPEG" and d.quality_box.isEnabled()
    assert d.path_edit.text() == str(tmp_path / "shot.jpg")  # left as typed
    d.quality_box.setValue(70)
    plan = d.build_plan()
    assert (plan.format, plan.quality, plan.path) == ("JPEG", 70, str(tmp_path / "shot.jpg"))
    d.path_edit.setText(str(tmp_path / "shot.tiff"))  # not on offer: the box's format
    assert d.format_box.currentData() == "JPEG"
    _select(d.kind_box, "batch")
    d.folder_edit.setText(str(tmp_path / "out"))
    d.pattern_edit.setText("shot{seed}.webp")
    assert d.format_box.currentData() == "WEBP"
    plan = d.build_plan()
    assert (plan.format, plan.name_pattern) == ("WEBP", "shot{seed}.webp")
    d.accept()
    again = make_dialog()
    assert again.format_box.currentData() == "WEBP"  # what was written is remembered
