#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
STAMP="$VENV/.atelier-installed"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "Latent Atelier needs Python >= 3.11 (found: $("$PY" --version 2>&1))." >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating the environment in $VENV ..." >&2
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "Installing Latent Atelier and its dependencies (first time: a few minutes) ..." >&2
  # pip's exit status is kept (pipefail); only this machine's noisy index warnings are hidden.
  pipi() { "$VENV/bin/python" -m pip install --quiet "$@" 2>&1 \
             | { grep -v '^WARNING: Location' || true; } >&2; }
  pipi --upgrade pip
  # torch/torchvision first and pinned to the tested versions (PyPI's default build).
  pipi "torch==2.14.1" "torchvision==0.29.1"
  pipi -e "$ROOT[dev]"
  "$VENV/bin/python" -c "import torch, open_clip, PySide6, editor" \
    || { echo "Installation failed: see the pip messages above." >&2; exit 1; }
  echo "$WANT" > "$STAMP"
fi
