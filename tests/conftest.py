"""Shared fixtures: tiny models built in the test, isolated cache/config dirs."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Tests run on the CPU by default and never read or write the user's real cache/config.
# ATELIER_TEST_GPU=1 (set by scripts/gpu-checks.sh) leaves the GPUs visible for the @gpu tests.
if os.environ.get("ATELIER_TEST_GPU") != "1":
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under scripts/gpu-checks.sh (ATELIER_TEST_GPU=1) a skipped @gpu test fails: the
    step said "ok cuda-tests" when every CUDA test had been skipped."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("ATELIER_TEST_GPU") == "1" \
            and item.get_closest_marker("gpu") is not None:
        report.outcome = "failed"
        report.longrepr = f"a GPU test did not run under ATELIER_TEST_GPU=1: {report.longrepr}"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.mktemp("atelier-home")
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("ATELIER_CONFIG_DIR", str(root / "config"))
    from editor.ui.app import place_settings

    place_settings()  # the window's QSettings too, for tests that build widgets directly
    yield


@pytest.fixture(autouse=True)
def _fresh_auto_device():
    """Auto's device choice is cached per process: a test that fakes a GPU must not leave
    its answer (or its note on a GPU passed over) to the tests after it."""
    yield
    devices = sys.modules.get("editor.core.devices")
    if devices is not None:
        devices.auto_device.cache_clear()
        devices.usable_cuda.cache_clear()


def make_tiny_generator(resolution: int = 16, style_dim: int = 32, n_mlp: int = 2,
                        channel_max: int = 32, seed: int = 0):
    """A randomly initialised generator small enough for unit tests, with non-zero noise
    strengths and biases so every parameter matters."""
    from editor.core.generator import Generator, GeneratorConfig

    torch.manual_seed(seed)
    cfg = GeneratorConfig(resolution=resolution, style_dim=style_dim, n_mlp=n_mlp,
                          channel_base=channel_max * 16, channel_max=channel_max)
    gen = Generator(cfg)
    with torch.no_grad():
        for name, p in gen.named_parameters():
            if name.endswith("noise.weight") or name.endswith("activate.bias") or \
                    name.endswith(".bias") and "to_rgb" in name:
                p.normal_(0, 0.1)
        gen.w_avg.copy_(gen.mean_latent(256))
    return gen.eval()


@pytest.fixture
def tiny_generator():
    return make_tiny_generator()


TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2,
                 "layers": 1},
    "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "patch_size": 8,
                   "head_width": 16},
}


def make_tiny_clip(seed: int = 0):
    """A random-weight open_clip CLIP small enough for unit tests (16 px ViT)."""
    from editor.core.clip_model import ClipModel

    torch.manual_seed(seed)
    return ClipModel.from_config(TINY_CLIP_CONFIG, name="tiny-clip")


def model_ready(win) -> bool:
    """Whether the window's model is open with its CLIP, or the reason it has none (the
    first picture comes before the CLIP: model_loaded brings the generator alone)."""
    return win.pack is not None and not win.pack.clip_pending


def close_without_questions(win, qtbot) -> None:
    """Close as a test ends: no "save changes?" and no "jobs still running" question."""
    win.document.mark_saved()
    win.jobs.cancel_all()
    qtbot.waitUntil(lambda: not win.jobs.active_jobs(), timeout=20_000)
    win.close()


def discard_on_close(monkeypatch) -> None:
    """A test window closed at teardown (pytest-qt closes it before fixtures end) answers
    the window's own close questions: discard unsaved changes, stop running jobs. A test
    that checks a question patches QMessageBox.question itself."""
    from PySide6.QtWidgets import QMessageBox

    def answer(_parent, title, *_args, **_kwargs):
        if title == "Save changes?":
            return QMessageBox.StandardButton.Discard
        if title == "Jobs still running":
            return QMessageBox.StandardButton.Yes
        raise AssertionError(f"unexpected question in a test: {title}")

    monkeypatch.setattr(QMessageBox, "question", staticmethod(answer))


@contextlib.contextmanager
def reading_fifo(fifo: Path) -> Iterator[list[bytes]]:
    """A reader of the named pipe `fifo` on a thread of its own while the body writes into
    it; the list it yields holds what was read once the body is done. A reader still
    waiting for a writer is let go without blocking: a plain open for writing, where the
    reader had just finished, waited for a reader for ever and hung the suite."""
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        yield got
    finally:
        reader.join(2)
        if reader.is_alive() and stat.S_ISFIFO(os.lstat(fifo).st_mode):
            with contextlib.suppress(OSError):  # ENXIO: no reader waits any more
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
