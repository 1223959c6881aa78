/* Console password hashing: see console_auth.h for the format and contract. */
#include "appliance/console_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z') return ch - 'A';
	if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9') return ch - '0' + 52;
	if (ch == '+') return 62;
	if (ch == '/') return 63;
	return -1;
}

/* Returns the encoded length (without NUL) or 0 when it does not fit. */
static size_t b64_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
	size_t need = 4 * ((len + 2) / 3);
	if (need + 1 > outlen)
		return 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len) v |= in[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

/* Strict decoder: length a multiple of 4, padding only at the end, and the
 * unused bits of the last group zero (so one byte string has exactly one
 * encoding: a flipped padding bit is tampering, not an alias). Returns the
 * decoded length or -1. */
static long b64_decode(const char *in, size_t len, uint8_t *out, size_t outmax)
{
	if (len == 0 || len % 4 != 0)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)    /* data after '=' */
				return -1;
			v[k] = b64_value(in[i + k]);
			if (v[k] < 0)
				return -1;
		}
		if (pad == 1 && in[i + 2] == '=')
			return -1;
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		size_t n = 3 - (size_t)pad;
		if (pad == 2 && (w & 0xffff)) return -1;
		if (pad == 1 && (w & 0xff)) return -1;
		if (o + n > outmax)
			return -1;
		out[o++] = (uint8_t)(w >> 16);
		if (n > 1) out[o++] = (uint8_t)(w >> 8);
		if (n > 2) out[o++] = (uint8_t)w;
	}
	return (long)o;
}

enum console_auth_err console_auth_parse(const char *encoded, struct console_auth_hash *out)
{
	memset(out, 0, sizeof(*out));
	if (!encoded)
		return CONSOLE_AUTH_BAD_FORMAT;
	const char *f[4];
	size_t flen[4];
	const char *p = encoded;
	for (int i = 0; i < 4; i++) {
		const char *end = strchr(p, '$');
		if (i < 3 && !end)
			return CONSOLE_AUTH_BAD_FORMAT;
		if (i == 3 && end)
			return CONSOLE_AUTH_BAD_FORMAT;
		f[i] = p;
		flen[i] = end ? (size_t)(end - p) : strlen(p);
		p = end ? end + 1 : p + flen[i];
	}
	if (flen[0] != strlen(CONSOLE_AUTH_SCHEME) || memcmp(f[0], CONSOLE_AUTH_SCHEME, flen[0]) != 0)
		return CONSOLE_AUTH_BAD_SCHEME;
	if (flen[1] == 0 || flen[1] > 8 || f[1][0] == '0')
		return CONSOLE_AUTH_BAD_ITERATIONS;
	unsigned long iter = 0;
	for (size_t i = 0; i < flen[1]; i++) {
		if (f[1][i] < '0' || f[1][i] > '9')
			return CONSOLE_AUTH_BAD_ITERATIONS;
		iter = iter * 10 + (unsigned long)(f[1][i] - '0');
	}
	if (iter < CONSOLE_AUTH_MIN_ITERATIONS || iter > CONSOLE_AUTH_MAX_ITERATIONS)
		return CONSOLE_AUTH_BAD_ITERATIONS;
	long n = b64_decode(f[2], flen[2], out->salt, sizeof(out->salt));
	if (n < CONSOLE_AUTH_SALT_MIN || n > CONSOLE_AUTH_SALT_MAX) {
		memset(out, 0, sizeof(*out));
		return CONSOLE_AUTH_BAD_SALT;
	}
	out->salt_len = (size_t)n;
	uint8_t hash[CONSOLE_AUTH_HASH_LEN + 3];
	n = b64_decode(f[3], flen[3], hash, sizeof(hash));
	if (n != CONSOLE_AUTH_HASH_LEN) {
		memset(out, 0, sizeof(*out));
		return CONSOLE_AUTH_BAD_HASH;
	}
	memcpy(out->hash, hash, CONSOLE_AUTH_HASH_LEN);
	out->iterations = (unsigned)iter;
	return CONSOLE_AUTH_OK;
}

