#!/usr/bin/env bash
# Create (or repair, or refresh) the project's virtual environment in .venv.
# Installs again when pyproject.toml or this script (its torch pins) changed since the last
# complete install, and makes .venv anew when the one there cannot be used.
set -euo pipefail
# The script's real path: a symlinked launcher still finds the checkout.
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
STAMP="$VENV/.atelier-installed"
# What gets installed is decided by pyproject.toml and by this script (the pins below).
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/ensure-env.sh" | sha256sum | cut -d' ' -f1)"
# Beside .venv, not in it: `venv --clear` would delete it from under a waiting run.
LOCK="$ROOT/.venv.lock"

# The stamp of the last complete install: that hash, then where the venv was made.
read_stamp() {
  HAVE="$(sed -n 1p "$STAMP" 2>/dev/null || true)"
  MADE_IN="$(sed -n 2p "$STAMP" 2>/dev/null || true)"
}
read_stamp

# Why the .venv there cannot be used; prints nothing when it can (or when there is none).
venv_problem() {
  [ -e "$VENV" ] || return 0
  local ver lib
  # the version, and the name of the venv's lib folder for it (python3.13t when free-threaded)
  lib="$("$VENV/bin/python" -c 'import sys, sysconfig
ver = "%d.%d" % sys.version_info[:2]
print(ver, "python" + ver + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""))' \
         2>/dev/null)" \
    || { echo "its Python is missing or does not run (system Python removed or changed?)"
         return 0; }
  ver="${lib%% *}"
  lib="${lib#* }"
  # (a .venv that is a link to the one it was made as is that venv, not a moved one)
  if [ -n "$MADE_IN" ] && [ "$(readlink -f "$MADE_IN")" != "$(readlink -f "$VENV")" ]; then
    # a venv cannot move: its programs (bin/atelier, bin/pip) still start the old path's python
    echo "the checkout moved (it was made in $MADE_IN)"
    return 0
  fi
  case "$ver" in
    [0-2].*|3.[0-9]|3.10) echo "it was made with Python $ver (3.11+ needed)" ;;
    *) if [ ! -d "$VENV/lib/$lib" ]; then
         # e.g. a distro upgrade swapped the interpreter under it (3.11 -> 3.12)
         echo "its Python is now $ver, not the one it was made with"
       elif [ "$HAVE" != "$WANT" ] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
         # pip is only needed (and only checked) when something is to be installed
         echo "it has no working pip (an earlier first run failed or was interrupted)"
       fi ;;
  esac
}

PROBLEM="$(venv_problem)"
if { [ ! -e "$VENV" ] || [ -n "$PROBLEM" ] || [ "$HAVE" != "$WANT" ]; } \
     && command -v flock >/dev/null; then
  # Work to do. Two first runs at once (run-editor.sh and run-tests.sh) would both make and
  # fill .venv, the second --clear wiping the first's install: one waits for the other
  # (the lock goes with this script's exit), then looks again at what is left to do.
  exec 9>"$LOCK"
  if ! flock -n 9; then
    echo "another setup of .venv is running; waiting…" >&2
    flock 9
  fi
  read_stamp
  PROBLEM="$(venv_problem)"
elif [ ! -e "$VENV" ] || [ -n "$PROBLEM" ] || [ "$HAVE" != "$WANT" ]; then
  echo "note: 'flock' is not installed (macOS: brew install flock), so nothing stops a" \
       "second run-*.sh from setting up .venv at the same time; start it after this one." >&2
fi
# A .venv that is a link (to another checkout's, say) is never set up through the link:
# `venv --clear` would empty the environment it points to, and an install would change it.
if [ -L "$VENV" ] && { [ ! -e "$VENV" ] || [ -n "$PROBLEM" ] || [ "$HAVE" != "$WANT" ]; }; then
  if [ ! -e "$VENV" ]; then WHY="it points to nothing"
  elif [ -n "$PROBLEM" ]; then WHY="$PROBLEM"
  else WHY="this checkout's pyproject.toml or scripts/ensure-env.sh differ from its install"
  fi
  echo "$VENV is a link to $(readlink "$VENV"), which this script does not set up through" \
       "the link ($WHY). Remove the link to make a .venv of this checkout's own." >&2
  exit 1
fi
if [ ! -e "$VENV" ] || [ -n "$PROBLEM" ]; then
  [ -z "$PROBLEM" ] || echo "Making $VENV anew: $PROBLEM." >&2
  # The base interpreter matters only here: a working .venv does not need $PYTHON.
  HINT="choose one with e.g. PYTHON=python3.11 bash scripts/run-editor.sh"
  if ! command -v "$PY" >/dev/null; then
    echo "Latent Atelier needs Python >= 3.11, and $PY was not found; $HINT." >&2
    exit 1
  fi
  if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "Latent Atelier needs Python >= 3.11 (found: $("$PY" --version 2>&1)); $HINT." >&2
    exit 1
  fi
  echo "Creating the environment in $VENV ..." >&2
  "$PY" -m venv --clear "$VENV"
  HAVE=""
fi

if [ "$HAVE" != "$WANT" ]; then
  if [ -n "$HAVE" ]; then
    echo "Updating the environment (pyproject.toml or scripts/ensure-env.sh changed) ..." >&2
  else
    echo "Installing Latent Atelier and its dependencies (first time: a few minutes) ..." >&2
  fi
  # pip's exit status is kept (pipefail); hidden are only this machine's noisy index
  # warnings and the banner setuptools shows at every editable install ("BuildBackendWarning:
  # Editable installation." and its box between two "!!" lines, then the line of source
  # Python's warning prints, indented); should a box not close, hiding stops after 30 lines.
  pipi() { "$VENV/bin/python" -m pip install --quiet "$@" 2>&1 | awk '
             /BuildBackendWarning: Editable installation\./ { box = 1; bangs = 0; n = 0; next }
             box == 1 { if ($0 ~ /^ *!! *$/ && ++bangs == 2) box = 2
                        if (++n < 30) next
                        box = 0 }
             box == 2 { box = 0; if ($0 ~ /^    /) next }
             /^WARNING: Location/ { next }
             { print }' >&2; }
  imports_ok() { "$VENV/bin/python" -c "import torch, open_clip, PySide6, editor"; }
  # Chained with && because set -e does not act inside an `if` condition.
  # torch/torchvision first and pinned to the tested versions (PyPI's default build).
  if pipi --upgrade pip && pipi "torch==2.14.1" "torchvision==0.29.1" \
       && pipi -e "${ROOT}[dev]" && imports_ok; then
    # only after a complete install: a failed one is tried again
    printf '%s\n%s\n' "$WANT" "$VENV" > "$STAMP"
  elif [ -n "$HAVE" ] && imports_ok 2>/dev/null; then
    echo "Updating the environment failed (see pip's messages above; offline?). Going on with" \
         "the previous installation, which may lack what the change needs; the next run" \
         "tries the update again." >&2
  else
    echo "Installation failed: see the pip messages above." >&2
    exit 1
  fi
fi
