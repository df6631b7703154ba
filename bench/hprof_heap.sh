#!/bin/sh
# Benchmark: `leaksift heap` (full analysis: graph, dominators, retained sizes, suspects) against
# hprof-slurp (a streaming class histogram, shallow sizes only) on a ~800 MB HPROF dump of about
# 16 million small objects made by bench/hprof_heap.java.
#
#   bench/hprof_heap.sh [MILLIONS_OF_RECORDS (default 13)] [RUNS (default 3)]
#
# With DUMP=FILE, times the two tools on that dump instead of generating one (bench/hprof_real.sh
# uses it for a real application's heap).
#
# Needs a JDK (javac, java) and /usr/bin/time; installs hprof-slurp with `cargo install` into
# $CARGO_TARGET_DIR/bench-tools (not on PATH). Prints the median wall time and peak RSS of each
# tool, the ratio, and the goals: leaksift within 2x hprof-slurp's time, peak RSS <= 0.75x the
# dump size. Runs on a warm page cache (the dump is read once before timing); with COLD=1 (root
# only) the page cache is dropped before every run of either tool instead, as for a dump copied
# from another machine.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
millions=${1:-13}
runs=${2:-3}
work="$target/bench-hprof"
tools="$target/bench-tools"
dump="${DUMP:-$work/bench-${millions}m.hprof}"
mkdir -p "$work"

if [ ! -s "$dump" ]; then
    echo "generating $dump ($millions M records)..." >&2
    javac -d "$work/classes" "$root/bench/hprof_heap.java"
    java -Xmx6g -XX:+UseParallelGC -cp "$work/classes" BenchHeap "$dump" "$millions"
fi
if [ ! -x "$tools/bin/hprof-slurp" ]; then
    echo "installing hprof-slurp into $tools..." >&2
    cargo install --quiet --locked hprof-slurp --root "$tools"
fi
(cd "$root" && CARGO_TARGET_DIR="$target" cargo build --quiet --release -p leaksift)
leaksift="$target/release/leaksift"
slurp="$tools/bin/hprof-slurp"

# Before each timed run: nothing (warm cache), or drop the page cache (COLD=1).
prepare() {
    if [ "${COLD:-0}" = 1 ]; then
        sync
        echo 3 > /proc/sys/vm/drop_caches || { echo "COLD=1 needs root" >&2; exit 2; }
    fi
}
cat "$dump" > /dev/null
dump_bytes=$(stat -L -c %s "$dump")

# Runs both tools $runs times, alternating (a shared machine's load then hits both alike);
# leaves "seconds peak_kb" lines in $work/NAME.times.
# leaksift's phase lines ("hprof graph: 612 ms") of every run go to $work/leaksift.phases.
: > "$work/slurp.times"
: > "$work/leaksift.times"
: > "$work/leaksift.phases"
i=0
while [ "$i" -lt "$runs" ]; do
    prepare
    /usr/bin/time -f "%e %M" -a -o "$work/slurp.times" "$slurp" "$dump" > "$work/slurp.out" 2>&1
    prepare
    /usr/bin/time -f "%e %M" -a -o "$work/leaksift.times" \
        "$leaksift" heap --top 10 "$dump" > "$work/leaksift.out" 2> "$work/leaksift.err"
    grep -v '^leaksift' "$work/leaksift.err" >> "$work/leaksift.phases"
    i=$((i + 1))
done
# median FILE COLUMN
median() {
    cut -d' ' -f"$2" "$1" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
slurp_s=$(median "$work/slurp.times" 1)
slurp_kb=$(median "$work/slurp.times" 2)
ls_s=$(median "$work/leaksift.times" 1)
ls_kb=$(median "$work/leaksift.times" 2)

echo "dump: $dump ($((dump_bytes / 1048576)) MiB), $(head -1 "$work/leaksift.out")"
echo "leaksift heap phases (median of $runs runs):"
# Each phase's times in ms (lines "NAME: 612 ms" or "NAME: 1.3 s"), median per phase, in
# the order the phases ran.
awk -F': ' '/: [0-9.]+ (ms|s)$/ {
    split($NF, v, " ")
    ms = v[2] == "s" ? v[1] * 1000 : v[1]
    if (!($1 in n)) order[++phases] = $1
    t[$1, ++n[$1]] = ms
} END {
    for (p = 1; p <= phases; p++) {
        name = order[p]
        for (i = 1; i <= n[name]; i++) a[i] = t[name, i]
        for (i = 2; i <= n[name]; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
            x = a[j]; a[j] = a[j - 1]; a[j - 1] = x
        }
        printf "  %-40s %6.0f ms\n", name, a[int((n[name] + 1) / 2)]
    }
}' "$work/leaksift.phases"
if [ -n "${DUMP:-}" ]; then
    echo "(the goals below are issue 5's, set for the ~800 MB synthetic dump; a small dump's peak RSS is mostly fixed costs)"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; page cache: $([ "${COLD:-0}" = 1 ] && echo "dropped before each run" || echo warm)"
awk -v runs="$runs" -v ss="$slurp_s" -v sk="$slurp_kb" -v ls="$ls_s" -v lk="$ls_kb" -v db="$dump_bytes" 'BEGIN {
    printf "median of %d runs      wall      peak RSS\n", runs
    printf "hprof-slurp          %6.2f s  %7.0f MiB\n", ss, sk / 1024
    printf "leaksift heap        %6.2f s  %7.0f MiB\n", ls, lk / 1024
    ratio = ls / ss
    rss = lk * 1024 / db
    printf "time ratio leaksift/hprof-slurp: %.2fx (goal <= 2x: %s)\n", ratio, ratio <= 2 ? "met" : "NOT met"
    printf "leaksift peak RSS / dump size:   %.2fx (goal <= 0.75x: %s)\n", rss, rss <= 0.75 ? "met" : "NOT met"
}'
