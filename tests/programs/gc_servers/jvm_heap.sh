#!/bin/sh
# `check --sample-cmd` for a JVM server: runs a full GC in the JVM whose PID is in
# $LEAKSIFT_SERVER_PID (set by check), then prints the heap it still uses, in KiB, summed over
# the heap lines of `jcmd GC.heap_info` ("garbage-first heap ... used 1217K" for G1; the young
# and old generations for Parallel and Serial; Metaspace is not the heap and is left out).
# Needs a JDK's jcmd and the same user as the JVM.
set -eu
jcmd "$LEAKSIFT_SERVER_PID" GC.run >/dev/null
jcmd "$LEAKSIFT_SERVER_PID" GC.heap_info | awk '
    !/Metaspace|class space/ && match($0, /used [0-9]+K/) { kib += substr($0, RSTART + 5, RLENGTH - 6); found = 1 }
    END { if (!found) exit 1; print kib " KiB" }'
