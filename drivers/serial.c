/* Console I/O driver: see serial.h. */
#include "drivers/serial.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Fills err with the message and strerror(errno at the call). */
__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	int e = errno;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s", msg, strerror(e));
	return -1;
}

static int set_nonblock(int fd, int *saved)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	if (saved)
		*saved = fl;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static speed_t baud_constant(unsigned long baud)
{
	switch (baud) {
	case 9600: return B9600;
	case 19200: return B19200;
	case 38400: return B38400;
	case 57600: return B57600;
	case 115200: return B115200;
	case 230400: return B230400;
	case 460800: return B460800;
	case 921600: return B921600;
	}
	return 0;
}

static void init_struct(struct serial *s)
{
	memset(s, 0, sizeof(*s));
	s->in_fd = s->out_fd = s->slave_fd = s->termios_fd = -1;
	s->saved_in_flags = s->saved_out_flags = -1;
}

/* Saves the terminal settings of fd, to be put back by serial_restore(). */
static int save_termios(struct serial *s, int fd)
{
	if (tcgetattr(fd, &s->saved_termios) != 0)
		return -1;
	s->termios_saved = true;
	s->termios_fd = fd;
	return 0;
}

static int open_stdio(struct serial *s, char *err, size_t errlen)
{
	s->kind = SERIAL_STDIO;
	s->in_fd = STDIN_FILENO;
	s->out_fd = STDOUT_FILENO;
	s->interactive = isatty(STDIN_FILENO) == 1;
	if (s->interactive) {
		if (save_termios(s, STDIN_FILENO) != 0)
			return fail(err, errlen, "console: stdin is a terminal but %s", "tcgetattr failed");
		struct termios t = s->saved_termios;
		t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | IEXTEN);
		t.c_iflag &= ~(tcflag_t)(ICRNL | INLCR | IGNCR | IXON | ISTRIP);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &t) != 0)
			return fail(err, errlen, "console: %s", "cannot set raw mode on stdin");
	}
	if (set_nonblock(STDIN_FILENO, &s->saved_in_flags) != 0)
		return fail(err, errlen, "console: %s", "cannot make stdin non-blocking");
	if (set_nonblock(STDOUT_FILENO, &s->saved_out_flags) != 0)
		return fail(err, errlen, "console: %s", "cannot make stdout non-blocking");
	return 0;
}

static void raw_mode(struct termios *t)
{
	cfmakeraw(t);
	t->c_cflag |= CLOCAL | CREAD;
	t->c_cc[VMIN] = 1;
	t->c_cc[VTIME] = 0;
}

static int open_pty(struct serial *s, char *err, size_t errlen)
{
	s->kind = SERIAL_PTY;
	s->interactive = true;
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0)
		return fail(err, errlen, "console: %s", "posix_openpt failed (is /dev/pts mounted?)");
	s->in_fd = s->out_fd = m;
	if (grantpt(m) != 0 || unlockpt(m) != 0)
		return fail(err, errlen, "console: %s", "grantpt/unlockpt on the pty failed");
	if (ptsname_r(m, s->path, sizeof(s->path)) != 0)
		return fail(err, errlen, "console: %s", "ptsname failed");
	s->slave_fd = open(s->path, O_RDWR | O_NOCTTY);
	if (s->slave_fd < 0)
		return fail(err, errlen, "console: cannot open pty slave %s", s->path);
	struct termios t;
	if (tcgetattr(s->slave_fd, &t) != 0)
		return fail(err, errlen, "console: tcgetattr on %s", s->path);
	raw_mode(&t);
	if (tcsetattr(s->slave_fd, TCSANOW, &t) != 0)
		return fail(err, errlen, "console: cannot set raw mode on %s", s->path);
	if (set_nonblock(m, NULL) != 0)
		return fail(err, errlen, "console: %s", "cannot make the pty non-blocking");
	return 0;
}