static enum console_auth_err derive(const char *password, size_t len, unsigned iterations,
				    const uint8_t *salt, size_t salt_len,
				    uint8_t key[CONSOLE_AUTH_HASH_LEN])
{
	if (!password || len == 0 || len > CONSOLE_AUTH_PASSWORD_MAX)
		return CONSOLE_AUTH_BAD_PASSWORD;
	if (iterations < CONSOLE_AUTH_MIN_ITERATIONS || iterations > CONSOLE_AUTH_MAX_ITERATIONS)
		return CONSOLE_AUTH_BAD_ITERATIONS;
	if (salt_len < CONSOLE_AUTH_SALT_MIN || salt_len > CONSOLE_AUTH_SALT_MAX)
		return CONSOLE_AUTH_BAD_SALT;
	if (PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)salt_len, (int)iterations,
			      EVP_sha256(), CONSOLE_AUTH_HASH_LEN, key) != 1)
		return CONSOLE_AUTH_CRYPTO;
	return CONSOLE_AUTH_OK;
}

enum console_auth_err console_auth_verify(const struct console_auth_hash *h,
					  const char *password, size_t len)
{
	uint8_t key[CONSOLE_AUTH_HASH_LEN];
	enum console_auth_err err = derive(password, len, h->iterations, h->salt, h->salt_len, key);
	if (err == CONSOLE_AUTH_OK && CRYPTO_memcmp(key, h->hash, sizeof(key)) != 0)
		err = CONSOLE_AUTH_MISMATCH;
	OPENSSL_cleanse(key, sizeof(key));
	return err;
}

enum console_auth_err console_auth_check(const char *encoded, const char *password, size_t len)
{
	struct console_auth_hash h;
	enum console_auth_err err = console_auth_parse(encoded, &h);
	if (err == CONSOLE_AUTH_OK)
		err = console_auth_verify(&h, password, len);
	OPENSSL_cleanse(&h, sizeof(h));
	return err;
}

enum console_auth_err console_auth_hash_with_salt(const char *password, size_t len,
						  unsigned iterations,
						  const uint8_t *salt, size_t salt_len,
						  char *out, size_t outlen)
{
	uint8_t key[CONSOLE_AUTH_HASH_LEN];
	char salt64[4 * ((CONSOLE_AUTH_SALT_MAX + 2) / 3) + 1];
	char key64[4 * ((CONSOLE_AUTH_HASH_LEN + 2) / 3) + 1];
	if (outlen)
		out[0] = '\0';
	enum console_auth_err err = derive(password, len, iterations, salt, salt_len, key);
	if (err != CONSOLE_AUTH_OK)
		return err;
	b64_encode(salt, salt_len, salt64, sizeof(salt64));
	b64_encode(key, sizeof(key), key64, sizeof(key64));
	OPENSSL_cleanse(key, sizeof(key));
	int n = snprintf(out, outlen, "%s$%u$%s$%s", CONSOLE_AUTH_SCHEME, iterations, salt64, key64);
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen)
			out[0] = '\0';
		return CONSOLE_AUTH_BUFFER;
	}
	return CONSOLE_AUTH_OK;
}

enum console_auth_err console_auth_create(const char *password, size_t len,
					  unsigned iterations, char *out, size_t outlen)
{
	uint8_t salt[CONSOLE_AUTH_SALT_LEN];
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return CONSOLE_AUTH_CRYPTO;
	return console_auth_hash_with_salt(password, len, iterations, salt, sizeof(salt), out, outlen);
}

