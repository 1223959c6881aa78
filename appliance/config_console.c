/* spec.console: see config_console.h. */
#include "appliance/config_console.h"

#include <string.h>

#include "appliance/console_auth.h"

_Static_assert(sizeof(((struct config *)0)->console_password_hash) >= CONSOLE_AUTH_ENCODED_MAX,
	       "config.console_password_hash holds an encoded hash");

void config_parse_console(const struct ydoc *d, const yaml_node_t *n, struct config *cfg)
{
	if (!yget_map(d, n, "spec.console"))
		return;
	static const char *const keys[] = {"passwordHash", NULL};
	ymap_check_keys(d, n, "spec.console", keys);
	yaml_node_t *v = ymap_get(d, n, "passwordHash");
	if (!v)
		return;
	char *out = cfg->console_password_hash;
	if (!yget_str(d, v, "spec.console.passwordHash", out, sizeof cfg->console_password_hash))
		return;
	struct console_auth_hash h;
	enum console_auth_err e = console_auth_parse(out, &h);
	memset(&h, 0, sizeof h);
	if (e != CONSOLE_AUTH_OK) {
		yerr(d, v, "spec.console.passwordHash", "%s (expected the output of `meshgate console "
		     "hash-password`: pbkdf2-sha256$ITERATIONS$SALT$HASH)", console_auth_strerror(e));
		out[0] = 0;
	}
}
