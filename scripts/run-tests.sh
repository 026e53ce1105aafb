#!/usr/bin/env bash
# Create the environment if missing, then run every check: lint, then the test suite
# (which includes the import-linter layering contract, tests/test_layering.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/ensure-env.sh"
cd "$ROOT"
export QT_QPA_PLATFORM=offscreen
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES-}"
echo "== ruff"
.venv/bin/ruff check editor tests benchmarks
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
