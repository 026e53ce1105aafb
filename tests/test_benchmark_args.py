"""The benchmarks read by hand: bad values are usage errors before any model loads (exit 2,
one line), the default relevance models load, and Ctrl-C stops a drag. Nothing is timed."""

from __future__ import annotations

import argparse
import os
import signal

import pytest
import torch
from PySide6.QtCore import QTimer

from benchmarks import discovery, inversion, latency, meaning, relevance, synthesis, window_latency
from editor.engine.compose import EditingContext
from editor.engine.renderer import Renderer
from editor.engine.session import Edit, Source
from tests.conftest import make_tiny_generator

FOLDER = "<folder>"  # replaced by a folder that exists

# each would have run a benchmark (a traceback or a default silently used), with the
# smallest settings beside the bad value so that an accepted one ends soon
BAD = [
    (synthesis.main, ["--resolution", "8", "--repeats", "0"]),
    (synthesis.main, ["--resolution", "8", "--repeats", "-3"]),
    (synthesis.main, ["--resolution", "100", "--repeats", "1"]),
    (latency.main, ["--demo", "--events", "2", "--repeats", "0"]),
    (latency.main, ["--demo", "--events", "2", "--threads", "0"]),
    (latency.main, ["--demo", "--events", "0"]),
    (relevance.main, ["--n-images", "1", "--every", "0"]),
    (relevance.main, ["--n-images", "1", "--repeats", "-2"]),
    (relevance.main, ["--n-images", "1", "--threads", "0"]),
    (relevance.main, ["--generator", FOLDER]),
    (window_latency.main, ["--events", "0"]),
    (meaning.build_parser().parse_args, ["--seeds", "0"]),
    (meaning.build_parser().parse_args, ["--batch", "0"]),
    (meaning.build_parser().parse_args, ["--json", FOLDER]),
    (meaning.build_parser().parse_args, ["--evaluator", FOLDER]),
    (inversion.build_parser().parse_args, ["--n", "0"]),
    (inversion.build_parser().parse_args, ["--batch", "0"]),
    (inversion.build_parser().parse_args, ["--json", FOLDER]),
    (discovery.build_parser().parse_args, ["--top", "0"]),
    (discovery.build_parser().parse_args, ["--json", FOLDER]),
]


def _name(parse) -> str:
    parser = getattr(parse, "__self__", None)  # a parser's parse_args, or a main
    return (parser.prog if parser else parse.__module__).split(".")[-1]


@pytest.mark.parametrize(("parse", "argv"), BAD, ids=[f"{_name(p)}:{' '.join(a)}"
                                                       for p, a in BAD])
def test_bad_values_are_usage_errors(parse, argv, tmp_path, capsys):
    argv = [str(tmp_path) if a == FOLDER else a for a in argv]
    with pytest.raises(SystemExit) as e:
        parse(argv)
    assert e.value.code == 2
    assert "error: argument" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("parse", [synthesis.main, latency.main, relevance.main,
                                   meaning.build_parser().parse_args,
                                   inversion.build_parser().parse_args])
def test_cuda_without_a_gpu_is_a_usage_error(parse, capsys):
    with pytest.raises(SystemExit) as e:
        parse(["--device", "cuda"])
    assert e.value.code == 2
    assert "no CUDA device is available" in capsys.readouterr().err


def test_the_default_relevance_models_load():
    """Neither --ffhq, --generator nor --demo-pack: the demo architecture, random weights
    (a local import in --demo-pack's branch made its name unbound here)."""
    args = argparse.Namespace(demo_pack=False, ffhq=False, generator=None, clip_config=None,
                              clip_checkpoint=None)
    gen, clip, what, sample_w = relevance.load_models(args)
    assert gen.img_resolution == relevance.DEMO_GENERATOR.resolution
    assert what.startswith("demo architecture") and sample_w is None


def test_ctrl_c_stops_a_drag(qapp):
    """Raised inside a Qt slot, the interrupt was printed and the drag went on to its end."""
    gen = make_tiny_generator(resolution=16)
    edit = Edit("delta", {"delta": latency.random_delta(gen)}, id="drag")
    sessions = latency.drag_sessions(Source(seed=1), edit, latency.drag_values(2000))
    renderer = Renderer(EditingContext(gen), device="cpu")
    QTimer.singleShot(50, lambda: os.kill(os.getpid(), signal.SIGINT))
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        latency.measure_drag(renderer, sessions, interval_s=0.005, timeout_s=60)
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C is Python's again


def test_synthesis_below_the_preview_size_times_what_it_has(capsys):
    """A generator of 256 px or less has no 256 px preview to time (ValueError, before)."""
    synthesis.main(["--resolution", "8", "--repeats", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert "full 8px" in out and "mapping + styles" in out and "preview" not in out


def test_the_inversion_benchmark_fails_when_a_goal_is_not_met(monkeypatch, capsys):
    """It printed FAIL and exited 0, where the meaning, discovery and latency benchmarks
    exit 1: a script running the benchmarks saw every run pass."""
    import numpy as np

    from editor.methods.inversion import Quality

    class Inverted:
        def __init__(self, n, psnr):
            self.wplus, self.images = torch.zeros(n, 1, 1), torch.zeros(n, 3, 8, 8)
            self.quality = [Quality(psnr, 0.9, 0.9)] * n
            self.seconds, self.perceptual = 1.0, "none"

    world = argparse.Namespace(generator=None, clip=None, evaluator=None)
    agree = {"overall": 0.95, "all_attributes": 0.9, "per_attribute": {}}
    edit = {"target": "t", "alpha": 3, "beta": 0.1, "channels": 20, "reached": 8,
            "lacking": 10, "reached_rate": 0.8, "others_same_where_reached": 1.0}
    monkeypatch.setattr(inversion.mb, "load_world", lambda *a, **k: world)
    monkeypatch.setattr(inversion, "render_batch", lambda n, seed: argparse.Namespace(
        images=np.zeros((n, 8, 8, 3), np.uint8), attrs=[{}] * n))
    monkeypatch.setattr(inversion.mb, "read", lambda *a: None)
    monkeypatch.setattr(inversion.mb, "as_shown", lambda x: x)
    monkeypatch.setattr(inversion, "agreement", lambda *a: agree)
    monkeypatch.setattr(inversion, "edit_reached", lambda *a: edit)
    for psnr, code in ((30.0, 0), (20.0, 1)):
        monkeypatch.setattr(inversion, "run_inversion",
                            lambda gen, chunk, *a, psnr=psnr, **k: Inverted(len(chunk), psnr))
        assert inversion.main(["--n", "2", "--batch", "2"]) == code
        assert ("FAIL" in capsys.readouterr().out) == bool(code)
