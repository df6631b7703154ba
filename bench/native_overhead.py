#!/usr/bin/env python3
"""Native tracing overhead: `leaksift record` vs heaptrack on an allocation-heavy C program.

Builds bench/native_overhead.c with and without frame pointers (10 M malloc/free pairs of varying
sizes, 18 frames deep by default), builds leaksift in release mode, then times each variant plain,
under `leaksift record` and under `heaptrack`, and prints medians, ratios, trace sizes and the
analysis times (medians, wall and CPU) of `leaksift report` vs `heaptrack_print` on the same run.

Goals (issue 3): record <= 0.15 x heaptrack's wall time with frame pointers, <= 0.4 x without;
trace no larger than heaptrack's; report <= 0.5 x heaptrack_print.

The floor row: the frame-pointer variant under bench/fp_walk_floor.c, an LD_PRELOAD library that
only walks each malloc's frame-pointer chain into a local array (no deduplication, no event, no
writer thread). Any tool that records every allocation's full stack pays at least this much, so
its ratio to heaptrack says whether the 0.15 x goal is reachable at all.

Usage: bench/native_overhead.py [--pairs N] [--runs N] [--heaptrack-runs N]
Needs: gcc, cargo, heaptrack + heaptrack_print (Debian package `heaptrack`).
Uses $CARGO_TARGET_DIR if set (else <repo>/target).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from timing import interleaved_medians, remove, run_timed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs per plain/record measurement (median)")
    parser.add_argument("--heaptrack-runs", type=int, default=1)
    args = parser.parse_args()

    for tool in ("gcc", "cargo", "heaptrack", "heaptrack_print"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (heaptrack: apt-get install heaptrack)")

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    print("building leaksift (release)...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "leaksift", "-p", "leaksift-preload"], cwd=REPO, check=True)
    leaksift = os.path.join(target, "release", "leaksift")

    work = tempfile.mkdtemp(prefix="leaksift-bench-")
    source = os.path.join(REPO, "bench", "native_overhead.c")
    variants = [("frame pointers", "-fno-omit-frame-pointer", 0.15), ("no frame pointers", "-fomit-frame-pointer", 0.4)]
    floor_lib = os.path.join(work, "fp_walk_floor.so")
    subprocess.run(["gcc", "-O2", "-fno-omit-frame-pointer", "-shared", "-fPIC", "-o", floor_lib,
                    os.path.join(REPO, "bench", "fp_walk_floor.c")], check=True)
    rows = []
    for label, flag, goal in variants:
        exe = os.path.join(work, "alloc_" + flag.strip("-").replace("-", "_"))
        subprocess.run(["gcc", "-O2", "-g", flag, "-o", exe, source], check=True)
        pairs = str(args.pairs)
        trace = os.path.join(work, "trace.lks")
        heaptrack_out = os.path.join(work, "heaptrack")

        def clean_heaptrack():
            for ext in (".zst", ".gz"):
                remove(heaptrack_out + ext)
        jobs = {
            "plain": ([exe, pairs], args.runs, None, (0,)),
            "record": ([leaksift, "record", "-o", trace, "--", exe, pairs], args.runs, None, (0,)),
            "heaptrack": (["heaptrack", "-o", heaptrack_out, exe, pairs], args.heaptrack_runs, clean_heaptrack, (0,)),
        }
        if flag == "-fno-omit-frame-pointer":
            jobs["floor"] = (["env", f"LD_PRELOAD={floor_lib}", exe, pairs], args.runs, None, (0,))
        medians = interleaved_medians(jobs)
        plain, record, heaptrack = medians["plain"], medians["record"], medians["heaptrack"]
        trace_size = os.path.getsize(trace)
        heaptrack_file = next(heaptrack_out + ext for ext in (".zst", ".gz") if os.path.exists(heaptrack_out + ext))
        heaptrack_size = os.path.getsize(heaptrack_file)

        analysis = interleaved_medians({
            "heaptrack_print": (["heaptrack_print", heaptrack_file], args.runs, None, (0,)),
            # Exit status 1 means "leaks found", still a successful report.
            "report": ([leaksift, "report", trace], args.runs, None, (0, 1)),
        })
        rows.append((label, goal, plain, record, heaptrack, trace_size, heaptrack_size, analysis["report"],
                     analysis["heaptrack_print"]))
        if "floor" in medians:
            floor_row = (plain, medians["floor"], heaptrack, record)

    print(f"\n{args.pairs} malloc/free pairs, 18 frames deep; medians of {args.runs} interleaved runs "
          f"({args.heaptrack_runs} for heaptrack); load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores. CPU = user + sys of the whole process tree.\n")
    print(f"{'variant':<18} {'':>5} {'plain':>7} {'record':>7} {'heaptrack':>9} {'rec/plain':>9} "
          f"{'ht/plain':>8} {'rec/ht':>7} {'goal':>5}")
    for label, goal, plain, record, heaptrack, *_ in rows:
        for kind, i in (("wall", 0), ("cpu", 1)):
            ratio = record[i] / heaptrack[i]
            verdict = ("ok" if ratio <= goal else "MISSED") if kind == "wall" else ""
            print(f"{label if i == 0 else '':<18} {kind:>5} {plain[i]:6.2f}s {record[i]:6.2f}s "
                  f"{heaptrack[i]:8.2f}s {record[i] / plain[i]:8.1f}x {heaptrack[i] / plain[i]:7.1f}x "
                  f"{ratio:6.2f}x {goal if i == 0 else '':>5} {verdict}")
    plain, floor, heaptrack, record = floor_row
    print("\nfloor: frame pointers, each malloc's frame-pointer chain walked and nothing else "
          "(bench/fp_walk_floor.c)")
    print(f"{'':<18} {'':>5} {'plain':>7} {'floor':>7} {'heaptrack':>9} {'fl/plain':>9} "
          f"{'fl/ht':>8} {'rec/fl':>7}")
    for kind, i in (("wall", 0), ("cpu", 1)):
        print(f"{'':<18} {kind:>5} {plain[i]:6.2f}s {floor[i]:6.2f}s {heaptrack[i]:8.2f}s "
              f"{floor[i] / plain[i]:8.1f}x {floor[i] / heaptrack[i]:7.2f}x {record[i] / floor[i]:6.1f}x")
    # The goal's allowance over the plain run, per malloc/free pair, and what the bare walk spends.
    allowance = (0.15 * heaptrack[0] - plain[0]) / args.pairs * 1e9
    walk = (floor[0] - plain[0]) / args.pairs * 1e9
    print(f"wall per pair over plain: 0.15 x heaptrack allows {allowance:.1f} ns; the bare walk takes "
          f"{walk:.1f} ns, record {(record[0] - plain[0]) / args.pairs * 1e9:.1f} ns")
    print(f"\n{'variant':<18} {'trace':>10} {'heaptrack':>10} {'ratio':>7}   {'':>5} {'report':>8} {'ht_print':>8} {'ratio':>6}")
    for label, _, _, _, _, size, ht_size, report_time, ht_print in rows:
        for kind, i in (("wall", 0), ("cpu", 1)):
            sizes = (f"{size / 2**20:8.2f}Mi {ht_size / 2**20:8.2f}Mi {size / ht_size:6.2f}x" if i == 0
                     else " " * 27)
            print(f"{label if i == 0 else '':<18} {sizes}   {kind:>5} {report_time[i]:7.2f}s {ht_print[i]:7.2f}s "
                  f"{report_time[i] / ht_print[i]:5.2f}x")
    print("\ngoals: rec/ht wall <= 0.15 (frame pointers), <= 0.4 (without); trace <= heaptrack's; "
          "report <= 0.5 x heaptrack_print")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
