"""Test HTTP server for `leaksift check` (127.0.0.1 only).

    python3 check_server.py --mode keep|free --port-file FILE [--pid-file FILE] [--daemonize]
        [--ignore-term]

Every GET builds a 256 KiB buffer (written, so resident) and answers with a checksum of it.
`--mode keep` keeps each buffer forever (a leak of 256 KiB per request); `--mode free` drops it
before answering. The chosen port is written to FILE (atomically) once the server listens.
`--daemonize` detaches as classic daemons do (fork, the parent exits at once, setsid, fork
again) before listening; `--ignore-term` ignores SIGTERM (only SIGKILL stops it).
"""

import argparse
import http.server
import os
import signal

KEPT = []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["keep", "free"], required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--pid-file")
    parser.add_argument("--daemonize", action="store_true")
    parser.add_argument("--ignore-term", action="store_true")
    args = parser.parse_args()
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.daemonize:
        if os.fork() > 0:
            os._exit(0)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            buf = bytearray(b"x") * (256 * 1024)
            checksum = sum(buf[::4096])
            if args.mode == "keep":
                KEPT.append(buf)
            del buf
            body = str(checksum).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(str(os.getpid()))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
