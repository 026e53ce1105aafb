#!/usr/bin/env bash
# Create the environment if missing, then run every check: lint, then the test suite
# (which includes the import-linter layering contract, tests/test_layering.py).
set -euo pipefail
# The script's real path: a symlinked launcher still finds the checkout.
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
bash "$ROOT/scripts/ensure-env.sh"
cd "$ROOT"
export QT_QPA_PLATFORM=offscreen
# The suite runs on the CPU whatever the caller set; scripts/gpu-checks.sh runs the CUDA tests.
export CUDA_VISIBLE_DEVICES=""
echo "== ruff"
.venv/bin/ruff check editor tests benchmarks
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
