#!/usr/bin/env python3
"""Drives meshgate's interactive console over its pty, as an operator would.

    console_client.py PTS [--password PW] [--until TEXT] [--timeout S] CMD...

Opens the pty slave, throws away what is pending (earlier prompts, notices),
then for each CMD: types it with CR, waits for the echo and the next
"meshgate> " prompt, and prints the command's output (CR LF -> LF, without
the echo and the prompt). --password answers a "password: " prompt first
(exit 2 when it is refused). --until TEXT: for the last command, stop
when TEXT appears instead of waiting for a prompt (shutdown). Exit 0, or 1
with what was read on a timeout.
"""
import argparse
import os
import select
import sys
import termios
import time
import tty

PROMPT = b"meshgate> "


class Console:
    def __init__(self, path, timeout):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd, termios.TCSANOW)
        self.timeout = timeout
        self.buf = b""
        self.closed = False

    def read_some(self, wait):
        r, _, _ = select.select([self.fd], [], [], wait)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:    # EIO or EOF: meshgate closed its console
            self.closed = True
            time.sleep(wait)
            return False
        self.buf += data
        return True

    def drain(self):
        while self.read_some(0.2):
            pass
        pending, self.buf = self.buf, b""
        return pending

    def expect(self, want, start=0, abort=None):
        end = time.time() + self.timeout
        while True:
            i = self.buf.find(want, start)
            if i >= 0:
                return i
            if abort and abort in self.buf[start:]:
                sys.stdout.write(self.buf.decode(errors="replace").replace("\r\n", "\n"))
                sys.exit("console_client: got %r while waiting for %r" % (abort, want))
            if time.time() > end or self.closed:
                sys.stdout.write(self.buf.decode(errors="replace").replace("\r\n", "\n"))
                sys.exit("console_client: timeout waiting for %r" % want)
            self.read_some(0.1)

    def send(self, data):
        os.write(self.fd, data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pts")
    ap.add_argument("--password")
    ap.add_argument("--until")
    ap.add_argument("--pending", action="store_true",
                    help="print what arrived while no client was attached, then exit")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("cmds", nargs="*")
    a = ap.parse_intermixed_args()
    c = Console(a.pts, a.timeout)
    pending = c.drain()
    if a.pending:
        sys.stdout.write(pending.decode(errors="replace").replace("\r\n", "\n"))
        return
    if a.password is not None:
        # the "password: " prompt was queued when the console started or
        # after the last failed attempt; an empty line would count as one
        c.buf = pending
        if b"password: " not in pending:
            c.send(b"\x03")    # Ctrl-C: a fresh prompt, not a failed attempt
        c.expect(b"password: ")
        c.buf = b""
        c.send(a.password.encode() + b"\r")
        end = time.time() + a.timeout
        while PROMPT not in c.buf and b"password: " not in c.buf and time.time() < end:
            c.read_some(0.1)
        sys.stdout.write(c.buf.decode(errors="replace").replace("\r\n", "\n") + "\n")
        if PROMPT not in c.buf:
            sys.stdout.flush()
            sys.exit(2)     # not logged in
    out = sys.stdout
    for n, cmd in enumerate(a.cmds):
        last = n == len(a.cmds) - 1
        c.buf = b""
        c.send(cmd.encode() + b"\r")
        # no echo but a password prompt: not logged in (do not type more)
        echo = c.expect(cmd.encode() + b"\r\n", 0, b"password: ")
        start = echo + len(cmd) + 2
        if last and a.until:
            i = c.expect(a.until.encode(), start)
            end = i + len(a.until)
        else:
            # the prompt that follows the output ends the command
            end = c.expect(b"\r\n" + PROMPT, start - 2) + 2
            if end < start:
                end = start
        out.write(c.buf[start:end].decode(errors="replace").replace("\r\n", "\n"))
    out.flush()


if __name__ == "__main__":
    main()
