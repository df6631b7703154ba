"""A parent that stays small while its three worker processes each keep 1 MiB every 100 ms, as
a pre-fork server whose workers leak. Usage: grow_children.py SECONDS (for `mprof run
--multiprocess`, which records the workers on CHLD lines). The parent ends half a second before
its workers, as a killed server does, so the recording holds no worker's exit."""
import os
import subprocess
import sys
import time

seconds = float(sys.argv[1])
grow = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grow.py")
for _ in range(3):
    subprocess.Popen([sys.executable, grow, "leak", str(seconds + 0.5)])
time.sleep(seconds)
os._exit(0)
