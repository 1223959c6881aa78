#!/usr/bin/env python3
"""mTLS test client with explicit control over the transport (Python's ssl,
i.e. OpenSSL, over MemoryBIO on a raw socket).

  --send-bytes N --half-close   send N pattern bytes, then shutdown(SHUT_WR) of
                                the TCP socket (no close_notify), print what
                                comes back until EOF
  --stream SECONDS              echo service: send/receive continuously,
                                print "ok BYTES" or "broken BYTES: reason"
"""
import argparse
import os
import socket
import ssl
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--netns")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--send-bytes", type=int, default=0)
    ap.add_argument("--half-close", action="store_true")
    ap.add_argument("--stream", type=float, default=0)
    ap.add_argument("--pause-in-handshake", type=float, default=0,
                    help="after the server's first flight, wait this long before answering")
    a = ap.parse_args()
    if a.netns:
        args = [x for x in sys.argv[1:]]
        i = args.index("--netns")
        del args[i:i + 2]
        os.execvp("ip", ["ip", "netns", "exec", a.netns, sys.executable, __file__] + args)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(a.pki, "ca.pem"))
    ctx.load_cert_chain(os.path.join(a.pki, a.id + ".pem"), os.path.join(a.pki, a.id + ".key"))
    ctx.check_hostname = False
    sock = socket.create_connection((a.host, a.port), timeout=30)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_side=False)

    def pump_out():
        data = out.read()
        if data:
            sock.sendall(data)

    def pump_in():
        data = sock.recv(65536)
        if not data:
            inc.write_eof()
            return False
        inc.write(data)
        return True

    flights = 0
    while True:
        try:
            tls.do_handshake()
            pump_out()
            break
        except ssl.SSLWantReadError:
            if flights == 1 and a.pause_in_handshake:
                # the server's flight is in; our certificate is not sent yet
                print("paused", flush=True)
                time.sleep(a.pause_in_handshake)
            pump_out()
            if not pump_in():
                print("handshake EOF")
                return 1
            flights += 1

    if a.stream:
        return stream(a, tls, sock, pump_in, pump_out)

    pattern = bytes(i % 251 for i in range(a.send_bytes))
    off = 0
    while off < len(pattern):
        n = tls.write(pattern[off:off + 16384])
        off += n
        pump_out()
    if a.half_close:
        sock.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        try:
            chunk = tls.read(65536)
            if not chunk:
                break
            got += chunk
        except ssl.SSLWantReadError:
            if not pump_in():
                break
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
    print(got.decode(errors="replace").strip())
    return 0


def stream(a, tls, sock, pump_in, pump_out):
    """Sends numbered 1 KB blocks to an echo service and checks every byte
    comes back, for --stream seconds."""
    sock.settimeout(5)
    end = time.time() + a.stream
    sent = recvd = 0
    expect = b""
    block = 0
    try:
        while time.time() < end:
            payload = (("%08d" % block) * 128).encode()
            block += 1
            tls.write(payload)
            expect += payload
            sent += len(payload)
            pump_out()
            while len(expect) > 0:
                try:
                    chunk = tls.read(65536)
                except ssl.SSLWantReadError:
                    if not pump_in():
                        print("broken %d: EOF" % recvd)
                        return 1
                    continue
                if not chunk:
                    print("broken %d: close" % recvd)
                    return 1
                if expect[:len(chunk)] != chunk:
                    print("broken %d: corrupt" % recvd)
                    return 1
                expect = expect[len(chunk):]
                recvd += len(chunk)
            time.sleep(0.01)
    except (OSError, ssl.SSLError) as e:
        print("broken %d: %s" % (recvd, e))
        return 1
    print("ok %d" % recvd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
