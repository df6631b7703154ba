#!/usr/bin/env bash
# Regenerates the committed Chromium fixture tests/fixtures/v8/chrome-detached.heapsnapshot.gz and
# DevTools' reference numbers for it (chrome-detached.devtools.json).
# Needs Debian's chromium (/usr/bin/chromium, or $CHROMIUM), node 18+ and npm; playwright-core is
# installed into a temporary directory (it only drives the browser over the DevTools protocol).
#   tests/programs/chrome/regenerate.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../fixtures/v8"
node_dir="$here/../node"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y > /dev/null && npm install --no-audit --no-fund --silent playwright-core@1)
cp "$here/snapshot.mjs" "$here/detached-dom.html" "$tmp/"
[ -d "$node_dir/node_modules/heap-snapshot-toolkit" ] || (cd "$node_dir" && npm ci --no-audit --no-fund)
version="$(node "$tmp/snapshot.mjs" "$tmp/chrome-detached.heapsnapshot")"
gzip -9 -n -c "$tmp/chrome-detached.heapsnapshot" > "$out/chrome-detached.heapsnapshot.gz"
node "$node_dir/devtools-summary.mjs" "$out/chrome-detached.heapsnapshot.gz" > "$out/chrome-detached.devtools.json"
echo "$version" > "$out/CHROME_VERSION"
echo "wrote chrome-detached.heapsnapshot.gz ($version)"
