"""The Model packs dialog and the Models menu: listing, import, download as a job (with a
stand-in for zoo.download: no network here), choosing a pack."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from editor.core import zoo
from editor.engine.jobs import CANCELLED, FINISHED, JobRunner
from editor.engine.models import default_generator_path
from editor.engine.packs import DEMO_CLIP
from editor.ui import models_dialog
from editor.ui.jobs_panel import JobsPanel
from editor.ui.models_dialog import (
    DEMO_KEY,
    OPEN_CLIP_FALLBACK,
    ModelsDialog,
    clip_choices,
    offer_precompute,
)
from editor.ui.models_menu import ModelsMenu
from tests.test_zoo import _Server, make_entry

TIMEOUT_MS = 10_000
GENERATOR_ENTRY = "ffhq-1024-nvidia"  # no size or sha256 in the registry


@pytest.fixture
def runner(qtbot):
    r = JobRunner()
    yield r
    assert r.cancel_all(wait_ms=TIMEOUT_MS)


@pytest.fixture
def dialog(qtbot, runner):
    d = ModelsDialog(runner)
    qtbot.addWidget(d)
    return d


class _RecordedBox:
    """A box not waited on, recorded: what was added to it after its first line."""

    def __init__(self):
        self.informative = self.details = ""

    def setInformativeText(self, text):  # noqa: N802 - QMessageBox's
        self.informative = text

    def setDetailedText(self, text):  # noqa: N802 - QMessageBox's
        self.details = text


class _Shown(list):
    """(title, text) of each warning; `boxes`: the boxes not waited on, in order."""

    def __init__(self):
        super().__init__()
        self.boxes: list[_RecordedBox] = []

    def box(self, title: str, text: str) -> _RecordedBox:
        self.append((title, text))
        self.boxes.append(_RecordedBox())
        return self.boxes[-1]


@pytest.fixture
def warnings(monkeypatch):
    """Warnings (QMessageBox.warning, and the boxes not waited on), recorded, not shown."""
    shown = _Shown()
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda parent, title, text, *a, **k: shown.append((title, text)))
    monkeypatch.setattr("editor.ui.models_dialog.show_warning",
                        lambda parent, title, text: shown.box(title, text))
    return shown


@pytest.fixture
def tiny_generator_file(tmp_path, tiny_generator):
    from editor.core.checkpoints import save_generator

    path = tmp_path / "tiny-gen.safetensors"
    save_generator(tiny_generator, path)
    return path


def test_lists_the_demo_pack_and_every_registry_entry(dialog):
    keys = dialog.row_keys()
    assert keys[0] == DEMO_KEY
    assert [k.removeprefix("zoo:") for k in keys[1:]] == [e.name for e in zoo.list_entries()]
    assert dialog.status_text(DEMO_KEY) == ("ready" if DEMO_CLIP.is_file() else
                                            "ready (its CLIP is missing: no text edits)")
    assert dialog.status_text(f"zoo:{GENERATOR_ENTRY}") == "not installed"

    dialog.select(f"zoo:{GENERATOR_ENTRY}")
    assert dialog.download_button.isEnabled() and not dialog.use_button.isEnabled()
    assert "Licence" in dialog.description.text()
    dialog.select(DEMO_KEY)
    assert dialog.use_button.isEnabled() and not dialog.download_button.isEnabled()
    assert not dialog.clip_combo.isEnabled()  # the demo pack brings its own CLIP
    # and the greyed box says so (it showed "ViT-B-32 / openai", which it does not use)
    assert dialog.clip_combo.currentIndex() == -1
    assert dialog.clip_combo.placeholderText() == "its own CLIP (bundled)"


def test_use_on_the_demo_pack_emits_its_generator_and_clip(qtbot, dialog):
    dialog.select(DEMO_KEY)
    with qtbot.waitSignal(dialog.pack_chosen, timeout=TIMEOUT_MS) as blocker:
        dialog.use_button.click()
    path, clip_spec = blocker.args
    assert Path(path) == default_generator_path()
    assert clip_spec == {"path": str(DEMO_CLIP), "arch": None, "tag": None}
    from editor.engine.packs import ClipSource  # plain data the main window turns back

    assert ClipSource(**clip_spec).path == str(DEMO_CLIP)
    assert dialog.result() == ModelsDialog.DialogCode.Accepted


@pytest.mark.parametrize("content", [b"", b"just some text, not a model\n"])
def test_importing_a_bad_file_shows_a_message_and_adds_nothing(qtbot, dialog, warnings,
                                                               monkeypatch, tmp_path, content):
    bad = tmp_path / "notes.pt"
    bad.write_bytes(content)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    keys_before = dialog.row_keys()
    dialog.import_button.click()
    qtbot.waitUntil(lambda: bool(warnings), timeout=TIMEOUT_MS)
    title, text = warnings[0]
    assert title == "Import failed"
    assert "notes.pt" in text and ("empty" in text or "not a model file" in text)
    assert zoo.installed() == []
    qtbot.waitUntil(lambda: dialog.row_keys() == keys_before, timeout=TIMEOUT_MS)


def test_the_import_file_dialog_shows_clip_weights_as_hugging_face_names_them(tmp_path):
    # open_clip's weights come as open_clip_pytorch_model.bin, which imports as CLIP
    # weights, but the file dialog showed it only under "All files"
    import fnmatch

    from editor.core.model_files import identify_model_file
    from tests.conftest import make_tiny_clip

    shown = models_dialog.MODEL_FILTER.split(";;")[0]
    patterns = shown[shown.index("(") + 1:shown.index(")")].split()
    clip = make_tiny_clip().save(tmp_path / "open_clip_pytorch_model.bin")
    assert identify_model_file(clip).kind == "clip"
    for name in (clip.name, "open_clip_model.safetensors", "ffhq.pkl", "g.pt", "g.pth"):
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name


def test_cancelling_the_file_dialog_imports_nothing(dialog, runner, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("", ""))
    assert dialog.import_file() is None
    assert runner.active_jobs() == []


def test_the_import_starts_where_the_last_import_was_and_the_size_is_kept(
        qtbot, runner, tmp_path, monkeypatch, warnings):
    # the file dialog opened in the process's working folder each time, and a resized
    # dialog came back at 720 x 440
    from PySide6.QtCore import QSettings

    (tmp_path / "models").mkdir()
    QSettings().setValue("recent/dir", str(tmp_path))
    asked: list[str] = []
    answers = iter([str(tmp_path / "models" / "none.pt"), ""])

    def pick(_parent, _title, start, _filter):
        asked.append(start)
        return next(answers), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", pick)
    first = ModelsDialog(runner)
    qtbot.addWidget(first)
    with qtbot.waitSignal(runner.job_ended, timeout=TIMEOUT_MS):
        first.import_file()  # the file does not exist: the job fails, the folder is kept
    assert first.import_file() is None  # the second pick is cancelled
    assert asked == [str(tmp_path), str(tmp_path / "models")]
    first.show()
    first.resize(640, 520)  # within the offscreen 800 px screen
    first.hide()
    second = ModelsDialog(runner)
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == (640, 520)


def test_an_imported_generator_is_listed_and_usable(qtbot, dialog, warnings,
                                                    tiny_generator_file):
    with qtbot.waitSignal(dialog.runner.job_finished, timeout=TIMEOUT_MS):
        dialog.import_file(str(tiny_generator_file))
    assert not warnings
    key = "file:tiny-gen"
    qtbot.waitUntil(lambda: key in dialog.row_keys(), timeout=TIMEOUT_MS)
    assert dialog.selected_key() == key and dialog.status_text(key) == "imported"
    assert dialog.clip_combo.isEnabled()
    assert dialog.clip_combo.currentData() == OPEN_CLIP_FALLBACK[1]  # no CLIP installed
    with qtbot.waitSignal(dialog.pack_chosen, timeout=TIMEOUT_MS) as blocker:
        dialog.use_button.click()
    path, clip_spec = blocker.args
    assert Path(path).read_bytes() == tiny_generator_file.read_bytes()
    assert Path(path).parent.parent == zoo.models_dir()  # the copy in the cache
    assert clip_spec == OPEN_CLIP_FALLBACK[1]


def test_a_file_installed_already_is_selected_not_copied_again(qtbot, dialog, warnings,
                                                               tiny_generator_file, tmp_path):
    with qtbot.waitSignal(dialog.runner.job_finished, timeout=TIMEOUT_MS):
        dialog.import_file(str(tiny_generator_file))
    assert dialog.notice.text().startswith("Imported tiny-gen")
    copy = tmp_path / "same weights.safetensors"
    copy.write_bytes(tiny_generator_file.read_bytes())
    with qtbot.waitSignal(dialog.runner.job_ended, timeout=TIMEOUT_MS):
        dialog.import_file(str(copy))
    assert not warnings
    assert dialog.notice.text() == "same weights.safetensors is installed already, as tiny-gen"
    assert dialog.selected_key() == "file:tiny-gen"
    assert [m.name for m in zoo.installed()] == ["tiny-gen"]


@pytest.mark.parametrize("cancelled", ["while reading", "after recording"])
def test_a_cancelled_import_says_what_it_did(qtbot, dialog, warnings, tiny_generator_file,
                                             monkeypatch, cancelled):
    # Import never looked at its cancel: the panel said "cancelled" and the model was
    # installed all the same.
    import threading

    import editor.ui.models_dialog as md

    reading, go_on = threading.Event(), threading.Event()
    identify = md.identify_model_file

    def slow_identify(path, arch, stopped):  # reading a large checkpoint takes seconds
        reading.set()
        go_on.wait(TIMEOUT_MS / 1000)
        return identify(path, arch, stopped)

    record = zoo._record
    job_holder = []

    def record_then_cancel(model):  # the user's cancel, just too late
        record(model)
        job_holder[0].cancel()

    monkeypatch.setattr(md, "identify_model_file", slow_identify)
    monkeypatch.setattr(zoo, "_record", record_then_cancel)
    runner = dialog.runner
    signal = runner.job_cancelled if cancelled == "while reading" else runner.job_finished
    with qtbot.waitSignal(signal, timeout=TIMEOUT_MS):
        job_holder.append(dialog.import_file(str(tiny_generator_file)))
        assert reading.wait(TIMEOUT_MS / 1000)
        if cancelled == "while reading":
            job_holder[0].cancel()
        go_on.set()
    installed = [m.name for m in zoo.installed()]
    assert installed == ([] if cancelled == "while reading" else ["tiny-gen"])
    if cancelled == "while reading":
        assert not any(zoo.models_dir().glob("tiny-gen*"))
    assert not warnings


class FakeDownload:
    """Stands in for zoo.download: reports bytes like the real one until released or
    cancelled; on success records a file as the entry, as the real one does."""

    def __init__(self, tmp_path: Path, total: int | None = 10_000_000):
        self.tmp_path = tmp_path
        self.total = total
        self.release = threading.Event()
        self.chunks = 0
        self.calls: list[str] = []

    def __call__(self, entry, dest_dir=None, *, progress=None, cancel=None, **kw):
        self.calls.append(entry.name)
        done = 0
        while not self.release.wait(0.002):
            if cancel is not None and cancel.is_set():
                raise zoo.DownloadCancelled(f"download of {entry.name} cancelled")
            done = min(done + 100_000, (self.total or 10**9) - 1)
            self.chunks += 1
            progress(done, self.total)
        src = self.tmp_path / entry.filename
        src.write_bytes(b"\x80" + b"fake pickle" * 10)
        return zoo.import_file(src, name=entry.name)


def test_a_download_runs_as_a_job_with_progress_and_can_be_cancelled(
        qtbot, dialog, runner, warnings, monkeypatch, tmp_path):
    fake = FakeDownload(tmp_path)
    monkeypatch.setattr(zoo, "download", fake)
    panel = JobsPanel(runner)
    qtbot.addWidget(panel)
    key = f"zoo:{GENERATOR_ENTRY}"
    dialog.select(key)
    dialog.download_button.click()
    job = runner.find(f"download:{GENERATOR_ENTRY}")
    assert job is not None and job.title == f"Download {GENERATOR_ENTRY}"
    assert not dialog.download_button.isEnabled()  # no second download of the same file
    assert dialog.download_selected() is job and runner.active_jobs() == [job]
    qtbot.waitUntil(lambda: fake.calls == [GENERATOR_ENTRY], timeout=TIMEOUT_MS)

    qtbot.waitUntil(lambda: job.progress is not None and job.progress.done > 500_000,
                    timeout=TIMEOUT_MS)
    assert job.progress.total == 10_000_000 and "MB of 10.0 MB" in job.progress.message
    qtbot.waitUntil(lambda: dialog.status_text(key).startswith("downloading "),
                    timeout=TIMEOUT_MS)
    assert dialog.status_text(key).endswith("%")
    assert panel.row(job).progress_bar.value() > 0

    with qtbot.waitSignal(runner.job_cancelled, timeout=TIMEOUT_MS):
        panel.row(job).cancel_button.click()
    assert job.state == CANCELLED
    chunks = fake.chunks
    qtbot.wait(100)
    assert fake.chunks == chunks  # the download really stopped
    assert not warnings  # a cancel is not an error
    assert dialog.status_text(key) == "not installed"
    assert dialog.download_button.isEnabled()


def test_a_finished_download_makes_the_entry_usable(qtbot, dialog, runner, monkeypatch,
                                                    tmp_path):
    fake = FakeDownload(tmp_path, total=None)  # a server that does not say the size
    fake.release.set()
    monkeypatch.setattr(zoo, "download", fake)
    key = f"zoo:{GENERATOR_ENTRY}"
    dialog.select(key)
    with qtbot.waitSignal(runner.job_finished, timeout=TIMEOUT_MS) as finished:
        job = dialog.download_selected()
    installed = finished.args[1]
    assert job.state == FINISHED and isinstance(installed, zoo.InstalledModel)
    qtbot.waitUntil(lambda: dialog.status_text(key) == "installed (not verified)",
                    timeout=TIMEOUT_MS)
    dialog.select(key)
    assert dialog.use_button.isEnabled() and not dialog.download_button.isEnabled()
    with qtbot.waitSignal(dialog.pack_chosen, timeout=TIMEOUT_MS) as blocker:
        dialog.use_button.click()
    assert blocker.args[0] == str(installed.path)


def test_a_failed_download_shows_the_message(qtbot, dialog, runner, warnings, monkeypatch):
    def refused(entry, *a, **k):
        raise zoo.ZooDownloadError("the server is busy")

    monkeypatch.setattr(zoo, "download", refused)
    dialog.select(f"zoo:{GENERATOR_ENTRY}")
    dialog.download_selected()
    qtbot.waitUntil(lambda: bool(warnings), timeout=TIMEOUT_MS)
    assert warnings[0] == ("Download failed", "The server is busy")
    assert warnings.boxes[0].details == ""  # nothing more to say
    assert zoo.installed() == []


def test_an_offline_download_says_so_in_a_line_with_the_rest_as_details(
        qtbot, dialog, runner, warnings, monkeypatch):
    # The zoo's message (six lines in the box, red in the Jobs panel, cut in the status
    # bar) named the file twice and gave terminal commands; the row said "not installed".
    import socket

    entry = zoo.get_entry(GENERATOR_ENTRY)
    whole = str(zoo._unreachable_error(entry, socket.gaierror(-3, "no name")))

    def offline(entry, *a, **k):
        raise zoo.ZooDownloadError(whole)

    monkeypatch.setattr(zoo, "download", offline)
    key = f"zoo:{GENERATOR_ENTRY}"
    dialog.select(key)
    with qtbot.waitSignal(runner.job_ended, timeout=TIMEOUT_MS):
        job = dialog.download_selected()
    assert warnings == [("Download failed", f"Could not download {GENERATOR_ENTRY}: this "
                         "computer seems to be offline.")]
    box = warnings.boxes[0]
    assert "Import file…" in box.informative and "`" not in box.informative
    assert box.details == whole[:1].upper() + whole[1:]  # all of it, one click away
    assert job.error == "this computer seems to be offline"  # Jobs panel, status bar
    assert dialog.status_text(key) == "download failed"
    assert "seems to be offline" in dialog.notice.text()
    dialog.select(key)
    monkeypatch.setattr(zoo, "download", lambda *a, **k: threading.Event().wait(0.3))
    dialog.download_selected()  # tried again: no longer "failed" while it runs
    assert dialog.status_text(key).startswith("downloading")
    qtbot.waitUntil(lambda: not runner.active_jobs(), timeout=TIMEOUT_MS)


def test_a_size_the_registry_does_not_know_is_a_dash(dialog):
    # a bare "?" stood in every generator's row (zoo.format_size's, for the CLI)
    assert zoo.get_entry(GENERATOR_ENTRY).size is None
    assert dialog._items[f"zoo:{GENERATOR_ENTRY}"].text(2) == "—"
    assert zoo.format_size(None) == "?"


def test_a_failed_downloads_box_does_not_hold_its_row_downloading(qtbot, dialog, runner,
                                                                   monkeypatch):
    # While the "Download failed" box was open the row said "downloading…" with Download
    # greyed, and the jobs panel a running job: the box held the runner's next signal.
    def offline(entry, *a, **k):
        raise zoo.ZooDownloadError("cannot reach the server")

    monkeypatch.setattr(zoo, "download", offline)
    key = f"zoo:{GENERATOR_ENTRY}"
    dialog.select(key)
    with qtbot.waitSignal(runner.job_ended, timeout=TIMEOUT_MS):
        dialog.download_selected()
    boxes = [b for b in dialog.findChildren(QMessageBox) if b.isVisible()]
    assert [b.text() for b in boxes] == ["Cannot reach the server"]  # still open
    assert dialog.status_text(key) != "downloading…" and dialog.download_button.isEnabled()
    boxes[0].close()


def test_installed_clip_models_come_first_the_reference_before_others(tmp_path):
    def model(name: str) -> zoo.InstalledModel:
        entry = zoo.get_entry(name)
        path = tmp_path / entry.filename
        path.write_bytes(b"x")
        return zoo.InstalledModel(name, path, "0" * 64, 1, True, name, "clip", entry.format,
                                  entry.url, "2024-01-01T00:00:00Z")

    choices = clip_choices([model("clip-vit-b-16-openai"), model("clip-vit-b-32-openai")])
    assert [spec.get("arch") for _, spec in choices] == ["ViT-B-32", "ViT-B-16", "ViT-B-32"]
    assert choices[0][1]["path"].endswith("ViT-B-32.pt")
    assert choices[-1] == OPEN_CLIP_FALLBACK


def test_offer_precompute_asks_with_the_estimate(monkeypatch):
    asked = []

    def question(parent, title, text, buttons, default):
        asked.append(text)
        return QMessageBox.StandardButton.No if "never" in text else \
            QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", question)
    assert offer_precompute(None, "ffhq", "about 25 min") is True
    assert "no precomputed directions yet" in asked[0] and "(about 25 min)" in asked[0]
    assert offer_precompute(None, "never") is False


def test_the_models_menu_lists_packs_and_opens_the_dialog(qtbot, runner, tiny_generator_file):
    zoo.import_file(tiny_generator_file)
    menu = ModelsMenu(runner)
    qtbot.addWidget(menu)
    menu.set_current(str(default_generator_path()))
    menu.rebuild()
    labels = [a.text() for a in menu.actions() if not a.isSeparator()]
    # numbered: Alt+1, Alt+2... pick a pack from the keyboard
    assert labels == ["&1 Demo pack (toy faces)", "&2 tiny-gen", "Model &packs…"]
    demo = menu.actions()[0]
    assert demo.isChecked()
    with qtbot.waitSignal(menu.pack_chosen, timeout=TIMEOUT_MS) as blocker:
        next(a for a in menu.actions() if a.text() == "&2 tiny-gen").trigger()
    assert Path(blocker.args[0]).name == "tiny-gen.safetensors"
    assert blocker.args[1] is None  # the window's: the CLIP the pack was last used with

    dialog = menu.open_dialog()
    assert dialog.isVisible() and dialog.selected_key() == DEMO_KEY  # the pack in use
    assert dialog.status_text(DEMO_KEY).endswith("in use")
    assert menu.open_dialog() is dialog  # raised, not opened twice
    # another model opened while the dialog is open: it said the demo was still in use
    imported = next(m for m in zoo.installed() if m.name == "tiny-gen")
    menu.set_current(str(imported.path))
    assert dialog.status_text("file:tiny-gen").endswith("in use")
    assert not dialog.status_text(DEMO_KEY).endswith("in use")
    with qtbot.waitSignal(menu.pack_chosen, timeout=TIMEOUT_MS):  # forwarded from it
        dialog.use_selected()
    assert not dialog.isVisible()


def test_a_generator_the_window_is_loading_is_in_use_until_it_has_loaded(qtbot, runner,
                                                                        tiny_generator_file):
    # Only the loaded model counted: one removed while it loaded (seconds to minutes at
    # 1024 px) left the window on a generator whose file was gone
    from editor.ui.models_menu import ModelsMenu

    model = zoo.import_file(tiny_generator_file)
    menu = ModelsMenu(runner)
    menu.set_current(str(default_generator_path()))
    dialog = menu.open_dialog()
    qtbot.addWidget(dialog)
    key = "file:tiny-gen"
    assert dialog.select(key) and dialog.remove_button.isEnabled()
    menu.set_loading(str(model.path))  # Use pressed: the window loads it
    assert dialog.status_text(key).endswith("in use")
    assert dialog.select(key) and not dialog.remove_button.isEnabled()
    assert not dialog.remove_selected() and model.path.is_file()
    menu.set_loading(None)  # it failed to load, say: nothing holds it now
    assert dialog.select(key) and dialog.remove_button.isEnabled()
    dialog.close()
    menu.set_loading(str(model.path))  # a dialog opened again meanwhile knows it too
    assert menu.open_dialog() is dialog and dialog.status_text(key).endswith("in use")


def test_an_installed_model_is_removed_from_the_dialog_after_asking(qtbot, runner,
                                                                     tiny_generator_file,
                                                                     monkeypatch):
    # models could only be deleted by hand in the cache folder
    model = zoo.import_file(tiny_generator_file)
    dialog = ModelsDialog(runner, current_generator=str(model.path))
    qtbot.addWidget(dialog)
    key = "file:tiny-gen"
    assert dialog.select(key) and not dialog.remove_button.isEnabled()  # in use
    asked: list[str] = []
    answers = iter([QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])

    def question(_parent, _title, text, *_a, **_k):
        asked.append(text)
        return next(answers)

    monkeypatch.setattr(QMessageBox, "question", question)
    assert not dialog.remove_selected() and asked == []  # refused without asking
    assert "in use" in dialog.notice.text()
    dialog.current_generator = None
    dialog.refresh()
    assert dialog.select(key) and dialog.remove_button.isEnabled()
    assert not dialog.remove_selected() and model.path.is_file()  # answered No
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    dialog.tree.setFocus()
    qtbot.waitUntil(dialog.tree.hasFocus, timeout=TIMEOUT_MS)
    QTest.keyClick(dialog.tree, Qt.Key.Key_Delete)  # Del asks too; answered Yes
    assert len(asked) == 2 and "Delete tiny-gen" in asked[0]
    assert not model.path.exists() and key not in dialog.row_keys()
    assert zoo.installed() == [] and dialog.notice.text() == "Removed tiny-gen."
    assert tiny_generator_file.is_file()  # the user's own file stays


def test_after_a_remove_the_next_row_is_selected_so_del_goes_on(qtbot, runner, tmp_path,
                                                                monkeypatch):
    # the selection went to the pack in use at the top: Del again did nothing, and each
    # model to remove had to be found again
    from editor.core.checkpoints import save_generator
    from tests.conftest import make_tiny_generator

    for name in "abc":
        zoo.import_file(save_generator(make_tiny_generator(seed=ord(name)),
                                       tmp_path / f"{name}.safetensors"))
    dialog = ModelsDialog(runner, current_generator=str(default_generator_path()))
    qtbot.addWidget(dialog)
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    dialog.select("file:a")
    selected = []
    for _ in range(3):
        assert dialog.remove_selected()
        selected.append(dialog.selected_key())
    assert selected[:2] == ["file:b", "file:c"]
    assert selected[2] == dialog.row_keys()[-1]  # the last one gone: the row above
    assert zoo.installed() == []


def test_a_stopped_downloads_part_is_removed_from_the_dialog_after_asking(
        qtbot, dialog, monkeypatch):
    # Remove… was greyed on a "partial" row: the kept part could only go by hand
    entry = zoo.get_entry(GENERATOR_ENTRY)
    part = zoo.part_path(entry)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"x" * 2048)
    dialog.refresh()
    key = f"zoo:{GENERATOR_ENTRY}"
    assert dialog.select(key) and dialog.status_text(key).startswith("partial")
    assert dialog.remove_button.isEnabled()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text, *a, **k: (
        asked.append(text), QMessageBox.StandardButton.Yes)[1])
    assert dialog.remove_selected()
    assert "Delete the 2.0 kB downloaded of" in asked[0] and not part.exists()
    assert dialog.status_text(key) == "not installed"
    assert not dialog.remove_button.isEnabled()


def test_models_dialog_module_does_no_network_on_open(monkeypatch, qtbot, runner):
    """Opening and listing must not touch the network (downloads only on request)."""
    def no_network(*a, **k):
        raise AssertionError("network used without the user asking")

    monkeypatch.setattr(zoo, "_urlopen", no_network)
    monkeypatch.setattr(models_dialog.zoo, "download", no_network)
    d = ModelsDialog(runner)
    qtbot.addWidget(d)
    d.refresh()
    assert len(d.row_keys()) > 1


def test_quitting_during_a_slow_download_stops_it_in_time(qtbot, runner):
    # A real download from a server that sent 1000 bytes and went quiet: its progress
    # shows, and cancel_all (what closing the window calls) ends it well within its wait
    # (the whole-chunk read kept it running past the wait, and the program aborted).
    server = _Server()
    try:
        entry = make_entry(server.url("trickle"))
        job = runner.submit("Download", models_dialog.download_job(entry),
                            key="download:toy-model")
        qtbot.waitUntil(lambda: job.progress is not None and job.progress.done >= 1000,
                        timeout=TIMEOUT_MS)
        t0 = time.monotonic()
        assert runner.cancel_all(wait_ms=5000)
        assert time.monotonic() - t0 < 1.0
        assert job.state == CANCELLED
    finally:
        server.close()


def test_a_cancelled_download_says_in_the_jobs_panel_what_it_kept(qtbot, runner):
    # The zoo's "… kept in ….part. Start it again to resume." was turned into a failure's
    # line, which the runner drops for a cancel: the panel said only "cancelled after 1 s"
    server = _Server()
    try:
        entry = make_entry(server.url("trickle"))
        panel = JobsPanel(runner)
        qtbot.addWidget(panel)
        job = runner.submit("Download", models_dialog.download_job(entry),
                            key="download:toy-model")
        qtbot.waitUntil(lambda: job.progress is not None and job.progress.done >= 1000,
                        timeout=TIMEOUT_MS)
        with qtbot.waitSignal(runner.job_cancelled, timeout=TIMEOUT_MS):
            job.cancel()
        assert job.state == CANCELLED
        assert str(zoo.part_path(entry)) in job.note and "resume" in job.note
        assert panel.row(job).detail_label.text().startswith(job.note)
    finally:
        server.close()


def test_a_broken_user_registry_still_lists_built_in_and_installed_models(
        qtbot, runner, tiny_generator_file):
    zoo.import_file(tiny_generator_file)
    broken = zoo.user_registry_path()
    broken.write_text("{not json", encoding="utf-8")
    d = ModelsDialog(runner)
    qtbot.addWidget(d)
    assert f"zoo:{GENERATOR_ENTRY}" in d.row_keys() and "file:tiny-gen" in d.row_keys()
    assert str(broken) in d.notice.text() and "\n" not in d.notice.text()
    menu = ModelsMenu(runner)
    qtbot.addWidget(menu)
    labels = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert "&2 tiny-gen" in labels
    assert f"(ignored: the unreadable {broken})" in labels


def test_a_closed_models_dialog_is_reused_so_a_failure_shows_one_box(
        qtbot, runner, warnings, monkeypatch):
    release = threading.Event()

    def fails_later(entry, *a, **k):
        release.wait(TIMEOUT_MS / 1000)
        raise zoo.ZooDownloadError("the server is busy")

    monkeypatch.setattr(zoo, "download", fails_later)
    menu = ModelsMenu(runner)
    qtbot.addWidget(menu)
    first = menu.open_dialog()
    first.select(f"zoo:{GENERATOR_ENTRY}")
    job = first.download_selected()
    first.reject()
    again = menu.open_dialog()
    assert again is first and again.isVisible()
    with qtbot.waitSignal(runner.job_ended, timeout=TIMEOUT_MS):
        release.set()
    assert job.state == "failed"
    assert warnings == [("Download failed", "The server is busy")]



def _open_clip_state_dict(arch: str, path: Path) -> object:
    """Random weights of an open_clip architecture saved as a plain state dict (the form
    of a fine-tuned checkpoint), and the model itself."""
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None).eval()
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}},
               path)
    return model


def test_a_clip_the_registry_does_not_know_is_offered_with_the_architecture_it_fits(tmp_path):
    # Imported CLIP weights of an architecture the registry does not list were recorded
    # without one and offered nowhere: the CLIP list showed registry CLIPs only.
    import torch

    from editor.core.model_files import identify_model_file
    from editor.engine.packs import ClipSource, load_clip

    original = _open_clip_state_dict("ViT-S-32-alt", tmp_path / "my-finetune.pt")
    model = zoo.import_file(tmp_path / "my-finetune.pt", identify=identify_model_file)
    assert (model.kind, model.arch, model.entry) == ("clip", "ViT-S-32-alt", None)
    assert zoo.installed_model(model.name).arch == "ViT-S-32-alt"  # kept in the index
    choices = clip_choices(zoo.installed(), [])
    assert choices[0] == (f"{model.name} (ViT-S-32-alt)",
                          {"path": str(model.path), "arch": "ViT-S-32-alt", "tag": None})
    clip = load_clip(ClipSource(**choices[0][1]))
    import open_clip

    tokens = open_clip.get_tokenizer("ViT-S-32-alt")(["a face with a hat"])
    with torch.no_grad():
        expected = torch.nn.functional.normalize(original.encode_text(tokens), dim=-1)
    assert torch.allclose(clip.encode_text(["a face with a hat"]), expected, atol=1e-5)


def test_clip_weights_no_architecture_fits_are_refused_and_a_named_one_is_checked(
        tmp_path, capsys):
    import torch

    from editor.cli import main
    from editor.core.model_files import identify_model_file
    from tests.conftest import make_tiny_clip

    odd = tmp_path / "odd-clip.pt"  # a custom config's weights, outside their own file
    torch.save(make_tiny_clip().model.state_dict(), odd)
    with pytest.raises(zoo.ZooImportError, match="of no architecture open_clip builds"):
        zoo.import_file(odd, identify=identify_model_file)
    _open_clip_state_dict("ViT-S-32-alt", tmp_path / "openai-trained.pt")
    assert main(["models", "import", str(tmp_path / "openai-trained.pt"),
                 "--clip-arch", "ViT-S-32"]) == 1
    assert "do not fit the architecture" in capsys.readouterr().err
    assert main(["models", "import", str(tmp_path / "openai-trained.pt"),
                 "--clip-arch", "ViT-S-32-alt-quickgelu"]) == 0  # the activation, as said
    assert "(CLIP ViT-S-32-alt-quickgelu;" in capsys.readouterr().err
    installed = zoo.installed()
    assert [m.arch for m in installed] == ["ViT-S-32-alt-quickgelu"]
    from open_clip.transformer import QuickGELU

    from editor.engine.packs import ClipSource, load_clip

    clip = load_clip(ClipSource(**clip_choices(installed, [])[0][1]))
    assert any(isinstance(m, QuickGELU) for m in clip.model.modules())


def test_a_clip_of_unknown_architecture_is_offered_only_when_it_carries_its_config(tmp_path):
    # Any .safetensors CLIP without a recorded architecture (every CLIP imported before
    # architectures were recorded) was offered, and failed when chosen.
    from safetensors.torch import save_file

    from tests.conftest import make_tiny_clip

    clip = make_tiny_clip()
    own = clip.save(tmp_path / "own.safetensors")
    plain = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in clip.model.state_dict().items()}, str(plain))

    def imported(path: Path) -> zoo.InstalledModel:
        return zoo.InstalledModel(path.stem, path, "0" * 64, 1, False, None, "clip", None,
                                  str(path), "2026-01-01T00:00:00Z")

    choices = clip_choices([imported(own), imported(plain)], [])
    assert [spec["path"] for _, spec in choices[:-1]] == [str(own)]


def test_the_clip_box_is_named_by_its_label_and_the_tree_has_a_name(dialog):
    from PySide6.QtWidgets import QLabel

    label = next(w for w in dialog.findChildren(QLabel) if w.text() == "CLIP for text edits:")
    assert label.buddy() is dialog.clip_combo
    assert dialog.tree.accessibleName() == "Model packs"


def test_the_arrow_keys_pass_over_group_headings(qtbot, dialog):
    # on a heading nothing was selected, Use was greyed and the description went blank
    dialog.show()
    dialog.tree.setFocus()
    assert dialog.select(DEMO_KEY)
    first_zoo = next(k for k in dialog.row_keys() if k.startswith("zoo:"))
    QTest.keyClick(dialog.tree, Qt.Key.Key_Down)  # over "Model zoo (download)"
    assert dialog.selected_key() == first_zoo
    assert dialog.tree.currentItem().isSelected() and dialog.description.text()
    QTest.keyClick(dialog.tree, Qt.Key.Key_Up)  # over it again, back to the demo
    assert dialog.selected_key() == DEMO_KEY and dialog.use_button.isEnabled()
    for key in (Qt.Key.Key_Up, Qt.Key.Key_Home):  # "Demo" above it: nowhere to go
        QTest.keyClick(dialog.tree, key)
        assert dialog.selected_key() == DEMO_KEY and dialog.description.text()
    # a heading clicked keeps the pack chosen
    heading = dialog.tree.topLevelItem(1)
    QTest.mouseClick(dialog.tree.viewport(), Qt.MouseButton.LeftButton,
                     pos=dialog.tree.visualItemRect(heading).center())
    assert dialog.selected_key() == DEMO_KEY and dialog.use_button.isEnabled()


def _import_clip(tmp_path: Path, name: str, seed: int = 0) -> zoo.InstalledModel:
    from editor.core.model_files import identify_model_file
    from tests.conftest import make_tiny_clip

    path = make_tiny_clip(seed).save(tmp_path / f"{name}.safetensors")
    return zoo.import_file(path, identify=identify_model_file)


def _remember_clip(generator: Path, clip: Path) -> None:
    """What the window keeps when a pack opens: the CLIP the generator was used with."""
    from editor.ui.remembered import REMEMBERED_CLIPS

    REMEMBERED_CLIPS.put(str(generator), {"path": str(clip), "arch": None, "tag": None})


def test_the_clip_box_shows_the_clip_the_generator_opens_with(qtbot, runner, tmp_path,
                                                              tiny_generator_file):
    # The box always showed its first CLIP, so Use (or Enter) on the pack in use quietly
    # switched it to another CLIP
    generator = zoo.import_file(tiny_generator_file)
    _import_clip(tmp_path, "clip-a", 0)
    in_use = _import_clip(tmp_path, "clip-b", 1)
    _remember_clip(generator.path, in_use.path)
    menu = ModelsMenu(runner)
    qtbot.addWidget(menu)
    menu.set_current(str(generator.path))
    dialog = menu.open_dialog()
    assert dialog.selected_key() == "file:tiny-gen"
    assert dialog.clip_combo.currentData()["path"] == str(in_use.path)
    dialog.clip_combo.setCurrentIndex(0)  # a pick not used: forgotten when it closes
    dialog.reject()
    assert menu.open_dialog() is dialog
    assert dialog.clip_combo.currentData()["path"] == str(in_use.path)

    # a CLIP file outside the cache is offered as it is, not replaced by ViT-B-32
    outside = tmp_path / "elsewhere" / "own-clip.safetensors"
    outside.parent.mkdir()
    (tmp_path / "clip-b.safetensors").rename(outside)
    _remember_clip(generator.path, outside)
    dialog.select(DEMO_KEY)
    dialog.select("file:tiny-gen")
    assert dialog.clip_combo.currentText() == "own-clip.safetensors (outside the model cache)"
    with qtbot.waitSignal(dialog.pack_chosen, timeout=TIMEOUT_MS) as blocker:
        dialog.use_button.click()
    assert blocker.args[1]["path"] == str(outside)


def test_the_clip_picked_outlives_a_refresh_after_a_job(qtbot, dialog, warnings, tmp_path,
                                                        tiny_generator_file):
    # every job's end (and every model loaded) refilled the box: the pick went back to
    # the first CLIP
    zoo.import_file(tiny_generator_file)
    _import_clip(tmp_path, "clip-a", 0)
    picked = _import_clip(tmp_path, "clip-b", 1)
    dialog.refresh()
    dialog.select("file:tiny-gen")
    dialog.clip_combo.setCurrentIndex(dialog.clip_combo.findText(picked.name))
    bad = tmp_path / "notes.pt"
    bad.write_bytes(b"not a model\n")
    with qtbot.waitSignal(dialog.runner.job_ended, timeout=TIMEOUT_MS):
        dialog.import_file(str(bad))  # fails: the list is read again
    assert warnings and dialog.selected_key() == "file:tiny-gen"
    assert dialog.clip_combo.currentData()["path"] == str(picked.path)
    with qtbot.waitSignal(dialog.pack_chosen, timeout=TIMEOUT_MS) as blocker:
        dialog.use_selected()
    assert blocker.args[1]["path"] == str(picked.path)


def test_an_imported_clip_is_listed_to_be_removed_unless_in_use(
        qtbot, runner, warnings, tmp_path, tiny_generator_file, monkeypatch):
    # an imported CLIP had no row: the dialog could not remove it
    clip = _import_clip(tmp_path, "my-clip")
    dialog = ModelsDialog(runner, current_generator=str(tiny_generator_file))
    qtbot.addWidget(dialog)
    key = "file:my-clip"
    assert dialog.select(key) and dialog.tree.currentItem().text(1) == "clip"
    assert dialog.remove_button.isEnabled()
    assert not dialog.use_button.isEnabled() and not dialog.clip_combo.isEnabled()

    _remember_clip(tiny_generator_file, clip.path)  # the open pack's CLIP
    dialog.refresh()
    assert dialog.status_text(key) == "imported · in use"
    assert not dialog.remove_button.isEnabled()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: pytest.fail("asked"))
    assert not dialog.remove_selected() and clip.path.is_file()
    assert "in use" in dialog.notice.text()


def test_the_registry_clip_the_open_pack_uses_is_not_removed(qtbot, runner, tmp_path,
                                                             tiny_generator_file, monkeypatch):
    # the pack's default CLIP (ViT-B-32 / openai) is served by the zoo's file of it
    entry = zoo.get_entry("clip-vit-b-32-openai")
    path = tmp_path / entry.filename
    path.write_bytes(b"x")
    model = zoo.InstalledModel(entry.name, path, "0" * 64, 1, True, entry.name, "clip",
                               entry.format, entry.url, "2024-01-01T00:00:00Z")
    monkeypatch.setattr(zoo, "installed", lambda *a, **k: [model])
    dialog = ModelsDialog(runner, current_generator=str(tiny_generator_file))
    qtbot.addWidget(dialog)
    key = f"zoo:{entry.name}"
    assert dialog.select(key) and not dialog.remove_button.isEnabled()
    dialog.current_generator = None
    dialog.refresh()
    assert dialog.remove_button.isEnabled()


def test_enter_downloads_a_model_not_installed_as_a_double_click_does(
        qtbot, dialog, runner, monkeypatch, tmp_path):
    fake = FakeDownload(tmp_path)
    fake.release.set()
    monkeypatch.setattr(zoo, "download", fake)
    chosen = []
    dialog.pack_chosen.connect(lambda path, clip: chosen.append(path))
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.tree.setFocus()
    dialog.select(f"zoo:{GENERATOR_ENTRY}")
    with qtbot.waitSignal(runner.job_finished, timeout=TIMEOUT_MS):
        QTest.keyClick(dialog.tree, Qt.Key.Key_Return)
    assert fake.calls == [GENERATOR_ENTRY] and chosen == []
    dialog.select(DEMO_KEY)
    QTest.keyClick(dialog.tree, Qt.Key.Key_Return)  # Use, once
    assert len(chosen) == 1 and not dialog.isVisible()


def test_the_dialogs_buttons_have_mnemonics(dialog):
    texts = [b.text() for b in (dialog.download_button, dialog.import_button,
                                dialog.remove_button, dialog.use_button)]
    assert texts == ["&Download", "&Import file…", "&Remove…", "&Use"]


def test_an_imports_progress_says_which_pass_over_the_files_own_size():
    # a 238 kB file showed "258.8 kB of 476.6 kB": the hash and the copy counted together
    from editor.ui.models_dialog import _import_progress

    class Token:
        def __init__(self):
            self.said = []

        def report(self, progress):
            self.said.append(progress.message)

    token = Token()
    on_bytes = _import_progress(token)
    for done in (100_000, 238_000, 338_000, 476_000):
        on_bytes(done, 476_000)
    assert token.said == ["checking 100.0 kB of 238.0 kB", "checking 238.0 kB of 238.0 kB",
                          "copying 100.0 kB of 238.0 kB", "copying 238.0 kB of 238.0 kB"]
