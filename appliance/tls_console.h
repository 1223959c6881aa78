/* Console command of the TLS credentials (tls/tls.h):
 *   show certs   the gateway certificate (SPIFFE ID, validity, days to
 *                expiry, chain length, key type) and each trust bundle
 * The caller owns the struct; the pointers are read at each command, so a
 * reload that replaces the credentials is seen at once. */
#ifndef MESHGATE_TLS_CONSOLE_H
#define MESHGATE_TLS_CONSOLE_H
#include "appliance/console.h"

struct tls_credentials;
struct config;

struct tls_console {
	struct tls_credentials *const *creds;
	struct config *const *cfg;
	struct console_command cmd;
};

enum console_err tls_console_register(struct console_registry *reg, struct tls_console *tc,
				      struct tls_credentials *const *creds, struct config *const *cfg);

#endif
