"""Shared helpers of the Python benchmarks: timing a command, interleaved medians."""

import os
import resource
import statistics
import subprocess
import sys
import time


def run_timed(cmd, ok_codes=(0,), **kwargs):
    """Wall seconds and CPU seconds (user + sys of the command and all its descendants)."""
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    elapsed = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    if result.returncode not in ok_codes:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr.decode(errors='replace')[-2000:]}")
    return elapsed, cpu


def interleaved_medians(jobs):
    """Median wall and CPU seconds of each job {name: (cmd, runs, before, ok_codes)}. Runs go
    round-robin (one run of each job per round) so that load from other processes on a shared
    machine falls on every job alike rather than on whichever ran during a burst. A job with no
    runs is left out."""
    times = {name: ([], []) for name in jobs}
    for round_ in range(max(runs for _, runs, _, _ in jobs.values())):
        for name, (cmd, runs, before, ok_codes) in jobs.items():
            if round_ >= runs:
                continue
            if before:
                before()
            wall, cpu = run_timed(cmd, ok_codes)
            times[name][0].append(wall)
            times[name][1].append(cpu)
    return {name: (statistics.median(walls), statistics.median(cpus)) for name, (walls, cpus) in times.items() if walls}


def remove(path):
    if os.path.exists(path):
        os.remove(path)
