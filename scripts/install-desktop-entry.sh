#!/usr/bin/env bash
# Put Latent Atelier in this user's application menu (and in "Open with" for pictures):
# packaging/latent-atelier.desktop, its Exec naming this checkout's .venv/bin/atelier by its
# absolute path (a menu does not search .venv/bin, and with Terminal=false a launcher whose
# program is not found fails without a word), and the icon. Makes .venv first if needed.
# Run it again after moving the checkout; remove with the two paths it prints.
set -euo pipefail
# The script's real path: a symlinked launcher still finds the checkout.
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
PROGRAM="$ROOT/.venv/bin/atelier"
case "$PROGRAM" in
  *$'\n'*) echo "The checkout's path has a line break, which a .desktop file cannot hold." >&2
           exit 1 ;;
  *%*) echo "Note: the checkout's path has a %. The entry writes it as the Desktop Entry spec" \
            "asks (%%), but GLib's launcher (GNOME's menu, gio launch) does not start such a" \
            "program: move the checkout to a path without % if the menu entry does nothing." >&2 ;;
esac
bash "$ROOT/scripts/ensure-env.sh"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
ENTRY="$DATA/applications/latent-atelier.desktop"
ICON="$DATA/icons/hicolor/scalable/apps/latent-atelier.svg"

# Exec quoting (Desktop Entry spec): the path in double quotes with \ " ` $ escaped by a
# backslash; then the file's own string escaping doubles every backslash; % is doubled.
q="${PROGRAM//\\/\\\\}"
q="${q//\"/\\\"}"
q="${q//\`/\\\`}"
q="${q//\$/\\\$}"
q="\"$q\""
q="${q//\\/\\\\}"
q="${q//%/%%}"

mkdir -p "$(dirname "$ENTRY")" "$(dirname "$ICON")"
# awk reads the path from the environment: no escapes or sed delimiters to trip on
EXEC="$q" awk '/^Exec=/ { print "Exec=" ENVIRON["EXEC"] " gui %F"; next } { print }' \
  "$ROOT/packaging/latent-atelier.desktop" > "$ENTRY.tmp"
mv "$ENTRY.tmp" "$ENTRY"
cp "$ROOT/packaging/latent-atelier.svg" "$ICON"
# the "Open with" list for the entry's MimeType; menus pick up the entry without it
if command -v update-desktop-database >/dev/null; then
  update-desktop-database "$(dirname "$ENTRY")" 2>/dev/null || true
fi
echo "Installed $ENTRY (it starts $PROGRAM) and $ICON."
echo "After moving the checkout, run this script again."
