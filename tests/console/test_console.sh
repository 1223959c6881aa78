#!/usr/bin/env bash
# Console end to end: drivers/serial + appliance/console in the reference
# loop (tests/console/console_demo.c) over a pipe, a pty, and a terminal on
# stdin; console password hashing through the hash-password verb.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$TESTS_TOP"
work=$(mktemp -d /tmp/meshgate-console-XXXXXX)
demo_pid=
cleanup() { [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

demo=$work/console_demo
CF="-O2 -g -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wformat=2 -Wvla -D_GNU_SOURCE -I. -include appliance/banned.h"
if gcc $CF -o "$demo" tests/console/console_demo.c drivers/serial.c appliance/console.c \
	appliance/console_auth.c -lcrypto 2>"$work/build.log"; then
	ok "console demo builds with -Werror"
else
	cat "$work/build.log"; not_ok "console demo builds with -Werror"; tap_exit
fi

# ---- pipe: CONSOLE_LINES mode, no echo, no prompt
out=$(printf 'status\necho "a b" c\\ d\nshow things\nshow nothing\nhelp echo\nnosuch\necho\n' | timeout 10 "$demo")
expect_eq "pipe: exit status" "$?" 0
check "pipe: status ran" grep -q '^uptime [0-9]* ms$' <<<"$out"
check "pipe: quoting" grep -qxF '[a b][c d]' <<<"$out"
check "pipe: multi-word command" grep -qx 'thing two' <<<"$out"
check "pipe: unknown sub-command hint" grep -qF "error: unknown command 'show nothing'; 'show' is followed by one of: things" <<<"$out"
check "pipe: help CMD" grep -qxF 'usage: echo ARG...' <<<"$out"
check "pipe: unknown command" grep -qF "error: unknown command 'nosuch'; type 'help'" <<<"$out"
check "pipe: usage on bad arguments" grep -qxF 'usage: echo ARG...' <<<"$(tail -1 <<<"$out")"
if grep -q 'meshgate>' <<<"$out"; then not_ok "pipe: no prompt in line mode"; else ok "pipe: no prompt in line mode"; fi
if grep -q $'\r' <<<"$out"; then not_ok "pipe: plain LF output"; else ok "pipe: plain LF output"; fi

# ---- hash-password and login over a pipe
hash=$(printf 'open sesame\n' | "$demo" hash-password --iterations 1000)
check "hash-password prints pbkdf2-sha256\$1000\$SALT\$HASH" \
	grep -qE '^pbkdf2-sha256\$1000\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$' <<<"$hash"
hash2=$(printf 'open sesame\n' | "$demo" hash-password --iterations 1000)
if [ "$hash" != "$hash2" ]; then ok "hash-password salts each hash"; else not_ok "hash-password salts each hash"; fi
err=$(printf '\n' | "$demo" hash-password 2>&1 >/dev/null); rc=$?
expect_eq "hash-password refuses an empty password" "$rc" 1
check "hash-password says why" grep -q 'empty' <<<"$err"
"$demo" hash-password --iterations 5 </dev/null >/dev/null 2>&1; expect_eq "hash-password checks --iterations" "$?" 2
out=$(printf 'open sesame\nstatus\n' | timeout 10 "$demo" --password-hash "$hash")
check "login: right password logs in" grep -q '^logged in' <<<"$out"
check "login: commands run after login" grep -q '^uptime' <<<"$out"
if grep -q 'open sesame' <<<"$out"; then not_ok "login: password not echoed"; else ok "login: password not echoed"; fi
out=$(printf 'wrong\nstatus\nopen sesame\n' | timeout 10 "$demo" --password-hash "$hash")
check "login: wrong password refused" grep -q '^wrong password (next attempt in 1 s)' <<<"$out"
check "login: retry inside the delay is throttled" grep -q 'login refused: too many failed attempts' <<<"$out"
if grep -q '^uptime' <<<"$out"; then not_ok "login: no command before login"; else ok "login: no command before login"; fi
out=$(printf 'x\n' | timeout 10 "$demo" --password-hash 'pbkdf2-sha256$1000$bad$bad' 2>&1)
check "login: malformed hash reported and console stays locked" \
	bash -c 'grep -q "password hash salt is not base64" <<<"$1" && grep -q "login impossible" <<<"$1"' _ "$out"

# ---- pty: interactive mode through a pseudo-terminal
timeout 60 "$demo" --console pty 2>"$work/pty.err" &
demo_pid=$!
for _ in $(seq 50); do grep -q 'console on' "$work/pty.err" && break; sleep 0.1; done
pts=$(sed -n 's/^console on //p' "$work/pty.err")
check "pty: slave path printed" test -c "$pts"
cat >"$work/pty_client.py" <<'EOF'
import os, sys, time, termios, tty
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd, termios.TCSANOW)   # TCSAFLUSH would drop the queued prompt
def expect(want, timeout=5.0):
    buf = b""
    end = time.time() + timeout
    while time.time() < end:
        import select
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            buf += os.read(fd, 4096)
            if want in buf:
                return buf
    sys.exit("timeout waiting for %r, got %r" % (want, buf))
def send(b):
    os.write(fd, b)
# the first prompt was queued before we connected
expect(b"meshgate> ")
send(b"echp\x7fo hi\r")
got = expect(b"[hi]\r\nmeshgate> ")
assert b"echp\b \bo hi\r\n" in got, got          # echo, backspace erase, CR LF
send(b"\x1b[A")                                   # history: recall "echo hi"
expect(b"\rmeshgate> echo hi\x1b[K")
send(b"\x1b[D\x1b[D!\r")                          # insert before "hi": "echo !hi"
expect(b"[!hi]\r\n")
send(b"garbage\x03")                              # Ctrl-C cancels
expect(b"^C\r\nmeshgate> ")
send(b"help\r")
got = expect(b"shutdown")
assert b"show things" in got and b"list the things" in got, got
send(b"shutdown\r")
expect(b"shutting down\r\n")
print("pty ok")
EOF
if out=$(python3 "$work/pty_client.py" "$pts" 2>&1); then ok "pty: editing, history, Ctrl-C, help, shutdown"; else echo "$out"; not_ok "pty: editing, history, Ctrl-C, help, shutdown"; fi
wait "$demo_pid"; expect_eq "pty: demo exits 0 after shutdown" "$?" 0
demo_pid=

# ---- stdin is a terminal: raw mode while running, restored at exit
cat >"$work/tty_client.py" <<'EOF'
import os, pty, sys, time, select, termios, signal
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1]])
def expect(want, timeout=5.0):
    buf = b""
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
            if want in buf:
                return buf
    sys.exit("timeout waiting for %r, got %r" % (want, buf))
