"""`atelier` itself: what the first argument means, whose usage an error shows, the
progress line shared by the commands, and what `atelier models` imports."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from editor.cli import main
from editor.cli.outputs import StatusLine
from editor.methods.global_directions import Progress

GEN = __file__  # a model file that exists (a file is checked when the command is read)


def _atelier(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's errors
        return e.code


@pytest.fixture
def gui_runs(monkeypatch):
    """What the window would have been opened with."""
    calls = []
    monkeypatch.setattr("editor.ui.app.run_app",
                        lambda paths, device: calls.append((paths, device)) or 0)
    return calls


@pytest.mark.parametrize("argv", [["missing.png"], ["photos/missing", "--device", "cpu"],
                                  ["gui", "--device", "cpu", "missing.png"]])
def test_a_missing_file_is_said_to_be_missing(argv, gui_runs, capsys):
    # `atelier missing.png` was argparse's "invalid choice: 'missing.png' (choose from ...)"
    assert _atelier(argv) == 2
    err = capsys.readouterr().err
    missing = next(a for a in argv if "missing" in a)
    assert f"atelier gui: no such file: {missing}" in err
    assert "invalid choice" not in err and gui_runs == []


def test_a_folder_named_to_the_gui_is_refused(tmp_path, gui_runs, capsys):
    # taken for a generator: "Could not open the model: ... is a folder", the demo opened
    # instead, and it replaced the model used last
    assert _atelier(["gui", str(tmp_path)]) == 2
    assert f"atelier gui: a folder, not a file: {tmp_path}" in capsys.readouterr().err
    assert gui_runs == []


def test_files_then_gui_options_open_the_window(tmp_path, gui_runs, capsys):
    big, other = tmp_path / "big.png", tmp_path / "other.png"
    big.touch()
    other.touch()
    assert _atelier([str(big), "--device", "cpu"]) == 0
    assert _atelier([str(big), str(other)]) == 0
    assert gui_runs == [([str(big)], "cpu"), ([str(big), str(other)], None)]
    assert _atelier([str(big), str(tmp_path / "gone.png")]) == 2
    assert "no such file: " + str(tmp_path / "gone.png") in capsys.readouterr().err
    # files after an option too ("unrecognized arguments: other.png")
    assert _atelier([str(big), "--device", "cpu", str(other)]) == 0
    assert _atelier(["gui", "--device", "cpu", str(big), str(other)]) == 0
    assert gui_runs[2:] == [([str(big), str(other)], "cpu")] * 2


def test_a_word_that_is_no_command_and_no_file_is_still_an_invalid_choice(gui_runs, capsys):
    assert _atelier(["nosuchcommand"]) == 2
    assert "invalid choice: 'nosuchcommand'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, usage", [(["gui", "--bogus"], "usage: atelier gui "),
                                         (["models", "list", "--bogus"],
                                          "usage: atelier models list ")])
def test_an_unknown_option_shows_its_commands_usage(argv, usage, gui_runs, capsys):
    # argparse showed the top-level usage ("atelier [-h] [--version] COMMAND ...")
    assert _atelier(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and "unrecognized arguments: --bogus" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_a_terminal_one_redrawn_line():
    log = io.StringIO()
    line = StatusLine(log, log_every_s=3600)
    for i in range(101):
        line.progress(f"step {i}   ", i / 100)
    line.close()
    assert "\r" not in log.getvalue()
    # one line per tenth, padding dropped, and the last one
    assert log.getvalue().splitlines() == [f"step {i}" for i in range(0, 101, 10)]

    tty = _Terminal()
    line = StatusLine(tty, interval=3600)
    for i in range(101):
        line.progress(f"step {i}", i / 100)
    line.close()
    assert tty.getvalue() == "\rstep 0\x1b[K\rstep 100\x1b[K\n"


def test_invert_progress_in_a_log_has_no_carriage_returns(monkeypatch):
    from editor.cli import invert

    log = io.StringIO()
    line = StatusLine(log)
    for done in range(0, 501, 50):
        invert._print_progress(line, Progress(done, 500, f"step {done}/500", 9.0), "1 of 1")
    assert "\r" not in log.getvalue()
    assert len(log.getvalue().splitlines()) == 11
    assert log.getvalue().splitlines()[-1].startswith("inverting 1 of 1: 100.0% step 500/500")


def test_a_first_use_precompute_and_an_inversion_say_hours_left_in_hours():
    # `atelier edit` on a new generator precomputes its pack first: on a CPU that is hours
    # (weeks at 1024 px), and its line said "ETA 5239s" where `atelier precompute` says 1h27m
    from editor.cli import edit, invert

    log = io.StringIO()
    edit._print_progress(StatusLine(log), Progress(232, 23_200, "step 1 of 2: relevance", 5239))
    invert._print_progress(StatusLine(log), Progress(5, 500, "step 5/500", 3 * 86400 + 75),
                           "1 of 1")
    lines = log.getvalue().splitlines()
    assert lines[0].endswith("ETA 1h27m") and lines[1].endswith("ETA 72h01m")
    assert "s" not in lines[0].rsplit("ETA", 1)[1]


def test_a_command_removes_what_a_killed_run_left_half_written_in_the_cache(capsys):
    # only the window swept them: someone who uses the commands alone kept them for ever
    import os
    import time

    from editor.core import paths

    folder = paths.cache_dir() / "packs" / "relevance"
    folder.mkdir(parents=True)
    stale = folder / ".abc.safetensors.0badcafe.tmp"
    fresh = folder / ".abc.safetensors.1234abcd.tmp"
    for f in (stale, fresh):
        f.write_bytes(b"x")
    day_old = time.time() - paths.STALE_TEMP_S - 60
    os.utime(stale, (day_old, day_old))
    assert main(["models", "list"]) == 0
    assert not stale.exists() and fresh.exists()  # a writer at work keeps its own


def test_models_list_does_not_import_torch():
    # `atelier models list` took 8 s: editor.core.model_files (and engine, via outputs)
    # import torch at module level, for a table read from a JSON file
    code = ("import sys; from editor.cli import main; main(['models', 'list']); "
            "sys.exit('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "NAME" in proc.stdout


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_an_output_on_a_full_disk_is_one_line_not_a_traceback():
    # `atelier models list > /dev/full` ended in a traceback
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "editor", "models", "list"],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == ("atelier models: cannot write the output: "
                           "No space left on device\n")


def test_a_short_output_that_fails_when_flushed_is_said_by_the_command(monkeypatch,
                                                                        capsys):
    # A few lines wait in stdout's buffer until Python's exit, which said "Exception
    # ignored" and exited 120 on a full disk.
    import errno

    class FullOnFlush(io.StringIO):
        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("sys.stdout", FullOnFlush())
    monkeypatch.setattr("editor.cli._drop_stdout", lambda: None)  # not pytest's own fd 1
    assert main(["models", "list"]) == 1
    assert "cannot write the output: No space left on device" in capsys.readouterr().err


def test_a_command_started_with_stdout_closed_succeeds(monkeypatch):
    # `atelier models list >&-` (Python's stdout is None): the flush after the command
    # ended in an AttributeError traceback and exit 1 (helper-151)
    monkeypatch.setattr("sys.stdout", None)
    assert main(["models", "list"]) == 0


@pytest.mark.parametrize("locale", [
    {"PYTHONIOENCODING": "ascii"}, {"PYTHONIOENCODING": "latin-1"},
    {"LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}])
def test_a_terminal_that_cannot_write_a_character_gets_it_escaped(locale, tmp_path):
    # "▸" in the help, "é" in a path, "↔" in discover's table: print() failed once the work
    # was done, with a traceback (`invert` then left out its --json and later pictures)
    env = {**os.environ, **locale, "ATELIER_CACHE_DIR": str(tmp_path / "caché")}
    for argv, shown in ((["gui", "--help"], b"View \\u25b8 Device"),
                        (["models", "list"], b"Models are stored in")):
        proc = subprocess.run([sys.executable, "-m", "editor", *argv], env=env,
                              capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert shown in proc.stdout


def test_a_reader_that_leaves_ends_the_command_quietly():
    read, write = os.pipe()
    os.close(read)  # `atelier models list | head -0`
    proc = subprocess.run([sys.executable, "-m", "editor", "models", "list"], stdout=write,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write)
    assert (proc.returncode, proc.stderr) == (1, "")


# --------------------------------------------------------------------------- precompute
# and discover on tiny models (and the bundled demo pack)


@pytest.fixture
def tiny_models(tmp_path):
    from editor.core.checkpoints import save_generator
    from tests.conftest import make_tiny_clip, make_tiny_generator

    gen = save_generator(make_tiny_generator(resolution=8, channel_max=16),
                         tmp_path / "g.safetensors")
    clip = make_tiny_clip().save(tmp_path / "clip.safetensors")
    return str(gen), str(clip)


def _precompute(gen: str, clip: str, *extra: str) -> list[str]:
    return ["precompute", "--generator", gen, "--clip-checkpoint", clip, "--n-images", "3",
            "--stats-samples", "500", "--device", "cpu", *extra]


def _no_precompute(*args, **kwargs):
    raise AssertionError("a precompute ran")


def _forbid_opening_a_pack(monkeypatch) -> None:
    """Any command that gets as far as opening a pack fails the test. The commands that
    take open_pack by name at import are imported first and patched too: imported while
    the patch stood, they kept the stub for every later test (test_cli_edit's 56 failed
    when it ran after this file)."""
    import editor.cli.edit
    import editor.cli.invert
    import editor.engine.packs

    for module in (editor.engine.packs, editor.cli.edit, editor.cli.invert):
        monkeypatch.setattr(module, "open_pack", _no_precompute)


def test_precompute_of_the_bundled_demo_pack_is_already_done(monkeypatch, capsys):
    # `atelier precompute` on the demo generator computed the pack that ships with the
    # program again (about 95 min on a CPU), into a cache the editor never reads for it
    from editor.engine.models import DEMO_GENERATOR
    from editor.engine.packs import DEMO_CLIP, DEMO_DIRECTIONS

    monkeypatch.setattr("editor.methods.precompute.precompute_pack", _no_precompute)
    assert _atelier(["precompute", "--generator", str(DEMO_GENERATOR), "--clip-checkpoint",
                     str(DEMO_CLIP), "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "already computed" in err and "nothing to do" in err
    assert out.startswith("pack ready (already computed")
    assert out.splitlines()[-1].startswith(str(DEMO_DIRECTIONS))


def test_precompute_says_its_amount_of_work_and_an_estimate_of_its_time(
        tiny_models, monkeypatch, capsys):
    # At 1024 px on a CPU the default precompute is 604,800 (channel, image) pairs, about
    # 116 days; the first line said "100 images/channel, batch 2, device cpu" and the
    # bar "0.0%" for minutes, with no word of what the job amounts to.
    from editor.methods.global_directions import Progress

    def slow_job(*args, **kwargs):
        yield Progress(0, 1000, "relevance: starting")
        yield Progress(1, 1000, "relevance: layer conv1 (1/3)", 30e6)  # 347 days
        yield Progress(2, 1000, "relevance: layer conv1 (1/3)", 29e6)
        raise KeyboardInterrupt

    monkeypatch.setattr("editor.methods.precompute.precompute_pack", slow_job)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert _atelier(_precompute(*tiny_models)) == 130
    first, *rest = capsys.readouterr().err.splitlines()
    # the tiny generator: 48 style channels, here with 3 images each, 2 renders a pair
    assert "144 (channel, image) pairs" in first and "48 style channels" in first
    assert "288 renders" in first
    (estimate,) = [line for line in rest if "estimate" in line]
    assert estimate.startswith("atelier precompute: estimate: about 347 days")
    assert "rough estimate" in estimate
    for way in ("--device cuda", "--layers", "--n-images"):
        assert way in estimate


def test_precompute_json_summary(tiny_models, tmp_path, capsys):
    gen, clip = tiny_models
    out = tmp_path / "summary.json"
    assert _atelier(_precompute(gen, clip, "--layers", "conv1", "--json", str(out))) == 0
    printed = capsys.readouterr().out
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["pack"] == printed.splitlines()[-1]  # stdout's last line: still the pack
    assert summary["how"] == "computed" and summary["channels"] == 16
    assert summary["generator"]["path"] == gen and summary["clip"]["name"] == "tiny-clip"
    assert summary["settings"]["layers"] == ["conv1"] and summary["seconds"] is not None
    # an existing file is refused before any work, as discover's --json
    assert _atelier(_precompute(gen, clip, "--layers", "conv1", "--json", str(out))) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert _atelier(_precompute(gen, clip, "--layers", "conv1", "--json", str(out),
                                "--overwrite")) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["how"] == "from the cache"


@pytest.mark.parametrize("argv, message", [
    (["precompute", "--threads", "100000"], "--threads: 100000 is out of range"),
    (["discover", "--threads", "100000"], "--threads: 100000 is out of range"),
    (["import-styleclip", "--threads", "100000"], "--threads: 100000 is out of range"),
    (["precompute", "--psi", "-3"], "--psi: -3 is out of range (use -1 to 2)"),
    (["edit", "--psi", "-3"], "--psi: -3 is out of range (use -1 to 2)"),
    (["discover", "--n-samples", "100000000"], "--n-samples: 100000000 is out of range"),
    # ran for ever at "0.0% ETA --", and a stop kept none of the statistics
    (["precompute", "--stats-samples", "10000000000"], "--stats-samples: 10000000000 is out"),
    (["edit", "--stats-samples", "10000000000"], "--stats-samples: 10000000000 is out"),
    (["import-styleclip", "--stats-samples", "10000000000"],
     "--stats-samples: 10000000000 is out"),
])
def test_numbers_a_run_cannot_take_are_refused_when_the_command_is_read(argv, message,
                                                                        capsys, monkeypatch):
    # --threads 100000: "libgomp: Out of memory"; --psi -3 went on; --n-samples 1e8 asked
    # for about 68 GB
    # what the old code went on to do would crash the tests, or sample 1e8 images
    monkeypatch.setattr("torch.set_num_threads", _no_precompute)
    _forbid_opening_a_pack(monkeypatch)
    rest = {"precompute": ["--generator", GEN, "--clip-checkpoint", GEN],
            "edit": ["-o", "x.png"], "discover": [],
            "import-styleclip": ["fs3.npy", "--generator", GEN]}[argv[0]]
    assert _atelier([*argv, *rest]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["discover", "--generator", ""], ["discover", "--json", ""],
    ["discover", "--clip-file", ""], ["discover", "--vocab", ""],
    ["precompute", "--generator", GEN, "--clip-checkpoint", ""],
    ["precompute", "--generator", GEN, "--clip-checkpoint", GEN, "--into", ""],
    ["precompute", "--generator", GEN, "--clip-checkpoint", GEN, "--json", ""],
])
def test_an_empty_name_is_refused_when_the_command_is_read(argv, capsys, monkeypatch):
    # `--generator "$GEN"` with GEN unset opened the demo generator, `--json ""` wrote
    # nothing, `--into ""` wrote the user cache, all with status 0; precompute's
    # `--clip-checkpoint ""` was a traceback (AttributeError in _read_config)
    _forbid_opening_a_pack(monkeypatch)
    assert _atelier(argv) == 2
    assert "an empty name" in capsys.readouterr().err


def test_discover_refuses_a_clip_arch_it_would_ignore(tiny_models, capsys, monkeypatch):
    # `discover --clip-arch ViT-B-32` went on with the demo CLIP without a word
    _forbid_opening_a_pack(monkeypatch)
    assert _atelier(["discover", "--generator", tiny_models[0], "--clip-arch", "ViT-B-32",
                     "--device", "cpu"]) == 1
    assert "--clip-arch needs --clip-pretrained TAG or --clip-checkpoint FILE" in \
        capsys.readouterr().err


def test_warnings_on_the_way_are_the_commands_own_lines(tiny_models, tmp_path, capsys,
                                                       monkeypatch):
    # "cannot use the folder … (Not a directory)" and "the sampled images could not be
    # saved to the cache …" came bare, from logging, naming neither the command nor the
    # ATELIER_CACHE_DIR that chose the folder
    (tmp_path / "afile").touch()
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path / "afile" / "cache"))
    gen, clip = tiny_models
    assert _atelier(_precompute(gen, clip)) == 1
    err = capsys.readouterr().err
    assert "atelier precompute: warning: cannot use the folder" in err
    assert all(line.startswith("atelier precompute: ") for line in err.splitlines())
    assert err.count("ATELIER_CACHE_DIR") == 2  # the warning and the error
    assert _atelier(["discover", "--generator", gen, "--clip-checkpoint", clip, "--k", "2",
                     "--n-samples", "30", "--no-mixture", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "atelier discover: warning: the sampled images could not be saved to the " \
        "cache" in err and "ATELIER_CACHE_DIR is " in err


def test_a_discovery_another_process_samples_is_one_line_not_a_traceback(tiny_models,
                                                                        capsys):
    # its sampling is locked as the precompute is (one at a time); EntryBusy is an
    # OSError, which `atelier discover` did not catch
    import dataclasses

    from editor.engine import discovered as dd
    from editor.engine.packs import ClipSource, open_pack

    gen, clip = tiny_models
    pack = open_pack(gen, ClipSource(path=clip), "cpu")
    config = dataclasses.replace(dd.default_config(pack), n_samples=30, seed=0)
    with dd._samples_entry(pack, config, None).lock("discovery sampling"):
        assert _atelier(["discover", "--generator", gen, "--clip-checkpoint", clip, "--k",
                         "2", "--n-samples", "30", "--no-mixture", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "atelier discover: error: another discovery sampling of this pack is running " \
        f"(pid {os.getpid()})" in err
    assert "Traceback" not in err


def test_discover_says_its_global_directions_were_computed_with_other_settings(
        tiny_models, capsys):
    # a pack made with --layers convs.15 --n-images 2 (32 of 6048 channels) was used
    # without a word
    gen, clip = tiny_models
    assert _atelier(["precompute", "--generator", gen, "--clip-checkpoint", clip,
                     "--layers", "conv1", "--n-images", "2", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert _atelier(["discover", "--generator", gen, "--clip-checkpoint", clip, "--k", "2",
                     "--n-samples", "30", "--no-mixture", "--device", "cpu"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.endswith("global directions from a pack computed with --layers conv1 "
                          "--n-images 2 (16 of 48 style channels), not with the default "
                          "settings")
