"""What an installed wheel carries: the demo world must ship inside the package, or an
installed program has no models (a wheel of the project used to hold code only)."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

import editor
from editor.core.paths import DEMO_MODELS_DIR, RESOURCES_DIR
from editor.engine.models import DEMO_GENERATOR
from editor.toyfaces.evaluator import DEFAULT_PATH as EVALUATOR
from editor.ui.app import ICON

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(editor.__file__).resolve().parent


def _package_data(package: str) -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["package-data"].get(package, [])


def test_bundled_files_live_inside_the_package():
    for path in (RESOURCES_DIR, DEMO_MODELS_DIR, DEMO_GENERATOR, EVALUATOR, ICON):
        assert path.resolve().is_relative_to(PACKAGE), path
        assert path.exists(), path


def test_the_wheel_takes_every_bundled_file():
    bundled = {p for p in RESOURCES_DIR.rglob("*") if p.is_file()}
    assert any(p.suffix == ".safetensors" for p in bundled)
    matched = {p for pattern in _package_data("editor") for p in PACKAGE.glob(pattern)
               if p.is_file()}
    assert bundled <= matched, sorted(str(p.relative_to(PACKAGE)) for p in bundled - matched)


def test_the_desktop_entry_matches_the_window_and_opens_files_in_it():
    # X11 docks group a window with its launcher by WM_CLASS, whose class Qt sets to the
    # application name ("Latent Atelier", seen with xprop under Xvfb); the entry said
    # "latent-atelier", so the running editor showed as a second, icon-less application.
    from editor.ui.app import init_application

    entry = dict(line.split("=", 1) for line in
                 (ROOT / "packaging" / "latent-atelier.desktop").read_text().splitlines()
                 if "=" in line)
    assert entry["StartupWMClass"] == init_application().applicationName()
    assert entry["Exec"] == "atelier gui %F"  # "atelier FILE" was refused by argparse
    assert (ROOT / "packaging" / "latent-atelier.svg").resolve() == ICON.resolve()


def test_the_wheel_carries_the_mit_licence():
    # pyproject.toml declared MIT, but there was no licence text to ship with it
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Latent Atelier developers" in text
    # setuptools copies what license-files matches into the wheel's .dist-info/licenses
    # (checked with `pip wheel`); without the key, PEP 639's default globs
    patterns = project.get("license-files", ["LICEN[CS]E*", "COPYING*", "NOTICE*", "AUTHORS*"])
    assert ROOT / "LICENSE" in {p for pattern in patterns for p in ROOT.glob(pattern)}


@pytest.mark.skipif(not shutil.which("desktop-file-validate"),
                    reason="needs desktop-file-validate (desktop-file-utils)")
def test_the_desktop_entry_passes_desktop_file_validate():
    # Version=1.5 is "not a known version" to desktop-file-utils 0.26 (Debian 12, Ubuntu
    # 22.04), an error; the entry uses no key newer than 1.4 (1.5 added SingleMainWindow)
    proc = subprocess.run(["desktop-file-validate",
                           str(ROOT / "packaging" / "latent-atelier.desktop")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_the_version_is_the_same_everywhere_it_is_said():
    # `atelier --version`, Help ▸ About and an export's Software tag say editor.__version__;
    # the wheel's metadata says pyproject.toml's: two places to keep equal
    from editor.core.image_io import SOFTWARE

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert editor.__version__ == project["version"]
    assert SOFTWARE == f"Latent Atelier {project['version']}"
