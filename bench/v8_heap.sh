#!/usr/bin/env bash
# Benchmark: `leaksift heap` against `memlab analyze object-size` on a ~260 MB Node heap snapshot,
# plus leaksift alone on a ~1 GB snapshot. Prints wall time, peak RSS (/usr/bin/time -v) and ratios.
#   bench/v8_heap.sh            (snapshots and memlab are cached under bench/out/v8/)
# Needs: node 18+, npm, GNU time (/usr/bin/time), a release build (built here).
# Goals (2-core machine): >= 15x faster than memlab; peak RSS <= 1.5x the file size; 1 GB < 8 s.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$here/.."
out="$here/out/v8"
mkdir -p "$out"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
(cd "$repo" && cargo build --release -p leaksift --quiet)
leaksift="$CARGO_TARGET_DIR/release/leaksift"

snapshot() { # size_mb -> path (generated once)
  local file="$out/bench-$1mb.heapsnapshot"
  if [ ! -s "$file" ]; then
    echo "generating a ~$1 MB snapshot with node…" >&2
    node --max-old-space-size=30000 "$here/v8_heap.js" "$file.tmp" "$1" >&2
    mv "$file.tmp" "$file"
  fi
  echo "$file"
}

if [ ! -x "$out/memlab/node_modules/.bin/memlab" ]; then
  echo "installing memlab into $out/memlab (PUPPETEER_SKIP_DOWNLOAD=1)…" >&2
  mkdir -p "$out/memlab"
  (cd "$out/memlab" && PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-audit --no-fund --silent memlab >&2)
fi

# measure LABEL CMD… -> prints "LABEL seconds peak_kb" (median of runs for leaksift)
measure() {
  local label="$1"; shift
  local log="$out/time-$label.log"
  /usr/bin/time -v "$@" > /dev/null 2> "$log" || { echo "$label failed:"; tail -5 "$log"; exit 1; }
  local wall rss
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep "Maximum resident set size" "$log" | awk '{print $NF}')
  cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$log")
  echo "$label $wall $rss $cpu"
}

median_leaksift() { # file label runs
  local results=()
  for _ in $(seq "$3"); do results+=("$(measure "$2" "$leaksift" heap -q "$1")"); done
  printf '%s\n' "${results[@]}" | sort -k2 -n | sed -n "$(( ($3 + 1) / 2 ))p"
}

mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }

small="$(snapshot 260)"
small_bytes=$(stat -c %s "$small")
read -r _ ls_s ls_kb ls_cpu <<< "$(median_leaksift "$small" leaksift-260 5)"
read -r _ ml_s ml_kb ml_cpu <<< "$(measure memlab-260 node --max-old-space-size=30000 "$out/memlab/node_modules/.bin/memlab" analyze object-size --snapshot "$small")"
echo
echo "== ~260 MB snapshot: $small ($(mib "$small_bytes") MiB)"
printf '%-32s %8s s wall %8s s CPU  peak RSS %6s MiB\n' "leaksift heap (median of 5)" "$ls_s" "$ls_cpu" "$((ls_kb / 1024))"
printf '%-32s %8s s wall %8s s CPU  peak RSS %6s MiB\n' "memlab analyze object-size" "$ml_s" "$ml_cpu" "$((ml_kb / 1024))"
awk -v a="$ml_s" -v b="$ls_s" 'BEGIN { printf "speed-up vs memlab (wall): %.1fx (goal >= 15x)\n", a / b }'
awk -v a="$ml_cpu" -v b="$ls_cpu" 'BEGIN { printf "CPU time ratio vs memlab: %.1fx\n", a / b }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (wall times are noisy on a shared machine)"
awk -v r="$ls_kb" -v f="$small_bytes" 'BEGIN { printf "leaksift peak RSS / file size: %.2f (goal <= 1.5)\n", r * 1024 / f }'

if [ "${SKIP_1GB:-0}" != 1 ]; then
  big="$(snapshot 1024)"
  big_bytes=$(stat -c %s "$big")
  read -r _ big_s big_kb big_cpu <<< "$(median_leaksift "$big" leaksift-1g 3)"
  echo
  echo "== ~1 GB snapshot: $big ($(mib "$big_bytes") MiB)"
  printf '%-32s %8s s wall %8s s CPU  peak RSS %6s MiB\n' "leaksift heap (median of 3)" "$big_s" "$big_cpu" "$((big_kb / 1024))"
  awk -v s="$big_s" 'BEGIN { printf "1 GB goal (< 8 s): %s\n", (s < 8 ? "met" : "missed") }'
  awk -v r="$big_kb" -v f="$big_bytes" 'BEGIN { printf "leaksift peak RSS / file size: %.2f (goal <= 1.5)\n", r * 1024 / f }'
fi
