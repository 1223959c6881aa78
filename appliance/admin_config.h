/* spec.admin and spec.accessLog of the Appliance document.
 *
 *   spec:
 *     admin:
 *       port: mgmt                 # a spec.ports name: the admin listener's address
 *       listen: 9443               # TCP port (must not clash with a listener there)
 *       allowedPrincipals:         # mTLS peers let in without a password; Istio
 *         - cluster.local/ns/ops/sa/prometheus    # principal form, "spiffe://"
 *         - "cluster.local/ns/ops/sa/grafana-*"  # optional; a trailing * is a prefix
 *       passwordHash: "pbkdf2-sha256$100000$...$..."   # `meshgate console hash-password`
 *       sessionTtl: 1h             # seconds, or a number with s/m/h; default 1h
 *     accessLog:
 *       console: true              # JSON lines on the console (default true)
 *       syslog: 198.18.21.1:514    # optional RFC 5424 over UDP, sent from the
 *                                  # port whose subnet holds the collector
 *
 * The admin listener always speaks TLS with the appliance identity
 * (spec.identity); a client certificate is optional there (browsers log in
 * with the password). At least one of allowedPrincipals / passwordHash is
 * required. Without spec.admin there is no admin listener. Access-log
 * lines are always in the accesslog.h format, on the console unless
 * spec.accessLog says `console: false`.
 *
 * Parsed by admin_config_parse(), called from the Appliance loader in
 * config.c after spec.listeners (so ports and listeners are known); errors
 * are FILE:LINE: spec.admin.FIELD: message. */
#ifndef MESHGATE_ADMIN_CONFIG_H
#define MESHGATE_ADMIN_CONFIG_H
#include <stdbool.h>
#include <stdint.h>

#define CONFIG_ADMIN_MAX_PRINCIPALS 16
#define CONFIG_ADMIN_PRINCIPAL_MAX 300      /* BearSSL caps a SAN URI at 255 */
#define CONFIG_ADMIN_HASH_MAX 160           /* = CONSOLE_AUTH_ENCODED_MAX */
#define CONFIG_ADMIN_DEFAULT_TTL_S 3600u
#define CONFIG_ADMIN_MIN_TTL_S 60u
#define CONFIG_ADMIN_MAX_TTL_S 604800u      /* a week */

struct config_admin {
	bool enabled;
	int port;                       /* index into config.ports */
	uint16_t listen;
	char allowed_principals[CONFIG_ADMIN_MAX_PRINCIPALS][CONFIG_ADMIN_PRINCIPAL_MAX];
	int nallowed;                   /* stored without "spiffe://" */
	char password_hash[CONFIG_ADMIN_HASH_MAX];  /* "" = no password login */
	unsigned session_ttl_s;
	int line;
};

struct config_accesslog {
	bool configured;                /* spec.accessLog present */
	bool console;
	bool syslog;
	uint32_t syslog_ip;             /* network order */
	uint16_t syslog_port;           /* host order */
};

struct ydoc;
struct yaml_node_s;
struct config;

/* Reads spec.admin and spec.accessLog from the spec mapping. */
void admin_config_parse(const struct ydoc *d, const struct yaml_node_s *spec, struct config *cfg);

/* True when principal (without "spiffe://") is allowed by cfg. */
bool admin_principal_allowed(const struct config_admin *cfg, const char *principal);

#endif
