#!/bin/sh
# Benchmark on a real application's heap rather than bench/hprof_heap.java's synthetic lists: the
# JDK's own jshell (javac, JDI, its class index: about 0.5 M objects of HashMaps, Strings and
# arrays, 40-50 MB), dumped with `jcmd GC.heap_dump` a few seconds after it starts, then timed
# like the synthetic dump by bench/hprof_heap.sh (leaksift heap against hprof-slurp).
#
#   bench/hprof_real.sh [RUNS (default 5)]
#
# Needs a JDK with jshell and jcmd. The dump is kept in $CARGO_TARGET_DIR/bench-hprof/jshell.hprof;
# delete it to take a new one.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
runs=${1:-5}
dump="$target/bench-hprof/jshell.hprof"
mkdir -p "$target/bench-hprof"
if [ ! -s "$dump" ]; then
    echo "starting jshell and dumping its heap..." >&2
    # jshell reads its input from the pipe and ends when the pipe closes after the dump.
    fifo="$target/bench-hprof/jshell.in"
    rm -f "$fifo"
    mkfifo "$fifo"
    # The launcher runs the tool's JVM in its own process (the agent that runs snippets is
    # another one).
    jshell -q < "$fifo" > /dev/null 2>&1 &
    pid=$!
    exec 3> "$fifo"
    sleep 8
    jcmd "$pid" GC.heap_dump "$dump" > /dev/null
    exec 3>&-
    rm -f "$fifo"
    wait
fi
DUMP="$dump" exec sh "$root/bench/hprof_heap.sh" 0 "$runs"
