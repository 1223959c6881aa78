#!/usr/bin/env python3
"""The "internet" resolver for the egress e2e test: answers every A query
with ANSWER_IP. For names starting with "twice." it first sends a reply for
another question with the same id (which meshgate must not relay), then the
real one; names starting with "dyn." get DYN_IP.
Usage: dns_upstream.py BIND_IP ANSWER_IP [DYN_IP]"""
import socket, struct, sys

bind_ip, answer_ip = sys.argv[1], sys.argv[2]
dyn_ip = sys.argv[3] if len(sys.argv) > 3 else answer_ip   # for names "dyn.*"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((bind_ip, 53))
print("ready", flush=True)

def qname_end(msg, off):
    while msg[off]:
        off += 1 + msg[off]
    return off + 1

while True:
    q, peer = s.recvfrom(4096)
    end = qname_end(q, 12)
    question = q[12:end + 4]
    name = q[13:13 + q[12]]
    hdr = q[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
    ip = dyn_ip if name == b"dyn" else answer_ip
    ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
    print("query %s" % name.decode(errors="replace"), flush=True)
    if name == b"twice":
        wrong = bytearray(question)
        wrong[1] ^= 0x20                  # another name, same id
        s.sendto(hdr + bytes(wrong) + ans, peer)
    s.sendto(hdr + question + ans, peer)
