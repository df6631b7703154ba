#!/bin/sh
# Benchmark: the exit scan on a heap of millions of small blocks. `leaksift record` (which scans
# at exit) and `valgrind --leak-check=full` time bench/exit_scan.c, a 48-byte-node list cut in
# two, of which the program keeps no pointer: 2 blocks definitely lost, the rest indirectly lost.
# Both summaries are printed. With 1,000 or 100,000 nodes both give exactly those classes; from
# 400,000 nodes on, valgrind reports part of the list as still reachable (and, at 2 M, possibly
# lost): some word in the memory it scans points into the list (which one was not found out).
# leaksift keeps giving the classes above.
#
#   bench/exit_scan.sh [NODES (default 2000000)] [RUNS (default 5)]
#
# Prints the median wall time of the plain program, of `record` and of valgrind (when
# installed), and the ratio. No issue sets a goal for it; docs/ARCHITECTURE.md quotes it.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
nodes=${1:-2000000}
runs=${2:-5}
work="$root/bench/out/exit_scan"
mkdir -p "$work"
gcc -O1 -o "$work/exit_scan" "$root/bench/exit_scan.c"
(cd "$root" && CARGO_TARGET_DIR="$target" cargo build --quiet --release -p leaksift -p leaksift-preload)
leaksift="$target/release/leaksift"

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
timed() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }

plain=$(i=0; while [ $i -lt "$runs" ]; do timed "$work/exit_scan" "$nodes"; i=$((i + 1)); done | median)
record=$(i=0; while [ $i -lt "$runs" ]; do
    timed "$leaksift" record -o "$work/trace.lks" -- "$work/exit_scan" "$nodes"; i=$((i + 1))
done | median)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; $nodes nodes, medians of $runs runs"
echo "plain                 ${plain} s"
echo "leaksift record       ${record} s"
"$leaksift" report -q "$work/trace.lks" | grep -A5 "LEAK SUMMARY"
if command -v valgrind >/dev/null; then
    valgrind=$(i=0; while [ $i -lt "$runs" ]; do
        timed valgrind --leak-check=full --run-libc-freeres=no "$work/exit_scan" "$nodes"; i=$((i + 1))
    done | median)
    echo "valgrind memcheck     ${valgrind} s"
    valgrind --leak-check=full --run-libc-freeres=no "$work/exit_scan" "$nodes" 2>&1 >/dev/null | grep -A4 "LEAK SUMMARY"
    echo "ratio record/valgrind: $(echo "$record $valgrind" | awk '{printf "%.2fx", $1 / $2}')"
else
    echo "valgrind not installed: no comparison"
fi
