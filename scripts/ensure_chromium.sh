#!/usr/bin/env bash
# Install what the test suite needs from Debian when it is missing: Chromium (driven by
# Playwright at /usr/bin/chromium; Playwright cannot download its own browser here) and
# gettext (msgfmt, for compilemessages). Idempotent; a no-op in milliseconds when both exist.
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"

missing=()
[[ -x "$CHROMIUM" ]] || missing+=(chromium)
command -v msgfmt >/dev/null 2>&1 || missing+=(gettext)
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

apt_install ensure_chromium "${missing[@]}"

if [[ ! -x "$CHROMIUM" ]]; then
    echo "ensure_chromium: chromium installed but $CHROMIUM is missing" >&2
    exit 1
fi
echo "ensure_chromium: $("$CHROMIUM" --version 2>/dev/null || echo chromium) ready"