static int open_device(struct serial *s, const char *spec, char *err, size_t errlen)
{
	s->kind = SERIAL_DEVICE;
	s->interactive = true;
	unsigned long baud = SERIAL_DEFAULT_BAUD;
	const char *at = strrchr(spec, '@');
	size_t plen = at ? (size_t)(at - spec) : strlen(spec);
	if (plen == 0 || plen >= sizeof(s->path)) {
		snprintf(err, errlen, "console: '%s' is not a device path (or 'pty', or '-' for stdin/stdout)", spec);
		return -1;
	}
	memcpy(s->path, spec, plen);
	s->path[plen] = '\0';
	if (at) {
		char *end;
		errno = 0;
		baud = strtoul(at + 1, &end, 10);
		if (errno || *end || end == at + 1 || !baud_constant(baud)) {
			snprintf(err, errlen, "console: '%s': baud rate '%s' is not one of 9600 19200 38400 57600 "
				 "115200 230400 460800 921600", spec, at + 1);
			return -1;
		}
	}
	int fd = open(s->path, O_RDWR | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fail(err, errlen, "console: cannot open %s", s->path);
	s->in_fd = s->out_fd = fd;
	if (!isatty(fd)) {
		snprintf(err, errlen, "console: %s is not a terminal device", s->path);
		return -1;
	}
	if (save_termios(s, fd) != 0)
		return fail(err, errlen, "console: tcgetattr on %s", s->path);
	struct termios t = s->saved_termios;
	raw_mode(&t);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS);
	t.c_cflag |= CS8;
	speed_t sp = baud_constant(baud);
	if (cfsetispeed(&t, sp) != 0 || cfsetospeed(&t, sp) != 0 || tcsetattr(fd, TCSANOW, &t) != 0)
		return fail(err, errlen, "console: cannot configure %s (raw 8N1)", s->path);
	tcflush(fd, TCIFLUSH);
	return 0;
}

int serial_open(struct serial *s, const char *spec, char *err, size_t errlen)
{
	init_struct(s);
	int rc;
	if (!spec || !*spec || strcmp(spec, "-") == 0 || strcmp(spec, "stdio") == 0)
		rc = open_stdio(s, err, errlen);
	else if (strcmp(spec, "pty") == 0)
		rc = open_pty(s, err, errlen);
	else
		rc = open_device(s, spec, err, errlen);
	if (rc != 0)
		serial_close(s);
	return rc;
}

ssize_t serial_read(struct serial *s, void *buf, size_t len)
{
	if (s->eof)
		return SERIAL_EOF;
	ssize_t n = read(s->in_fd, buf, len);
	if (n > 0)
		return n;
	if (n == 0) {
		if (s->kind == SERIAL_STDIO && !s->interactive) {
			s->eof = true;
			return SERIAL_EOF;
		}
		return 0;   /* a terminal with nothing to read */
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	if (errno == EIO && s->kind == SERIAL_PTY)
		return 0;   /* no slave open: cannot happen while we hold slave_fd */
	return SERIAL_ERROR;
}

ssize_t serial_write(struct serial *s, const void *buf, size_t len)
{
	ssize_t n = write(s->out_fd, buf, len);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	if (errno == EPIPE)
		return SERIAL_EOF;
	return SERIAL_ERROR;
}

int serial_fd(const struct serial *s) { return s->in_fd; }
int serial_out_fd(const struct serial *s) { return s->out_fd; }
bool serial_interactive(const struct serial *s) { return s->interactive; }
const char *serial_path(const struct serial *s) { return s->path; }

void serial_restore(struct serial *s)
{
	if (s->termios_saved)
		tcsetattr(s->termios_fd, TCSANOW, &s->saved_termios);
	if (s->saved_in_flags >= 0)
		fcntl(s->in_fd, F_SETFL, s->saved_in_flags);
	if (s->saved_out_flags >= 0)
		fcntl(s->out_fd, F_SETFL, s->saved_out_flags);
}

bool serial_flush(struct serial *s, int timeout_ms)
{
	/* pty: bytes written to the master reach the slave's input queue from
	 * a kernel work item, so FIONREAD can read 0 just after a write while
	 * they are still on their way; sleep a step before each look and only
	 * trust two empty looks in a row. */
	int empty = 0;
	for (int waited = 0;; waited += 10) {
		int pending = 0;
		if (s->kind == SERIAL_PTY)
			usleep(10000);
		if (s->kind == SERIAL_PTY && s->slave_fd >= 0) {
			if (ioctl(s->slave_fd, FIONREAD, &pending) != 0)
				return false;
		} else if (s->kind == SERIAL_DEVICE) {
			if (ioctl(s->out_fd, TIOCOUTQ, &pending) != 0)
				return false;
		}
		if (pending == 0 && (s->kind != SERIAL_PTY || ++empty >= 2))
			return true;
		if (pending)
			empty = 0;
		if (waited >= timeout_ms)
			return pending == 0;
		if (s->kind != SERIAL_PTY)
			usleep(10000);
	}
}

void serial_close(struct serial *s)
{
	serial_restore(s);
	if (s->kind != SERIAL_STDIO && s->in_fd >= 0)
		close(s->in_fd);
	if (s->slave_fd >= 0)
		close(s->slave_fd);
	init_struct(s);
}
