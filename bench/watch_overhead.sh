#!/usr/bin/env bash
# Benchmark (not a test): CPU cost of `leaksift watch` itself at --interval 10ms on a process with
# 1 GiB resident. Goal: under 1% of one core with the default signals (status, no smaps_rollup).
#
#   bench/watch_overhead.sh [SECONDS_PER_RUN] [RUNS]
#
# Builds the release binary, starts a 1 GiB process, runs `watch` RUNS times (default 3) for
# SECONDS_PER_RUN (default 20) with the default signals and once with --pss, and prints the CPU
# time leaksift used (user + sys, from getrusage of the child) as a percentage of one core.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
runs="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p leaksift
leaksift="$CARGO_TARGET_DIR/release/leaksift"

python3 - "$leaksift" "$seconds" "$runs" <<'PY'
import json, os, resource, statistics, subprocess, sys, time

leaksift, seconds, runs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
# A process with 1 GiB resident (every page written).
hog = subprocess.Popen([sys.executable, "-c",
    "import sys,time; b = bytearray(b'x') * (1 << 30); print('ready', flush=True); time.sleep(3600)"],
    stdout=subprocess.PIPE, text=True)
assert hog.stdout.readline().strip() == "ready"
status = open(f"/proc/{hog.pid}/status").read()
rss = next(l for l in status.splitlines() if l.startswith("VmRSS:"))
print(f"target: pid {hog.pid}, {rss.split(':')[1].strip()} resident")

def run(extra):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    out = subprocess.run([leaksift, "watch", "-q", "--json", "--interval", "10ms",
                          "--duration", f"{seconds}s", "--pid", str(hog.pid), *extra],
                         check=True, capture_output=True, text=True).stdout
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    samples = json.loads(out)["samples"]
    return 100.0 * cpu / wall, samples / wall

try:
    default = [run([]) for _ in range(runs)]
    pss = run(["--pss"])
finally:
    hog.kill()
    hog.wait()

cpu = statistics.median(c for c, _ in default)
rate = statistics.median(r for _, r in default)
print(f"default signals (/proc/PID/status): median {cpu:.2f}% of one core "
      f"at {rate:.0f} samples/s over {runs} runs of {seconds:.0f} s "
      f"(runs: {', '.join(f'{c:.2f}%' for c, _ in default)}); goal < 1%")
print(f"--pss (smaps_rollup, walks 1 GiB of page tables): {pss[0]:.2f}% of one core "
      f"at {pss[1]:.0f} samples/s")
PY
