#!/usr/bin/env bash
# WeasyPrint renders dunning letters to PDF through Pango: install it from Debian when the
# library is missing (`make run` and `make test`). A no-op in milliseconds when present.
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"

if /sbin/ldconfig -p 2>/dev/null | grep -q 'libpango-1.0.so.0' && /sbin/ldconfig -p | grep -q 'libpangoft2-1.0.so.0'; then
    exit 0
fi
apt_install ensure_pango libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core
