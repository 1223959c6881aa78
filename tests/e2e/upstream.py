#!/usr/bin/env python3
"""The upstream side of the end-to-end tests: a real HTTP/1.1 server and two
raw TCP services, listening in the upstream namespace.

  HTTP :8080   GET /            "hello from upstream" + the XFCC header seen
               GET /blob/N      N deterministic bytes (byte i = i % 251)
               POST /sha256     sha256 hex of the request body
               GET /slow/MS     answers after MS milliseconds
  TCP  :9000   reads until EOF (half-close), answers the sha256 hex, closes
  TCP  :9001   echo
"""
import hashlib
import http.server
import socketserver
import sys
import threading
import time

PATTERN = bytes(i % 251 for i in range(251 * 4096))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/" or self.path.startswith("/?"):
            xfcc = self.headers.get("x-forwarded-client-cert", "")
            self.reply(200, ("hello from upstream\nxfcc=%s\n" % xfcc).encode())
        elif self.path.startswith("/blob/"):
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            sent = 0
            while sent < n:
                chunk = PATTERN[: min(len(PATTERN), n - sent)]
                self.wfile.write(chunk)
                sent += len(chunk)
        elif self.path.startswith("/slow/"):
            time.sleep(int(self.path.split("/")[2]) / 1000.0)
            self.reply(200, b"slow\n")
        else:
            self.reply(404, b"not found\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            n -= len(chunk)
        self.reply(200, (h.hexdigest() + "\n").encode())

    do_PUT = do_POST


class HashHandler(socketserver.BaseRequestHandler):
    def handle(self):
        h = hashlib.sha256()
        while True:
            data = self.request.recv(1 << 16)
            if not data:
                break
            h.update(data)
        self.request.sendall((h.hexdigest() + "\n").encode())


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(1 << 16)
            if not data:
                break
            self.request.sendall(data)


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "0.0.0.0"
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    # the default listen backlog (5) drops SYNs under 50 concurrent clients
    http.server.ThreadingHTTPServer.request_queue_size = 256
    web = http.server.ThreadingHTTPServer((addr, 8080), Handler)
    web.daemon_threads = True
    for srv in (web, TCPServer((addr, 9000), HashHandler), TCPServer((addr, 9001), EchoHandler)):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("upstream ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
