"""`atelier` itself: what the first argument means, whose usage an error shows, the
progress line shared by the commands, and what `atelier models` imports."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from editor.cli import main
from editor.cli.outputs import StatusLine
from editor.methods.global_directions import Progress


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


def test_models_list_does_not_import_torch():
    # `atelier models list` took 8 s: editor.core.model_files (and engine, via outputs)
    # import torch at module level, for a table read from a JSON file
    code = ("import sys; from editor.cli import main; main(['models', 'list']); "
            "sys.exit('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "NAME" in proc.stdout
