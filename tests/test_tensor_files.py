"""Tensor files (the cache, saved generators and CLIPs) on a full disk.

safetensors reports a refused write as a SafetensorError, which is not an OSError: the
cache's "used now, computed again next time" (it catches OSError) never ran, and a full
disk crashed a finished precompute. Here the real safetensors writer fails as on a full
disk: its Rust writer, the one step below `save_file` that touches the disk, raises the
real SafetensorError with the words a full tmpfs gave it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from editor.core.cache import TensorCache
from editor.core.checkpoints import save_generator
from editor.methods import global_directions as gd
from editor.methods import precompute as pc
from tests.conftest import make_tiny_clip, make_tiny_generator

NO_SPACE = "Error while serializing: I/O error: No space left on device (os error 28)"


def fill_the_disk(monkeypatch, message: str = NO_SPACE) -> None:
    """From now on every safetensors write fails as on a full disk, after writing part of
    its file."""
    import safetensors.torch
    from safetensors import SafetensorError

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 64)  # what fitted before the disk was full
        raise SafetensorError(message)

    monkeypatch.setattr(safetensors.torch, "serialize_file", full)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if not p.is_dir()] if folder.exists() else []


@pytest.mark.parametrize(("message", "code", "reason"), [
    (NO_SPACE, errno.ENOSPC, "No space left on device"),
    ("Error while serializing: I/O error: There is not enough space on the disk. "
     "(os error 112)", errno.ENOSPC, "There is not enough space on the disk."),
    ("Error while serializing: I/O error: Input/output error (os error 5)", errno.EIO,
     "Input/output error"),
    # the system's own code, and without safetensors' temporary file in the words
    pytest.param('Error while serializing: I/O error: Permission denied (os error 13) at '
                 'path "/cache/.tmpd5v0ux"', errno.EACCES, "Permission denied",
                 marks=pytest.mark.skipif(os.name != "posix", reason="POSIX error codes")),
])
def test_a_cache_entry_that_cannot_be_written_raises_os_error_and_leaves_no_file(
        tmp_path, monkeypatch, message, code, reason):
    entry = TensorCache("kind", {"a": 1}, 1, root=tmp_path)
    fill_the_disk(monkeypatch, message)
    with pytest.raises(OSError) as got:
        entry.save({"x": torch.zeros(8)})
    assert got.value.errno == code and got.value.strerror == reason
    assert files_under(tmp_path) == []


def test_a_precompute_on_a_full_disk_gives_its_pack_and_says_why_it_was_not_kept(
        monkeypatch):
    """Before, the SafetensorError of the first write (the style statistics) went through
    try_save_checked and the job failed with the work thrown away."""
    from editor.core.paths import cache_dir

    gen = make_tiny_generator(resolution=8, channel_max=16, seed=4)
    config = gd.RelevanceConfig(n_images=1, layers=("conv1",))
    fill_the_disk(monkeypatch)
    *_, data = list(pc.precompute_pack(gen, make_tiny_clip(), "gen-hash", "clip-hash", 100,
                                       config))
    assert isinstance(data, pc.PackData) and data.relevance.vectors.numel()
    assert "No space left on device" in data.save_error and "next time" in data.save_error
    assert "\n" not in data.save_error and "os error" not in data.save_error
    assert files_under(cache_dir()) == []


def test_cli_precompute_on_a_full_disk_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    """Before, `atelier precompute` ended in a SafetensorError traceback."""
    from editor.cli import main
    from editor.core.paths import cache_dir

    gen = save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=4),
                         tmp_path / "g.safetensors")
    clip = make_tiny_clip().save(tmp_path / "clip.safetensors")
    fill_the_disk(monkeypatch)
    assert main(["precompute", "--generator", str(gen), "--clip-file", str(clip),
                 "--n-images", "1", "--stats-samples", "100", "--layers", "conv1",
                 "--threads", "1"]) == 1
    out, err = capsys.readouterr()
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert "Traceback" not in err and out == ""
    assert lines[-1].startswith("atelier precompute: error: the pack was computed but not "
                                "kept: the model pack's global directions could not be saved")
    assert "(No space left on device)" in lines[-1] and "next time" in lines[-1]
    assert [line for line in lines if "error" in line.lower()] == [lines[-1]]
    assert files_under(cache_dir()) == []


def test_saving_a_generator_or_a_clip_on_a_full_disk_raises_os_error_and_keeps_the_old(
        tmp_path, monkeypatch):
    gen = make_tiny_generator(resolution=8, channel_max=16)
    clip = make_tiny_clip()
    old_gen = save_generator(gen, tmp_path / "g.safetensors").read_bytes()
    old_clip = clip.save(tmp_path / "clip.safetensors").read_bytes()
    fill_the_disk(monkeypatch)
    for save, name in [(lambda p: save_generator(gen, p), "g.safetensors"),
                       (clip.save, "clip.safetensors"),
                       (lambda p: save_generator(gen, p), "new/g.safetensors")]:
        with pytest.raises(OSError) as got:
            save(tmp_path / name)
        assert got.value.errno == errno.ENOSPC, name
    assert sorted(p.name for p in files_under(tmp_path)) == ["clip.safetensors",
                                                              "g.safetensors"]
    assert (tmp_path / "g.safetensors").read_bytes() == old_gen
    assert (tmp_path / "clip.safetensors").read_bytes() == old_clip


def test_a_full_disk_is_warned_about_once_not_at_every_progress_save(monkeypatch, caplog):
    # A long precompute tries to save its progress every few seconds: each failure was a
    # warning line of its own on the terminal, through the progress bar.
    gen = make_tiny_generator(resolution=8, channel_max=16, seed=4)
    config = gd.RelevanceConfig(n_images=1, layers=("conv1", "convs.0", "convs.1"))
    fill_the_disk(monkeypatch)
    with caplog.at_level("WARNING", logger=pc.log.name):
        list(pc.precompute_pack(gen, make_tiny_clip(), "gen-hash", "clip-hash", 100, config))
    progress = [r for r in caplog.records if "progress so far" in r.getMessage()]
    assert len(progress) == 1
