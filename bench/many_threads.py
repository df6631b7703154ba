#!/usr/bin/env python3
"""Many concurrent threads: `leaksift record` vs heaptrack as the same allocations are spread
over more threads running at once.

Builds bench/many_threads.c (TOTAL malloc/free pairs, TOTAL / C in each of C threads started
together), builds leaksift in release mode, then for each thread count C times the program plain,
under `leaksift record` and under `heaptrack` (when installed), and prints medians (wall and CPU),
record's ratio to heaptrack and to record's own time at the smallest C, and the allocation and
free counts of the last trace (they must not depend on C: TOTAL + one per thread each, whatever
the timing).

Goal: per-thread buffers make the cost per event independent of the thread count, so record's
time at 400 threads stays close to its time at 8 (heaptrack, one global lock, is flat too). Before
the fix this measures, 200 threads took 36x as long as 8 (producers polling a full queue in 200 µs
sleeps, and a writer that re-sorted its pending events after every buffer; docs/ARCHITECTURE.md).

Usage: bench/many_threads.py [--threads 8,100,200,400] [--pairs N] [--runs N] [--heaptrack-runs N]
Needs: gcc, cargo; heaptrack optional. Uses $CARGO_TARGET_DIR if set (else <repo>/target), and
passes $LEAKSIFT_PRELOAD on (to time another tracer build).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from timing import interleaved_medians, remove, run_timed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="8,100,200,400", help="comma-separated thread counts")
    parser.add_argument("--pairs", type=int, default=2_000_000, help="malloc/free pairs in all")
    parser.add_argument("--runs", type=int, default=3, help="runs per plain/record measurement (median)")
    parser.add_argument("--heaptrack-runs", type=int, default=1)
    args = parser.parse_args()
    counts = [int(c) for c in args.threads.split(",")]

    for tool in ("gcc", "cargo"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")
    heaptrack = shutil.which("heaptrack") is not None and args.heaptrack_runs > 0
    if not heaptrack:
        print("heaptrack not installed (or --heaptrack-runs 0): timing leaksift alone", file=sys.stderr)

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    print("building leaksift (release)...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "leaksift", "-p", "leaksift-preload"], cwd=REPO, check=True)
    leaksift = os.path.join(target, "release", "leaksift")

    work = tempfile.mkdtemp(prefix="leaksift-bench-")
    exe = os.path.join(work, "many_threads")
    subprocess.run(["gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-pthread", "-o", exe,
                    os.path.join(REPO, "bench", "many_threads.c")], check=True)
    trace = os.path.join(work, "trace.lks")
    heaptrack_out = os.path.join(work, "heaptrack")

    def clean_heaptrack():
        for ext in (".zst", ".gz"):
            remove(heaptrack_out + ext)

    rows = []
    for count in counts:
        print(f"{count} threads...", file=sys.stderr)
        command = [exe, str(count), str(args.pairs)]
        jobs = {
            "plain": (command, args.runs, None, (0,)),
            "record": ([leaksift, "record", "-o", trace, "--"] + command, args.runs, None, (0,)),
        }
        if heaptrack:
            jobs["heaptrack"] = (["heaptrack", "-o", heaptrack_out] + command, args.heaptrack_runs, clean_heaptrack, (0,))
        medians = interleaved_medians(jobs)
        clean_heaptrack()
        report = subprocess.run([leaksift, "report", "-q", "--json", trace], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        summary = json.loads(report.stdout)
        rows.append((count, medians, summary["allocations"], summary["frees"]))

    print(f"\n{args.pairs} malloc/free pairs spread over C threads; medians of {args.runs} interleaved runs "
          f"({args.heaptrack_runs if heaptrack else 0} for heaptrack); load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores. CPU = user + sys of the whole process tree.\n")
    print(f"{'threads':>7} {'':>5} {'plain':>7} {'record':>7} {'heaptrack':>9} {'rec/ht':>7} "
          f"{'rec/rec@' + str(counts[0]):>10} {'allocs':>9} {'frees':>9}")
    base = rows[0][1]["record"]
    for count, medians, allocations, frees in rows:
        for kind, i in (("wall", 0), ("cpu", 1)):
            record = medians["record"][i]
            ht = medians.get("heaptrack")
            ht_cells = f"{ht[i]:8.2f}s {record / ht[i]:6.2f}x" if ht else f"{'-':>9} {'-':>7}"
            counts_cells = f"{allocations:>9} {frees:>9}" if i == 0 else ""
            print(f"{count if i == 0 else '':>7} {kind:>5} {medians['plain'][i]:6.2f}s {record:6.2f}s "
                  f"{ht_cells} {record / base[i]:9.2f}x {counts_cells}")
    print(f"\ngoal: rec/rec@{counts[0]} close to 1 at every thread count (cost per event independent of "
          "concurrency); allocs = pairs + one or so per thread, frees = pairs + thread stacks freed, "
          "at every count")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
