#!/usr/bin/env bash
# Create the environment if missing, then open the editor on the bundled demo model.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/ensure-env.sh"
exec "$ROOT/.venv/bin/atelier" "$@"
