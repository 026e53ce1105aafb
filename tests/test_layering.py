"""The architecture stays as designed: ui -> engine -> methods -> core, Qt only at the top."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules_loaded_by(import_stmt: str) -> set[str]:
    code = f"import sys; {import_stmt}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return set(out.stdout.split())


@pytest.mark.parametrize("package", ["editor.core", "editor.methods", "editor.toyfaces"])
def test_model_layers_load_no_qt(package):
    mods = _modules_loaded_by(f"import {package}; import pkgutil, importlib; "
                              f"[importlib.import_module(m.name) for m in "
                              f"pkgutil.walk_packages({package}.__path__, '{package}.')]")
    assert not any(m.startswith("PySide6") for m in mods)


def test_engine_uses_qtcore_only():
    mods = _modules_loaded_by("import editor.engine, pkgutil, importlib; "
                              "[importlib.import_module(m.name) for m in "
                              "pkgutil.walk_packages(editor.engine.__path__, 'editor.engine.')]")
    assert "PySide6.QtWidgets" not in mods
    assert "PySide6.QtGui" not in mods


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports is not installed in this environment (pip install -e .[dev])")
    result = subprocess.run([exe, "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