const char *console_auth_strerror(enum console_auth_err err)
{
	switch (err) {
	case CONSOLE_AUTH_OK: return "ok";
	case CONSOLE_AUTH_MISMATCH: return "wrong password";
	case CONSOLE_AUTH_BAD_FORMAT: return "password hash is not " CONSOLE_AUTH_SCHEME "$ITERATIONS$SALT_BASE64$HASH_BASE64";
	case CONSOLE_AUTH_BAD_SCHEME: return "password hash scheme is not " CONSOLE_AUTH_SCHEME;
	case CONSOLE_AUTH_BAD_ITERATIONS: return "password hash iteration count is not a number in 1000..10000000";
	case CONSOLE_AUTH_BAD_SALT: return "password hash salt is not base64 of 8..64 bytes";
	case CONSOLE_AUTH_BAD_HASH: return "password hash value is not base64 of 32 bytes";
	case CONSOLE_AUTH_BAD_PASSWORD: return "password is empty or longer than 256 bytes";
	case CONSOLE_AUTH_BUFFER: return "output buffer too small";
	case CONSOLE_AUTH_CRYPTO: return "libcrypto failure";
	}
	return "unknown error";
}

/* Reads one line (without CR/LF) into buf; returns its length or -1 at EOF
 * with nothing read / on a line too long. */
static long read_line(FILE *in, char *buf, size_t size)
{
	size_t n = 0;
	int ch;
	while ((ch = fgetc(in)) != EOF && ch != '\n') {
		if (n + 1 >= size) {
			while ((ch = fgetc(in)) != EOF && ch != '\n')
				;
			return -2;
		}
		buf[n++] = (char)ch;
	}
	if (ch == EOF && n == 0)
		return -1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (long)n;
}

static long prompt_no_echo(const char *prompt, char *buf, size_t size)
{
	struct termios saved, quiet;
	int have_tty = tcgetattr(STDIN_FILENO, &saved) == 0;
	if (have_tty) {
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	fputs(prompt, stderr);
	fflush(stderr);
	long n = read_line(stdin, buf, size);
	if (have_tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fputc('\n', stderr);
	}
	return n;
}

int console_hash_password_main(int argc, char **argv)
{
	unsigned long iterations = CONSOLE_AUTH_DEFAULT_ITERATIONS;
	const char *verb = argc > 0 ? argv[0] : "hash-password";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
			char *end;
			errno = 0;
			iterations = strtoul(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || iterations < CONSOLE_AUTH_MIN_ITERATIONS ||
			    iterations > CONSOLE_AUTH_MAX_ITERATIONS) {
				fprintf(stderr, "%s: --iterations: '%s' is not a number in %u..%u\n",
					verb, argv[i], CONSOLE_AUTH_MIN_ITERATIONS, CONSOLE_AUTH_MAX_ITERATIONS);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: %s [--iterations N]   (reads the password from stdin)\n", verb);
			return 2;
		}
	}
	char pw[CONSOLE_AUTH_PASSWORD_MAX + 2], again[CONSOLE_AUTH_PASSWORD_MAX + 2];
	int rc = 1;
	long n;
	if (isatty(STDIN_FILENO)) {
		n = prompt_no_echo("password: ", pw, sizeof(pw));
		if (n >= 0) {
			long m = prompt_no_echo("again: ", again, sizeof(again));
			if (m != n || memcmp(pw, again, (size_t)n) != 0) {
				fprintf(stderr, "%s: the two passwords differ\n", verb);
				goto out;
			}
		}
	} else {
		n = read_line(stdin, pw, sizeof(pw));
	}
	if (n == -1) {
		fprintf(stderr, "%s: no password on stdin\n", verb);
		goto out;
	}
	if (n <= 0 || n > (long)CONSOLE_AUTH_PASSWORD_MAX) {
		fprintf(stderr, "%s: %s\n", verb, console_auth_strerror(CONSOLE_AUTH_BAD_PASSWORD));
		goto out;
	}
	char line[CONSOLE_AUTH_ENCODED_MAX];
	enum console_auth_err err = console_auth_create(pw, (size_t)n, (unsigned)iterations, line, sizeof(line));
	if (err != CONSOLE_AUTH_OK) {
		fprintf(stderr, "%s: %s\n", verb, console_auth_strerror(err));
		goto out;
	}
	printf("%s\n", line);
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(again, sizeof(again));
	return rc;
}
