#!/usr/bin/env bash
# Re-create static/vendor/ from pinned npm packages (no CDN at run time).
#
# Bootstrap and Bootstrap Icons come from the npm registry; htmx is not vendored here: it is
# served from django-htmx's own static files ({% htmx_script %}).
# The .map files are copied too: hashed static storage (whitenoise's manifest) follows the
# sourceMappingURL comments and fails when a map is missing.
set -euo pipefail

BOOTSTRAP_VERSION="5.3.8"
BOOTSTRAP_ICONS_VERSION="1.13.1"
CHARTJS_VERSION="4.6.1"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm pack --silent "bootstrap@${BOOTSTRAP_VERSION}" "bootstrap-icons@${BOOTSTRAP_ICONS_VERSION}" \
    "chart.js@${CHARTJS_VERSION}" >/dev/null
mkdir bootstrap bootstrap-icons chartjs
tar -xzf "bootstrap-${BOOTSTRAP_VERSION}.tgz" -C bootstrap --strip-components=1
tar -xzf "bootstrap-icons-${BOOTSTRAP_ICONS_VERSION}.tgz" -C bootstrap-icons --strip-components=1
tar -xzf "chart.js-${CHARTJS_VERSION}.tgz" -C chartjs --strip-components=1

rm -rf "$DEST/bootstrap" "$DEST/bootstrap-icons" "$DEST/chartjs"
mkdir -p "$DEST/bootstrap/css" "$DEST/bootstrap/js" "$DEST/bootstrap-icons/font/fonts" "$DEST/chartjs"

cp bootstrap/dist/css/bootstrap.min.css bootstrap/dist/css/bootstrap.min.css.map "$DEST/bootstrap/css/"
cp bootstrap/dist/js/bootstrap.bundle.min.js bootstrap/dist/js/bootstrap.bundle.min.js.map "$DEST/bootstrap/js/"
cp bootstrap/LICENSE "$DEST/bootstrap/LICENSE"

cp bootstrap-icons/font/bootstrap-icons.min.css "$DEST/bootstrap-icons/font/"
cp bootstrap-icons/font/fonts/bootstrap-icons.woff2 bootstrap-icons/font/fonts/bootstrap-icons.woff \
    "$DEST/bootstrap-icons/font/fonts/"
cp bootstrap-icons/LICENSE "$DEST/bootstrap-icons/LICENSE"

# Chart.js: the UMD build (a global `Chart`), for the dashboards' charts.
cp chartjs/dist/chart.umd.min.js chartjs/dist/chart.umd.min.js.map "$DEST/chartjs/"
cp chartjs/LICENSE.md "$DEST/chartjs/LICENSE.md"

cat > "$DEST/VERSIONS" <<VERSIONS
bootstrap ${BOOTSTRAP_VERSION}
bootstrap-icons ${BOOTSTRAP_ICONS_VERSION}
chart.js ${CHARTJS_VERSION}
VERSIONS
echo "static/vendor refreshed: bootstrap ${BOOTSTRAP_VERSION}, bootstrap-icons ${BOOTSTRAP_ICONS_VERSION}, chart.js ${CHARTJS_VERSION}"
