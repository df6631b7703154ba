#!/bin/sh
# Benchmark (not a test): `leaksift diff` of two traces with many distinct call stacks, against
# `leaksift report` of one of them and, when installed, `heaptrack_print --diff` of the same two
# runs recorded by heaptrack. bench/diff_stacks.c allocates once from each of N distinct stacks
# (a recursion choosing between two call sites at each level); trace A has N stacks, trace B N
# others (no site in common: every site changes), and `diff A A` matches every site.
#
#   bench/diff_stacks.sh [STACKS (default 262144)] [RUNS (default 1)]
#
# Prints wall time and peak RSS (`/usr/bin/time`, median over RUNS) of each. Every command runs
# under `ulimit -v` of LIMIT_KB (default 6000000, 6 GB) so that a regression cannot take a
# shared machine's memory; a command that runs out prints "failed". No issue sets a goal: `diff`
# should need about what `report` needs for each of its two traces (docs/ARCHITECTURE.md,
# leaksift-native, quotes the figures).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
stacks=${1:-262144}
runs=${2:-1}
limit_kb=${LIMIT_KB:-6000000}
work="$root/bench/out/diff_stacks"
mkdir -p "$work"
# Enough levels for 2 × STACKS distinct stacks, so that B's are none of A's.
depth=1
while [ $((1 << depth)) -lt $((2 * stacks)) ]; do depth=$((depth + 1)); done
gcc -O0 -g -fno-omit-frame-pointer -o "$work/diff_stacks" "$root/bench/diff_stacks.c"
(cd "$root" && CARGO_TARGET_DIR="$target" cargo build --quiet --release -p leaksift -p leaksift-preload)
leaksift="$target/release/leaksift"
prog="$work/diff_stacks"

a="$work/a$stacks.lks"
b="$work/b$stacks.lks"
"$leaksift" record -o "$a" -- "$prog" "$stacks" "$depth" 100 2>/dev/null
"$leaksift" record -o "$b" -- "$prog" "$stacks" "$depth" 100 "$stacks" 2>/dev/null

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# "SECONDS KB" of one run, or "failed".
measure() {
    (ulimit -v "$limit_kb"; /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>&1) \
        && cat "$work/time" || echo failed
}
row() {
    name=$1
    shift
    i=0
    : >"$work/runs"
    while [ $i -lt "$runs" ]; do measure "$@" >>"$work/runs"; i=$((i + 1)); done
    if grep -q failed "$work/runs"; then
        printf '%-28s failed (ulimit -v %s KB)\n' "$name" "$limit_kb"
    else
        seconds=$(cut -d' ' -f1 "$work/runs" | median)
        kb=$(cut -d' ' -f2 "$work/runs" | median)
        printf '%-28s %8s s %10s MB\n' "$name" "$seconds" "$((kb / 1024))"
    fi
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; $stacks distinct stacks" \
    "per trace ($depth levels), traces of $(wc -c <"$a") and $(wc -c <"$b") bytes; medians of $runs runs"
echo "$("$leaksift" diff -q "$a" "$b" | head -1)"
row "leaksift report A" "$leaksift" report -q "$a"
row "leaksift report B" "$leaksift" report -q "$b"
row "leaksift diff A B" "$leaksift" diff -q "$a" "$b"
row "leaksift diff A A" "$leaksift" diff -q "$a" "$a"
row "leaksift diff --json A B" "$leaksift" diff -q --json "$a" "$b"
if command -v heaptrack >/dev/null && command -v heaptrack_print >/dev/null; then
    rm -f "$work"/ha.* "$work"/hb.*
    heaptrack -o "$work/ha" "$prog" "$stacks" "$depth" 100 >/dev/null 2>&1
    heaptrack -o "$work/hb" "$prog" "$stacks" "$depth" 100 "$stacks" >/dev/null 2>&1
    ha=$(ls "$work"/ha.*)
    hb=$(ls "$work"/hb.*)
    row "heaptrack_print A" heaptrack_print "$ha"
    row "heaptrack_print --diff A B" heaptrack_print -f "$hb" -d "$ha"
else
    echo "heaptrack not installed: no comparison"
fi