expect(b"meshgate> ")
lflag = termios.tcgetattr(fd)[3]
assert not (lflag & termios.ECHO) and not (lflag & termios.ICANON), "not raw while running"
os.write(fd, b"status\r")
expect(b"version demo")
os.write(fd, b"\x03")          # ISIG kept on stdin: Ctrl-C is SIGINT
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
lflag = termios.tcgetattr(fd)[3]
assert (lflag & termios.ECHO) and (lflag & termios.ICANON), "terminal not restored"
print("tty ok")
EOF
if out=$(timeout 30 python3 "$work/tty_client.py" "$demo" 2>&1); then ok "tty stdin: raw while running, Ctrl-C stops, terminal restored"; else echo "$out"; not_ok "tty stdin: raw while running, Ctrl-C stops, terminal restored"; fi

# ---- device path errors are clear
out=$("$demo" --console /nonexistent/ttyX 2>&1); rc=$?
expect_eq "device: missing path fails" "$rc" 1
check "device: message names the path" grep -qF 'cannot open /nonexistent/ttyX' <<<"$out"
out=$("$demo" --console "/dev/null@1234" 2>&1)
check "device: bad baud rate named" grep -qF "baud rate '1234'" <<<"$out"
out=$("$demo" --console /dev/null 2>&1)
check "device: a non-terminal is refused" grep -qF '/dev/null is not a terminal device' <<<"$out"

tap_exit
