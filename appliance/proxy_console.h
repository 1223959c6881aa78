/* Console commands of the proxy (appliance/proxy.h), registered next to it:
 *   show listeners     address, protocol and service of each listener
 *   show services      labels and endpoints
 *   show connections   one line per open connection (peer, SPIFFE ID,
 *                      service, state, bytes, age)
 * plus the counter lines `show counters` prints (run_console.c composes it
 * from every module).
 *
 * The caller owns a `struct proxy_console` that outlives the registry and
 * points it at the run loop's current proxy and config (the config pointer
 * changes on reload, so the commands read it through the pointer). */
#ifndef MESHGATE_PROXY_CONSOLE_H
#define MESHGATE_PROXY_CONSOLE_H
#include <stdint.h>

#include "appliance/console.h"

struct proxy;
struct config;

#define PROXY_CONSOLE_COMMANDS 3

struct proxy_console {
	struct proxy *const *proxy;
	struct config *const *cfg;
	uint32_t (*now_ms)(void);       /* the clock proxy_poll gets */
	struct console_command cmds[PROXY_CONSOLE_COMMANDS];
};

/* Boot time. Returns the first registry error (CONSOLE_OK when all went in). */
enum console_err proxy_console_register(struct console_registry *reg, struct proxy_console *pc,
					struct proxy *const *proxy, struct config *const *cfg,
					uint32_t (*now_ms)(void));

/* "name value" lines: connections, handshakes, requests, policy decisions,
 * bytes, refusals by reason and TLS failures by error. */
void proxy_console_print_counters(struct console *c, const struct proxy *p);

#endif
