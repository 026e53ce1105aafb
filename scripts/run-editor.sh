#!/usr/bin/env bash
# Create the environment if missing, then open the editor on the bundled demo model.
set -euo pipefail
# The script's real path: a symlinked launcher (~/bin/atelier-editor) still finds the checkout.
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
bash "$ROOT/scripts/ensure-env.sh"
exec "$ROOT/.venv/bin/atelier" "$@"
