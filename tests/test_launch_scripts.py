"""The launcher scripts (scripts/*.sh), run on a copy of the checkout with a fake Python:
its venv is a few folders and its pip installs stub packages, so a run takes a fraction of
a second, needs no network and installs no torch. The fake logs what pip installed and what
the scripts ran (with the CUDA variables it saw) to calls.log."""

from __future__ import annotations

import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("ensure-env.sh", "run-editor.sh", "run-tests.sh", "gpu-checks.sh",
           "install-desktop-entry.sh")

needs_bash = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "sha256sum", "readlink")),
    reason="needs bash and coreutils (sha256sum, readlink)")

# The fake interpreter, run as `REAL_PYTHON -S fakepy.py INVOKED_PATH ARGS...`. Its version
# is the file `version` beside the wrapper it resolves to (a venv's bin/python is a link to
# the interpreter it was made with, as with a real venv).
FAKE_PY = r'''
import os, shlex, shutil, sys, time

me = os.path.abspath(sys.argv[1])
args = sys.argv[2:]
base = os.path.dirname(os.path.realpath(me))
with open(os.path.join(base, "version")) as f:
    ver = f.read().strip()
venv = os.path.dirname(os.path.dirname(me))
if not os.path.exists(os.path.join(venv, "pyvenv.cfg")):
    venv = None
site = (os.path.join(venv, "lib", "python" + ver, "site-packages") if venv
        else os.path.join(base, "site"))
TORCH = """__version__ = "{}"
class cuda:
    is_available = staticmethod(lambda: True)
    get_device_name = staticmethod(lambda i: "Fake GPU")
"""

EDITABLE_BANNER = """\
WARNING: Location 'https://example.invalid/simple/' is ignored: it is an index page
  /venv/lib/python3.11/site-packages/setuptools/command/editable_wheel.py:354: \
BuildBackendWarning: Editable installation.
  !!

          ********************************************************************************
          Please be careful with folders in your working directory with the same
          name as your package as they may take precedence during imports.
          ********************************************************************************

  !!
    with strategy, WheelFile(wheel_path, "w") as wheel_obj:"""


def log(line):
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(line + "\n")


def stub(name, body=""):
    os.makedirs(os.path.join(site, name), exist_ok=True)
    with open(os.path.join(site, name, "__init__.py"), "w") as f:
        f.write(body)


def program(name, text):
    path = os.path.join(venv, "bin", name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + text + "\n")
    os.chmod(path, 0o755)


if args[:1] == ["--version"]:
    print("Python " + ver.rstrip("t") + ".0")
elif args[:1] == ["-c"]:
    import sysconfig
    sys.path.insert(0, site)
    sys.version_info = tuple(int(x) for x in ver.rstrip("t").split(".")) + (0, "final", 0)
    real_config_var = sysconfig.get_config_var  # "3.13t": a free-threaded build
    sysconfig.get_config_var = lambda name: (ver.endswith("t") if name == "Py_GIL_DISABLED"
                                             else real_config_var(name))
    exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
elif args[:2] == ["-m", "venv"]:
    target = os.path.abspath(args[-1])
    if "--clear" in args:
        shutil.rmtree(target, ignore_errors=True)
    site = os.path.join(target, "lib", "python" + ver, "site-packages")
    os.makedirs(site, exist_ok=True)
    os.makedirs(os.path.join(target, "bin"), exist_ok=True)
    with open(os.path.join(target, "pyvenv.cfg"), "w") as f:
        f.write("home = " + base + "\n")
    if not os.path.islink(os.path.join(target, "bin", "python")):  # as venv: kept as is
        os.symlink(os.path.realpath(me), os.path.join(target, "bin", "python"))
    if os.path.exists(os.path.join(base, "no-ensurepip")):  # Debian without python3-venv
        sys.exit("The virtual environment was not created successfully because ensurepip "
                 "is not available.")
    stub("pip")
elif args[:2] == ["-m", "pip"]:
    if not os.path.exists(os.path.join(site, "pip")):
        sys.exit(me + ": No module named pip")
    if args[2:3] == ["install"]:
        log("pip " + " ".join(args[2:]))
        time.sleep(float(os.environ.get("FAKE_PIP_SLEEP", "0")))  # a slow download
        if os.environ.get("FAKE_PIP_FAIL"):
            sys.exit("ERROR: Could not find a version that satisfies the requirement (offline)")
        if "-e" in args:  # what pip and setuptools 80 say at every editable install
            print(EDITABLE_BANNER, file=sys.stderr)
        for arg in args[3:]:
            if arg.startswith("torch=="):
                stub("torch", TORCH.format(arg[7:]))
            if arg == "-e":
                for name in ("torchvision", "open_clip", "PySide6", "editor"):
                    stub(name)
                # absolute, as pip writes them: a venv does not survive a move
                program("atelier", f'exec {shlex.quote(venv + "/bin/python")} -m editor "$@"')
                program("ruff", 'echo "ruff $*"')
    else:
        print("pip 99.0 (fake)")
else:  # -m MODULE or a script: one of the project's programs, which needs it installed
    if not os.path.exists(os.path.join(site, "editor")):
        sys.exit("ModuleNotFoundError: No module named 'editor'")
    env = " ".join(f"{k}={os.environ.get(k)!r}" for k in ("CUDA_VISIBLE_DEVICES",
                                                            "ATELIER_TEST_GPU"))
    log("run " + " ".join(args) + " " + env)
    print("ran " + " ".join(args))
    fail = os.environ.get("FAKE_FAIL")
    sys.exit(3 if fail and fail in " ".join(args) else 0)
'''


