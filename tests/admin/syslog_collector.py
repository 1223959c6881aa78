#!/usr/bin/env python3
"""A UDP syslog collector for the admin test: writes every datagram it
receives as one line to the file given (RFC 5424 as sent)."""
import socket
import sys

addr, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
print("ready", flush=True)
with open(out, "a", buffering=1) as f:
    while True:
        data, _ = s.recvfrom(65535)
        f.write(data.decode("utf-8", "replace").replace("\n", "\\n") + "\n")
