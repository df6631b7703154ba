"""Memory shapes for the trend fixtures: `leak` keeps 1 MiB every 100 ms; `plateau` fills a
cache for 2 s and then holds it. Usage: grow.py leak|plateau SECONDS

It ends with os._exit, as a killed service does: the interpreter's teardown (freeing everything
while the sampler still runs) would add a last sample far below the others. See the README on
trimming such samples."""
import os
import sys
import time

shape, seconds = sys.argv[1], float(sys.argv[2])
kept = []
start = time.monotonic()
while time.monotonic() - start < seconds:
    if shape == "leak" or time.monotonic() - start < 2.0:
        block = bytearray(1 << 20)
        block[::4096] = b"x" * len(block[::4096])  # touch every page so it counts in RSS
        kept.append(block)
    time.sleep(0.1)
os._exit(0)