class Checkout:
    """scripts/ and pyproject.toml of this checkout copied to tmp_path/repo, and fake
    interpreters to make its .venv with."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.root = tmp_path / "repo"
        (self.root / "scripts").mkdir(parents=True)
        for name in SCRIPTS:
            shutil.copy(ROOT / "scripts" / name, self.root / "scripts" / name)
        shutil.copy(ROOT / "pyproject.toml", self.root / "pyproject.toml")
        (self.root / "packaging").mkdir()
        for name in ("latent-atelier.desktop", "latent-atelier.svg"):
            shutil.copy(ROOT / "packaging" / name, self.root / "packaging" / name)
        self.venv = self.root / ".venv"
        self.log = tmp_path / "calls.log"
        self.log.touch()
        (tmp_path / "fakepy.py").write_text(FAKE_PY)

    def python(self, name: str = "py311", version: str = "3.11") -> Path:
        """A fake interpreter tmp_path/NAME/python of VERSION (made once)."""
        folder = self.tmp / name
        wrapper = folder / "python"
        if not wrapper.exists():
            folder.mkdir()
            (folder / "version").write_text(version)
            wrapper.write_text(
                f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -S -E "
                f"{shlex.quote(str(self.tmp / 'fakepy.py'))} \"$0\" \"$@\"\n")
            wrapper.chmod(0o755)
        return wrapper

    def run(self, script: str | Path, *args: str, python: Path | None = None,
            cwd: Path | None = None, **env: str | None) -> subprocess.CompletedProcess:
        """bash SCRIPT ARGS with PYTHON=python (default: the 3.11 fake); env values of None
        are removed from the environment."""
        proc = self.start(script, *args, python=python, cwd=cwd, **env)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def start(self, script: str | Path, *args: str, python: Path | None = None,
              cwd: Path | None = None, **env: str | None) -> subprocess.Popen:
        """As run, without waiting for the end."""
        full = dict(os.environ, FAKE_LOG=str(self.log),
                    PYTHON=str(python or self.python()))
        for key in ("CUDA_VISIBLE_DEVICES", "ATELIER_TEST_GPU", "FAKE_PIP_FAIL", "FAKE_FAIL",
                    "FAKE_PIP_SLEEP"):
            full.pop(key, None)
        for key, value in env.items():
            if value is None:
                full.pop(key, None)
            else:
                full[key] = value
        if isinstance(script, str):
            script = self.root / "scripts" / script
        return subprocess.Popen(["bash", str(script), *args], cwd=cwd or self.tmp, env=full,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def calls(self) -> list[str]:
        """What the fake logged since the last call."""
        lines = self.log.read_text().splitlines()
        self.log.write_text("")
        return lines


@pytest.fixture
def checkout(tmp_path):
    return Checkout(tmp_path)


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@needs_bash
def test_first_run_installs_and_later_runs_start_at_once(checkout):
    first = _ok(checkout.run("run-editor.sh", "--version"))
    assert "first time" in first.stderr
    assert "ran -m editor --version" in first.stdout
    assert any("torch==" in c for c in checkout.calls())
    again = _ok(checkout.run("run-editor.sh", "--version"))
    assert again.stderr == "" and checkout.calls() == ["run -m editor --version "
                                                       "CUDA_VISIBLE_DEVICES=None "
                                                       "ATELIER_TEST_GPU=None"]


@needs_bash
@pytest.mark.skipif(not shutil.which("flock"), reason="needs flock (util-linux)")
def test_two_first_runs_at_once_install_once(checkout):
    # run-editor.sh and run-tests.sh started together on a fresh checkout: the second made
    # .venv anew (--clear) under the first's install and installed everything again
    first = checkout.start("ensure-env.sh", FAKE_PIP_SLEEP="0.5")
    deadline = time.monotonic() + 30
    while not any("pip install" in c for c in checkout.log.read_text().splitlines()):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    second = _ok(checkout.run("run-editor.sh", "--version"))
    assert first.wait(timeout=60) == 0, first.communicate()
    assert "another setup of .venv is running; waiting" in second.stderr
    assert "first time" not in second.stderr and "anew" not in second.stderr
    assert "ran -m editor --version" in second.stdout
    assert sum(c.startswith("pip install") and " -e " in c for c in checkout.calls()) == 1


@needs_bash
def test_without_flock_the_first_install_says_it_is_unguarded(checkout, tmp_path):
    # macOS has no flock: two first runs at once go unguarded, and nothing said so
    no_flock = tmp_path / "bin"
    no_flock.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        for tool in Path(folder).glob("*") if Path(folder).is_dir() else ():
            link = no_flock / tool.name
            if tool.name != "flock" and not link.exists() and os.access(tool, os.X_OK):
                link.symlink_to(tool)
    first = _ok(checkout.run("run-editor.sh", "--version", PATH=str(no_flock)))
    assert "'flock' is not installed" in first.stderr
    assert "ran -m editor --version" in first.stdout
    again = _ok(checkout.run("run-editor.sh", "--version", PATH=str(no_flock)))
    assert again.stderr == ""  # nothing to install: nothing to guard


@needs_bash
def test_installs_hide_the_editable_banner_but_not_errors(checkout):
    first = _ok(checkout.run("run-editor.sh", "--version"))
    assert "first time" in first.stderr
    for noise in ("BuildBackendWarning", "!!", "****", "WheelFile", "WARNING: Location"):
        assert noise not in first.stderr
    shutil.rmtree(checkout.venv)
    failed = checkout.run("run-editor.sh", FAKE_PIP_FAIL="1")
    assert "ERROR: Could not find a version" in failed.stderr


@needs_bash
def test_a_missing_or_old_python_is_named_with_a_way_out(checkout):
    missing = checkout.run("run-editor.sh", PYTHON="python3.99")
    assert missing.returncode == 1
    assert "python3.99 was not found" in missing.stderr
    assert "command not found" not in missing.stderr
    old = checkout.run("run-editor.sh", python=checkout.python("py310", "3.10"))
    assert old.returncode == 1 and "found: Python 3.10.0" in old.stderr
    for proc in (missing, old):
        assert "PYTHON=python3.11 bash scripts/run-editor.sh" in proc.stderr


@needs_bash
@pytest.mark.parametrize("folder", ["repo", "my \"odd\" $HOME `x` 100% \\dir"])
def test_the_desktop_entry_starts_this_checkouts_program(checkout, folder):
    root = checkout.root.rename(checkout.tmp / folder)
    data = checkout.tmp / "data"
    installed = _ok(checkout.run(root / "scripts" / "install-desktop-entry.sh",
                                 XDG_DATA_HOME=str(data)))
    # a % is written as the spec asks, but GLib's launcher does not start it: said
    assert ("GLib's launcher" in installed.stderr) == ("%" in folder)
    text = (data / "applications" / "latent-atelier.desktop").read_text()
    template = (ROOT / "packaging" / "latent-atelier.desktop").read_text()
    assert [x for x in text.splitlines() if not x.startswith("Exec=")] == \
        [x for x in template.splitlines() if not x.startswith("Exec=")]
    exec_line = next(x for x in text.splitlines() if x.startswith("Exec="))[5:]
    # as the Desktop Entry spec reads it: the file's string escapes (\\ is \), then words,
    # plain or in double quotes (where \ escapes " ` $ and \), then %% is %
    value = re.sub(r"\\(.)", r"\1", exec_line)
    argv = [re.sub(r'\\([\\"`$])', r"\1", m[1]) if m[1] is not None else m[2]
            for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', value)]
    argv = [a.replace("%%", "%") for a in argv]
    assert argv[0] == str(root / ".venv" / "bin" / "atelier"), exec_line
    assert argv[1:] == ["gui", "%F"]
    proc = subprocess.run([argv[0], "--version"], capture_output=True, text=True,
                          env=dict(os.environ, FAKE_LOG=str(checkout.log)))
    assert "ran -m editor --version" in proc.stdout, proc.stderr
    icon = data / "icons" / "hicolor" / "scalable" / "apps" / "latent-atelier.svg"
    assert icon.read_bytes() == (ROOT / "packaging" / "latent-atelier.svg").read_bytes()


@needs_bash
def test_a_venv_left_without_pip_is_made_anew(checkout):
    # Debian's python without python3-venv: venv fails but leaves .venv/bin/python (no pip)
    (checkout.python().parent / "no-ensurepip").touch()
    assert checkout.run("run-editor.sh", "--version").returncode != 0
    assert (checkout.venv / "bin" / "python").exists()
    (checkout.python().parent / "no-ensurepip").unlink()  # python3-venv now installed
    fixed = _ok(checkout.run("run-editor.sh", "--version"))
    assert "no working pip" in fixed.stderr
    assert "ran -m editor --version" in fixed.stdout


@needs_bash
def test_a_venv_of_an_old_python_is_made_anew(checkout):
    old = checkout.python("py310", "3.10")
    subprocess.run([str(old), "-m", "venv", str(checkout.venv)], check=True,
                   env=dict(os.environ, FAKE_LOG=str(checkout.log)))
    fixed = _ok(checkout.run("run-editor.sh", "--version"))
    assert "made with Python 3.10" in fixed.stderr
    assert Path(os.path.realpath(checkout.venv / "bin" / "python")) == checkout.python()


@needs_bash
@pytest.mark.parametrize("change", ["removed", "upgraded"])
def test_a_venv_whose_python_went_away_is_made_anew(checkout, change):
    made_with = checkout.python("system", "3.11")
    _ok(checkout.run("run-editor.sh", python=made_with))
    if change == "removed":  # the interpreter the venv links to is gone
        shutil.rmtree(made_with.parent)
        why = "does not run"
    else:  # a distro upgrade: the same path is now 3.12, the venv's packages are 3.11's
        (made_with.parent / "version").write_text("3.12")
        why = "now 3.12"
    fixed = _ok(checkout.run("run-editor.sh", "--version"))
    assert why in fixed.stderr
    assert "ran -m editor --version" in fixed.stdout


@needs_bash
def test_a_free_threaded_pythons_venv_is_kept(checkout):
    # its venv keeps packages in lib/python3.13t: the check looked for lib/python3.13 and
    # made the venv anew (a full install) at every start
    free = checkout.python("py313t", "3.13t")
    _ok(checkout.run("run-editor.sh", python=free))
    assert (checkout.venv / "lib" / "python3.13t" / "site-packages" / "editor").is_dir()
    checkout.calls()
    again = _ok(checkout.run("run-editor.sh", "--version", python=free))
    assert again.stderr == "" and not any("pip" in c for c in checkout.calls())


@needs_bash
def test_a_moved_checkout_gets_a_new_venv(checkout):
    _ok(checkout.run("run-editor.sh"))
    moved = checkout.tmp / "moved"
    checkout.root.rename(moved)
    fixed = _ok(checkout.run(moved / "scripts" / "run-editor.sh", "--version"))
    assert "the checkout moved" in fixed.stderr
    assert "ran -m editor --version" in fixed.stdout


@needs_bash
def test_a_venv_linked_from_another_checkout_is_used_not_emptied(checkout):
    # A second checkout whose .venv is a link to the first's was taken for a moved one:
    # `venv --clear` through the link emptied the first checkout's environment.
    _ok(checkout.run("run-editor.sh"))
    other = checkout.tmp / "other"
    shutil.copytree(checkout.root / "scripts", other / "scripts")
    shutil.copy(checkout.root / "pyproject.toml", other / "pyproject.toml")
    (other / ".venv").symlink_to(checkout.venv)
    checkout.calls()
    used = _ok(checkout.run(other / "scripts" / "run-editor.sh", "--version"))
    assert "ran -m editor --version" in used.stdout and used.stderr == ""
    assert not any("pip" in c for c in checkout.calls())
    assert (checkout.venv / ".atelier-installed").is_file()
    # one that needs setting up is refused, and the environment it points to is kept
    (other / "pyproject.toml").write_text(
        (other / "pyproject.toml").read_text() + "\n# changed\n")
    refused = checkout.run(other / "scripts" / "run-editor.sh", "--version")
    assert refused.returncode != 0 and "is a link to" in refused.stderr
    assert not any("pip" in c for c in checkout.calls())
    _ok(checkout.run("run-editor.sh", "--version"))  # the first checkout's still works
    assert not any("pip" in c for c in checkout.calls())


@needs_bash
def test_a_working_venv_does_not_need_the_base_python(checkout):
    _ok(checkout.run("run-editor.sh", python=checkout.python("py312", "3.12")))
    _ok(checkout.run("run-editor.sh", "--version", PYTHON="/nonexistent/python3"))


@needs_bash
def test_a_pin_changed_in_ensure_env_is_installed(checkout):
    _ok(checkout.run("ensure-env.sh"))
    script = checkout.root / "scripts" / "ensure-env.sh"
    text, pins = re.subn(r'"torch==[^"]+"', '"torch==9.9.9"', script.read_text())
    assert pins == 1
    script.write_text(text)
    _ok(checkout.run("ensure-env.sh"))
    assert any("torch==9.9.9" in c for c in checkout.calls())


@needs_bash
def test_the_stamp_is_written_only_after_a_complete_install(checkout):
    failed = checkout.run("run-editor.sh", FAKE_PIP_FAIL="1")
    assert failed.returncode != 0 and "Installation failed" in failed.stderr
    assert not (checkout.venv / ".atelier-installed").exists()
    checkout.calls()
    _ok(checkout.run("run-editor.sh"))
    assert any(c.startswith("pip install") for c in checkout.calls())
    assert (checkout.venv / ".atelier-installed").exists()


@needs_bash
def test_a_failed_update_says_so_and_keeps_the_working_environment(checkout):
    _ok(checkout.run("run-editor.sh"))
    with open(checkout.root / "pyproject.toml", "a") as f:
        f.write("# changed\n")
    checkout.calls()
    offline = _ok(checkout.run("run-editor.sh", "--version", FAKE_PIP_FAIL="1"))
    assert "first time" not in offline.stderr
    assert "Updating the environment failed" in offline.stderr
    assert "ran -m editor --version" in offline.stdout
    checkout.calls()
    _ok(checkout.run("run-editor.sh"))  # the next run tries the update again
    assert any(c.startswith("pip install") for c in checkout.calls())


@needs_bash
def test_a_symlinked_launcher_finds_the_checkout(checkout):
    link = checkout.tmp / "bin" / "atelier-editor"
    link.parent.mkdir()
    link.symlink_to(checkout.root / "scripts" / "run-editor.sh")
    proc = _ok(checkout.run(link, "--version"))
    assert "ran -m editor --version" in proc.stdout


@needs_bash
def test_run_tests_hides_gpus_even_when_the_caller_chose_one(checkout):
    proc = _ok(checkout.run("run-tests.sh", "-q", CUDA_VISIBLE_DEVICES="0"))
    assert "ruff check editor tests benchmarks" in proc.stdout
    assert "run -m pytest -q CUDA_VISIBLE_DEVICES='' ATELIER_TEST_GPU=None" in checkout.calls()


@needs_bash
def test_gpu_checks_runs_every_step_in_the_venv_and_fails_when_one_fails(checkout):
    bin_dir = checkout.tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA-SMI (fake)'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    caller = checkout.tmp / "caller"
    caller.mkdir()
    proc = checkout.run("gpu-checks.sh", "out", cwd=caller, FAKE_FAIL="relevance.py",
                        CUDA_VISIBLE_DEVICES="", PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    summary = proc.stdout.split("=== summary")[-1].splitlines()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for step in ("gpu", "cuda", "cuda-tests", "synthesis", "latency"):
        assert f"ok      {step}" in summary, proc.stdout + proc.stderr
    assert "FAILED  relevance (exit 3)" in summary
    # the CUDA tests see the GPU: opted in, and an empty CUDA_VISIBLE_DEVICES is dropped
    tests = [c for c in checkout.calls() if "-m pytest" in c]
    assert tests and tests[0].endswith("CUDA_VISIBLE_DEVICES=None ATELIER_TEST_GPU='1'")
    # a relative OUT_DIR is the caller's
    assert (caller / "out" / "relevance.log").is_file()
    assert not (checkout.root / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="its GPU test would run")
@pytest.mark.parametrize("opt_in, code", [(None, 0), ("1", 1)])
def test_a_skipped_gpu_test_fails_the_gpu_checks(opt_in, code):
    # gpu-checks.sh printed "ok cuda-tests" where every CUDA test had been skipped
    env = {k: v for k, v in os.environ.items() if k != "ATELIER_TEST_GPU"}
    if opt_in:
        env["ATELIER_TEST_GPU"] = opt_in
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-m", "gpu", "tests/test_generator.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert ("did not run under ATELIER_TEST_GPU=1" in proc.stdout) == bool(code)


@pytest.mark.parametrize("opt_in, hidden", [(None, ""), ("1", None)])
def test_conftest_hides_gpus_unless_asked(monkeypatch, opt_in, hidden):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    if opt_in is None:
        monkeypatch.delenv("ATELIER_TEST_GPU", raising=False)
    else:
        monkeypatch.setenv("ATELIER_TEST_GPU", opt_in)
    runpy.run_path(str(ROOT / "tests" / "conftest.py"))
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == hidden


def test_the_packaged_icon_is_the_editors_icon():
    icon = ROOT / "packaging" / "latent-atelier.svg"
    assert icon.is_file(), f"{icon} -> {os.readlink(icon) if icon.is_symlink() else '?'}"
    assert icon.read_bytes() == (ROOT / "editor/resources/icons/latent-atelier.svg").read_bytes()


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_a_linked_venv_is_ignored_by_git(tmp_path):
    # the scripts use a .venv that is a link (to another checkout's); .gitignore's ".venv/"
    # matches folders only, so git status listed the link and `git add -A` committed it
    repo = tmp_path / "checkout"
    repo.mkdir()
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    (tmp_path / "shared-venv").mkdir()
    (repo / ".venv").symlink_to(tmp_path / "shared-venv")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"],
                            capture_output=True, text=True, check=True).stdout
    assert ".venv" not in status, status
    (repo / ".venv").unlink()
    (repo / ".venv").mkdir()  # and the usual folder still
    (repo / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"],
                            capture_output=True, text=True, check=True).stdout
    assert ".venv" not in status, status
