"""Test HTTP server for `leaksift check` (127.0.0.1 only).

    python3 check_server.py --mode keep|free --port-file FILE [--pid-file FILE]

Every GET builds a 256 KiB buffer (written, so resident) and answers with a checksum of it.
`--mode keep` keeps each buffer forever (a leak of 256 KiB per request); `--mode free` drops it
before answering. The chosen port is written to FILE (atomically) once the server listens.
"""

import argparse
import http.server
import os

KEPT = []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["keep", "free"], required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--pid-file")
    args = parser.parse_args()

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
