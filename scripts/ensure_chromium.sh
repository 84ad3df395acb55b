#!/usr/bin/env bash
# Install what the test suite needs from Debian when it is missing: Chromium (driven by
# Playwright at /usr/bin/chromium; Playwright cannot download its own browser here) and
# gettext (msgfmt, for compilemessages). Idempotent; a no-op in milliseconds when both exist.
set -euo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"

missing=()
[[ -x "$CHROMIUM" ]] || missing+=(chromium)
command -v msgfmt >/dev/null 2>&1 || missing+=(gettext)
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: missing ${missing[*]} and no apt-get to install it; install it yourself" \
         "(Chromium must be at $CHROMIUM, or set CHROMIUM_PATH)." >&2
    exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo -n)
    else
        echo "ensure_chromium: missing ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

echo "ensure_chromium: installing ${missing[*]} from Debian (apt-get)..."
export DEBIAN_FRONTEND=noninteractive
# Another apt/dpkg may hold the lock (unattended installs, a parallel setup): wait for it
# rather than fail.
apt_opts=(-q -o DPkg::Lock::Timeout=900 -o Acquire::Retries=3)
for attempt in 1 2 3; do
    if "${sudo[@]}" apt-get "${apt_opts[@]}" update; then
        break
    fi
    [[ $attempt -lt 3 ]] || { echo "ensure_chromium: apt-get update failed" >&2; exit 1; }
    sleep 10
done
"${sudo[@]}" apt-get "${apt_opts[@]}" install -y "${missing[@]}" </dev/null

if [[ ! -x "$CHROMIUM" ]]; then
    echo "ensure_chromium: chromium installed but $CHROMIUM is missing" >&2
    exit 1
fi
echo "ensure_chromium: $("$CHROMIUM" --version 2>/dev/null || echo chromium) ready"
