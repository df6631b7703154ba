"""One `leaksift check` scenario iteration: four GET requests to the test server.

    python3 scenario.py PORT_FILE
"""

import sys
import urllib.request

port = open(sys.argv[1]).read().strip()
for _ in range(4):
    urllib.request.urlopen("http://127.0.0.1:%s/" % port, timeout=10).read()
