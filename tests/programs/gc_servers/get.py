"""GET requests to a gc_servers test server on 127.0.0.1 (a `check` scenario or sample command).

    python3 get.py PORT_FILE PATH [COUNT]

Sends COUNT (default 1) GET requests for PATH and prints the last response's body; exits 1 on any
HTTP error.
"""

import sys
import urllib.request

port = open(sys.argv[1]).read().strip()
count = int(sys.argv[3]) if len(sys.argv) > 3 else 1
for _ in range(count):
    with urllib.request.urlopen("http://127.0.0.1:%s%s" % (port, sys.argv[2]), timeout=30) as r:
        body = r.read()
sys.stdout.write(body.decode())
