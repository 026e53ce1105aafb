#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the CUDA tests and the GPU numbers, in one go.
#
#   bash scripts/gpu-checks.sh [OUT_DIR]      (default OUT_DIR: gpu-checks-out)
#
# Runs with $PYTHON (default: .venv/bin/python when it exists, else python3), which must
# import torch with CUDA, open_clip, pytest and PySide6's QtCore. Each step writes
# OUT_DIR/<step>.log and a failing step does not stop the ones after it; the summary at
# the end gives every step's exit status. Not yet run on a GPU: the step sizes are meant
# to fit a few minutes of one.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${1:-gpu-checks-out}"
mkdir -p "$OUT"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1 QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
summary=()

step() {  # step NAME COMMAND...: run it, keep its output, remember its exit status
  local name="$1"; shift
  echo "=== $name: $*"
  "$@" 2>&1 | tee "$OUT/$name.log"
  local rc="${PIPESTATUS[0]}"
  summary+=("$name: exit $rc")
}

step gpu nvidia-smi
step cuda-tests "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu \
  tests/test_generator.py tests/test_clip_model.py
# synthesis of the 1024 config-f architecture, full and 256 px preview
step synthesis "$PYTHON" benchmarks/synthesis.py --device cuda --repeats 30
# channel relevance, official loop shape against ours, and the full precompute estimate
step relevance "$PYTHON" benchmarks/relevance.py --ffhq --device cuda --batch-size 16 \
  --n-images 4 --every 2 --repeats 3
# slider-to-image latency through the engine: demo pack, and 1024 (preview and full)
step latency "$PYTHON" -m benchmarks.latency --device cuda --ffhq-events 120

echo
echo "=== summary (logs in $OUT)"
printf '%s\n' "${summary[@]}"
