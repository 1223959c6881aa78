/* Console I/O: stdin/stdout, a tty device, or a pty. The only code that
 * touches terminals for the console (STYLE.md habit 4); the console engine
 * itself (appliance/console.h) does no I/O.
 *
 * Specs accepted by serial_open():
 *   NULL, "", "-", "stdio"  stdin/stdout. Both are set O_NONBLOCK. When stdin
 *                           is a terminal it is put in a raw-ish mode: no
 *                           echo, no canonical line editing, no CR->NL, no
 *                           XON/XOFF; ISIG and output processing are kept so
 *                           Ctrl-C / Ctrl-\ still stop a foreground process
 *                           and other writers' "\n" still return the carriage.
 *                           Other code must not write to stdout afterwards
 *                           (it is non-blocking): use the console or stderr.
 *   "pty"                   a new pseudo-terminal (posix_openpt); the slave
 *                           path is in serial_path() for the caller to print
 *                           ("screen /dev/pts/N", "socat - /dev/pts/N,raw").
 *                           The driver keeps a slave fd open itself so the
 *                           master never reports hang-up while no client is
 *                           attached; output then waits in the pty (the
 *                           console's output buffer holds the rest).
 *   "/dev/ttyS0[@BAUD]"     a serial device: fully raw, 8N1, no flow
 *                           control, CLOCAL, 115200 baud unless @BAUD
 *                           (9600 19200 38400 57600 115200 230400 460800 921600).
 * On the appliance image the kernel console is ttyS0: main passes
 * "/dev/ttyS0". serial_interactive() says whether to run the console engine
 * in CONSOLE_INTERACTIVE (a terminal) or CONSOLE_LINES (a pipe or file).
 *
 * Run-loop use: poll serial_fd() for POLLIN, and serial_out_fd() for
 * POLLOUT while console_output_pending(); see appliance/console.h for the
 * drain/feed recipe. serial_restore() puts the terminal and fd flags back;
 * it is async-signal-safe (tcsetattr, fcntl only) so a SIGTERM handler may
 * call it; serial_close() calls it and closes what the driver opened.
 * No function here exits; errors return -1 with a message in `err`. */
#ifndef MESHGATE_SERIAL_H
#define MESHGATE_SERIAL_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <termios.h>

#define SERIAL_DEFAULT_BAUD 115200
#define SERIAL_PATH_MAX 256

enum serial_kind { SERIAL_STDIO, SERIAL_DEVICE, SERIAL_PTY };

/* serial_read / serial_write return a byte count >= 0 (0 = would block,
 * try again after poll), or one of these. */
enum serial_status { SERIAL_ERROR = -1, SERIAL_EOF = -2 };

struct serial {
	enum serial_kind kind;
	int in_fd, out_fd;
	int slave_fd;                   /* pty: held open by us; else -1 */
	bool interactive;
	bool eof;                       /* stdin reached EOF (pipe/file) */
	bool termios_saved;
	int termios_fd;
	struct termios saved_termios;
	int saved_in_flags, saved_out_flags;    /* -1 = not changed */
	char path[SERIAL_PATH_MAX];     /* device or pty slave path; "" for stdio */
};

int serial_open(struct serial *s, const char *spec, char *err, size_t errlen);
ssize_t serial_read(struct serial *s, void *buf, size_t len);
ssize_t serial_write(struct serial *s, const void *buf, size_t len);
int serial_fd(const struct serial *s);          /* poll for POLLIN */
int serial_out_fd(const struct serial *s);      /* poll for POLLOUT */
bool serial_interactive(const struct serial *s);
const char *serial_path(const struct serial *s);
void serial_restore(struct serial *s);
/* At shutdown, before serial_close(): waits up to timeout_ms (sleeping in
 * short steps) until the other side has taken what was written (pty: the
 * client has read it; closing the master would discard it; device: the
 * UART has sent it). Returns true when drained. Not for the polling loop. */
bool serial_flush(struct serial *s, int timeout_ms);
void serial_close(struct serial *s);

#endif
