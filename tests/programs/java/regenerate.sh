#!/bin/sh
# Regenerates the committed HPROF fixtures in tests/fixtures/hprof/ from the Java programs here.
# Needs a JDK (javac, java, jcmd); fixtures are gzip-compressed to stay small.
#   tests/programs/java/regenerate.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../fixtures/hprof"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
javac -d "$work/classes" "$here"/*.java
run() { java -Xmx64m -XX:+UseSerialGC -cp "$work/classes" "$@"; }

# A static-collection leak: 3000 sessions of ~1 KB in a static ArrayList (MXBean dump, gzip -9).
run StaticLeak "$work/static_leak.hprof" 3000
gzip -9 -n -c "$work/static_leak.hprof" > "$out/static_leak.hprof.gz"

# A listener-registry leak: 1500 widgets kept by their listeners (jcmd -gz: multi-member gzip).
run ListenerLeak "$work/listener_leak.hprof.gz" 1500
cp "$work/listener_leak.hprof.gz" "$out/listener_leak.hprof.gz"
chmod 644 "$out"/*.gz

# Garbage: 200 kept objects and 1000 dropped ones pointing at them, dumped without a GC first.
run Garbage "$work/garbage.hprof" 200 1000
gzip -9 -n -c "$work/garbage.hprof" > "$out/garbage.hprof.gz"

# The hand-checked shape for dominators, weak referents and instance counts.
run Shape "$work/shape.hprof"
gzip -9 -n -c "$work/shape.hprof" > "$out/shape.hprof.gz"

ls -l "$out"
