"""A cache folder that cannot be written (a read-only mount) still lets the user see what
there is: the model list, the Model packs dialog. Writes fail where they are asked for."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from editor.cli import main
from editor.core import zoo
from editor.core.paths import cache_dir


@pytest.fixture
def read_only_cache(monkeypatch):
    """Making folders under the cache fails as on a read-only mount (tests run as root,
    where permissions would not stop it)."""
    real_mkdir = Path.mkdir
    root = cache_dir()

    def mkdir(self, *args, **kwargs):
        if self == root or root in self.parents:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)


def test_the_model_list_reads_a_read_only_cache(read_only_cache, capsys):
    # "error: .../models: read-only file system" instead of the zoo's list
    assert main(["models", "list"]) == 0
    out, err = capsys.readouterr()
    assert "ffhq" in out
    assert "warning: nothing can be installed: " in err and "read-only file system" in err
    assert zoo.installed() == []


def test_the_models_dialog_opens_on_a_read_only_cache(read_only_cache, qtbot):
    # Ctrl+M did nothing: the dialog's first refresh raised out of its constructor
    from editor.engine.jobs import JobRunner
    from editor.ui.models_dialog import ModelsDialog

    dialog = ModelsDialog(JobRunner())
    qtbot.addWidget(dialog)
    assert dialog.tree.topLevelItemCount() > 0


def test_the_models_dialog_says_at_once_that_nothing_can_be_installed(read_only_cache, qtbot):
    # it said so only when a download or an import failed, minutes later
    from editor.engine.jobs import JobRunner
    from editor.ui.models_dialog import ModelsDialog

    dialog = ModelsDialog(JobRunner())
    qtbot.addWidget(dialog)
    assert dialog.notice.text().startswith(f"Nothing can be installed: {zoo.models_dir()} (")
    assert "read-only file system" in dialog.notice.text()


def test_a_writable_cache_says_nothing_when_the_models_dialog_opens(qtbot):
    from editor.engine.jobs import JobRunner
    from editor.ui.models_dialog import ModelsDialog

    dialog = ModelsDialog(JobRunner())
    qtbot.addWidget(dialog)
    assert dialog.notice.text() == ""
