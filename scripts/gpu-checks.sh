#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the CUDA tests and the GPU numbers, in one go.
#
#   bash scripts/gpu-checks.sh [OUT_DIR]   (default: gpu-checks-out in the checkout)
#
# Runs in .venv, made or refreshed by ensure-env.sh like the other scripts ($PYTHON is only
# the interpreter a new .venv is made with). Each step writes OUT_DIR/<step>.log and a
# failing step does not stop the ones after it; the summary gives every step's result, and
# the exit status is 1 when any step failed. The step sizes are meant to fit a few minutes.
set -uo pipefail
# The script's real path: a symlinked launcher still finds the checkout.
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
# A relative OUT_DIR is the caller's: resolve it before the cd below.
OUT="${1:-$ROOT/gpu-checks-out}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)" || exit 1
bash "$ROOT/scripts/ensure-env.sh" || exit 1
cd "$ROOT" || exit 1
PY="$ROOT/.venv/bin/python"
# tests/conftest.py hides GPUs unless asked; an empty CUDA_VISIBLE_DEVICES would hide them too.
export ATELIER_TEST_GPU=1
if [[ "${CUDA_VISIBLE_DEVICES-unset}" == "" ]]; then
  echo "CUDA_VISIBLE_DEVICES is empty (no GPU visible): unset for these checks." >&2
  unset CUDA_VISIBLE_DEVICES
fi
export PYTHONUNBUFFERED=1 QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
summary=()
failed=0

step() {  # step NAME COMMAND...: run it, keep its output, remember whether it failed
  local name="$1"; shift
  echo "=== $name: $*"
  "$@" 2>&1 | tee "$OUT/$name.log"
  local rc="${PIPESTATUS[0]}"
  if [[ "$rc" == 0 ]]; then
    summary+=("ok      $name")
  else
    summary+=("FAILED  $name (exit $rc)")
    failed=1
  fi
}

step gpu nvidia-smi
# torch must see the GPU: without it the CUDA tests below would only be skipped
step cuda "$PY" -c 'import torch
assert torch.cuda.is_available(), "torch sees no CUDA device"
print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))'
step cuda-tests "$PY" -m pytest -q -p no:cacheprovider -m gpu \
  tests/test_generator.py tests/test_clip_model.py
# synthesis of the 1024 config-f architecture, full and 256 px preview
step synthesis "$PY" benchmarks/synthesis.py --device cuda --repeats 30
# channel relevance, official loop shape against ours, and the full precompute estimate
step relevance "$PY" benchmarks/relevance.py --ffhq --device cuda --batch-size 16 \
  --n-images 4 --every 2 --repeats 3
# slider-to-image latency through the engine: demo pack, and 1024 (preview and full)
step latency "$PY" -m benchmarks.latency --device cuda --ffhq-events 120
# a demo export replayed from its recipe on the GPU must give the same bytes (kernels that
# pick their algorithm per run would break "replays exactly on the same device")
step replay bash -c '"$1" -m editor edit --device cuda --seed 7 --target "face with sunglasses" \
  --alpha 3 --overwrite -o "$2/replay-a.png" && "$1" -m editor edit --device cuda --overwrite \
  --recipe "$2/replay-a.png" -o "$2/replay-b.png" && cmp "$2/replay-a.png" "$2/replay-b.png" \
  && echo "replayed on the GPU: identical"' _ "$PY" "$OUT"
# the demo world's training recipes on CUDA: a few steps each, into a scratch folder (the
# shipped models are not touched), to try the path before a long training
step train-cuda bash -c 'for recipe in "evaluator --dataset 64" "clip --dataset 64" generator; do
  "$1" -m editor.toyfaces.train $recipe --device cuda --steps 2 --batch 4 --tag gpu-check \
  --restart --force --out "$2/train-cuda" || exit 1; done' _ "$PY" "$OUT"

echo
echo "=== summary (logs in $OUT)"
printf '%s\n' "${summary[@]}"
exit "$failed"
