#!/usr/bin/env python3
"""Packets the egress e2e test sends by hand, one each, so the appliance's
filter counters can be compared with exactly what was sent.

  pkt.py syn SRC DST PORT[-PORT]     one TCP SYN per port (raw socket, IP_HDRINCL)
  pkt.py dns DST HEXQUERY            one UDP query; prints the reply in hex or "timeout"
"""
import socket, struct, sys

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def syn(src, dst, lo, hi):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    sa, da = socket.inet_aton(src), socket.inet_aton(dst)
    for port in range(lo, hi + 1):
        tcp = struct.pack("!HHIIBBHHH", 40000 + port % 20000, port, 1000 + port, 0, 5 << 4, 0x02, 64240, 0, 0)
        pseudo = sa + da + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), port, 0x4000, 64, 6, 0, sa, da)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        s.sendto(ip + tcp, (dst, 0))

def dns(dst, hexq):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(bytes.fromhex(hexq), (dst, 53))
    try:
        print(s.recv(4096).hex())
    except socket.timeout:
        print("timeout")

if sys.argv[1] == "syn":
    ports = sys.argv[4].split("-")
    syn(sys.argv[2], sys.argv[3], int(ports[0]), int(ports[-1]))
else:
    dns(sys.argv[2], sys.argv[3])
