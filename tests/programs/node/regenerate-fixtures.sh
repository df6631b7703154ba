#!/usr/bin/env bash
# Regenerates the committed V8 fixtures under tests/fixtures/v8/ and DevTools' reference numbers
# for them. Needs node (18+) and `npm ci` in this directory (installs heap-snapshot-toolkit, which
# bundles DevTools' own HeapSnapshot.ts analysis).
#   tests/programs/node/regenerate-fixtures.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../fixtures/v8"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
[ -d "$here/node_modules/heap-snapshot-toolkit" ] || (cd "$here" && npm ci --no-audit --no-fund)

node "$here/handmade.mjs" "$out/handmade.heapsnapshot"
node "$here/devtools-summary.mjs" "$out/handmade.heapsnapshot" > "$out/handmade.devtools.json"
node "$here/shapes.js" "$tmp/shapes.heapsnapshot"
node "$here/leak-emitter.js" "$tmp/e1.heapsnapshot" "$tmp/e2.heapsnapshot" "$tmp/emitter-final.heapsnapshot"
for name in shapes emitter-final; do
  gzip -9 -n -c "$tmp/$name.heapsnapshot" > "$out/$name.heapsnapshot.gz"
  node "$here/devtools-summary.mjs" "$out/$name.heapsnapshot.gz" > "$out/$name.devtools.json"
done
node --version > "$out/NODE_VERSION"
echo "wrote $(ls "$out")"
