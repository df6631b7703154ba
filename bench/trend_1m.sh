#!/usr/bin/env bash
# Benchmark (not a test): `leaksift trend` on a 1,000,000-sample CSV (a leak under a sawtooth with
# noise). Goal: under 1 s, reading and parsing the file included.
#
#   bench/trend_1m.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p leaksift
leaksift="$CARGO_TARGET_DIR/release/leaksift"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

python3 - "$dir/series.csv" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    f.write("t,bytes\n")
    for i in range(1_000_000):
        t = i * 0.01
        b = 200e6 + 2000 * t + (i % 700) * 40e3 + random.uniform(-1e6, 1e6)
        f.write(f"{t:.2f},{int(b)}\n")
PY
echo "series: $(wc -l < "$dir/series.csv") lines, $(du -h "$dir/series.csv" | cut -f1)"

python3 - "$leaksift" "$dir/series.csv" "$runs" <<'PY'
import json, statistics, subprocess, sys, time
leaksift, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for _ in range(runs):
    start = time.monotonic()
    out = subprocess.run([leaksift, "trend", "--json", path], check=True,
                         capture_output=True, text=True).stdout
    times.append(time.monotonic() - start)
v = json.loads(out)
print(f"verdict {v['verdict']}, slope {v['slope_bytes_per_s']:.0f} B/s (true 2000 B/s), "
      f"{v['samples']} samples")
print(f"trend on 1M samples: median {statistics.median(times):.3f} s over {runs} runs "
      f"(min {min(times):.3f}, max {max(times):.3f}); goal < 1 s")
PY
