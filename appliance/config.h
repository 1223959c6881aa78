/* Appliance configuration: Kubernetes-style multi-document YAML (libyaml).
 *
 * config_load() reads one or more files, each holding any number of documents:
 * one `kind: Appliance` (exactly one across all files) plus Istio
 * AuthorizationPolicy / PeerAuthentication documents (and later ServiceEntry).
 * Every problem is reported as FILE:LINE: field.path: message; loading goes on
 * after an error so that one run reports every problem it can.
 *
 * Ownership: config_load() allocates (boot / reload time only, never on the
 * data path); config_free() releases everything, including the policy set.
 * Paths in the config (certificates, keys, roots) are resolved relative to the
 * file that names them and stored absolute. */
#ifndef MESHGATE_CONFIG_H
#define MESHGATE_CONFIG_H
#include <stddef.h>
#include <stdint.h>

#include "appliance/admin_config.h"

#define CONFIG_MAX_NAME 64          /* k8s names are at most 63 */
#define CONFIG_MAX_PATH 512
#define CONFIG_MAX_TRUST_DOMAIN 256
#define CONFIG_MAX_PORTS 8
#define CONFIG_MAX_SERVICES 256
#define CONFIG_MAX_LISTENERS 256
#define CONFIG_MAX_LABELS 16
#define CONFIG_MAX_ENDPOINTS 16
#define CONFIG_MAX_TRUST_BUNDLES 16
#define CONFIG_MAX_EAL_ARGS 32
#define CONFIG_MAX_ERRORS 64

struct config_error {
	char file[CONFIG_MAX_PATH];
	int line;                   /* 1-based; 0 when the file itself failed */
	char field[128];            /* e.g. "spec.listeners[0].listen" */
	char message[256];
};

struct config_errors {
	struct config_error items[CONFIG_MAX_ERRORS];
	int count;                  /* may exceed CONFIG_MAX_ERRORS: extra ones dropped */
};

/* Prints "FILE:LINE: field.path: message" lines, one per error. */
#include <stdio.h>
void config_errors_print(const struct config_errors *errs, FILE *out);
void config_error_add(struct config_errors *errs, const char *file, int line,
		      const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

struct config_label { char key[CONFIG_MAX_NAME * 4]; char value[CONFIG_MAX_NAME]; };

struct config_port {
	char name[CONFIG_MAX_NAME];
	char device[256];           /* DPDK device string */
	uint32_t address;           /* network byte order */
	uint8_t prefix;
	uint32_t gateway;           /* network byte order, 0 = none */
	unsigned mbufs;             /* 0 = driver default */
	unsigned mtu;               /* IP MTU, 0 = 1500 */
	bool no_offload;            /* `offload: false`: no TCP segmentation offload */
};

struct config_endpoint { uint32_t ip; uint16_t port; };  /* ip network order, port host order */

struct config_service {
	char name[CONFIG_MAX_NAME];
	char namespace_[CONFIG_MAX_NAME];
	struct config_label labels[CONFIG_MAX_LABELS];
	int nlabels;
	struct config_endpoint endpoints[CONFIG_MAX_ENDPOINTS];
	int nendpoints;
	int builtin_demo;           /* `demo: true`: served by meshgate itself */
};

enum config_protocol { CONFIG_PROTOCOL_TCP, CONFIG_PROTOCOL_HTTP };

struct config_listener {
	char name[CONFIG_MAX_NAME];
	int port;                   /* index into config.ports */
	uint16_t listen;            /* TCP port */
	enum config_protocol protocol;
	int service;                /* index into config.services */
	int line;                   /* where it was declared, for messages */
};

struct config_trust_bundle {
	char trust_domain[CONFIG_MAX_TRUST_DOMAIN];
	char roots[CONFIG_MAX_PATH];    /* PEM file, absolute */
};

struct config_limits {
	unsigned max_connections;   /* downstream connections (default 4096) */
	unsigned handshake_timeout_ms;  /* default 10000 */
	unsigned idle_timeout_ms;   /* default 300000 */
	unsigned connect_timeout_ms;    /* upstream connect, default 5000 */
	unsigned max_request_head;  /* bytes, default 16384 */
};

struct policy_set;
struct egress_config;

struct config {
	char file0[CONFIG_MAX_PATH];        /* first file, for messages */
	char name[CONFIG_MAX_NAME];         /* metadata.name of the Appliance */
	char trust_domain[CONFIG_MAX_TRUST_DOMAIN];
	char root_namespace[CONFIG_MAX_NAME];  /* default "istio-system" */
	char identity_chain[CONFIG_MAX_PATH];
	char identity_key[CONFIG_MAX_PATH];
	struct config_trust_bundle trust_bundles[CONFIG_MAX_TRUST_BUNDLES];
	int ntrust_bundles;
	char eal_args[CONFIG_MAX_EAL_ARGS][128];
	int neal_args;
	struct config_port ports[CONFIG_MAX_PORTS];
	int nports;
	struct config_service services[CONFIG_MAX_SERVICES];
	int nservices;
	struct config_listener listeners[CONFIG_MAX_LISTENERS];
	int nlisteners;
	struct config_limits limits;
	struct config_admin admin;             /* spec.admin (admin_config.h) */
	struct config_accesslog access_log;     /* spec.accessLog */
	struct policy_set *policies;        /* owned; never NULL after a good load */
	/* Problems that do not stop the load, same format as errors, for the
	 * appliance to log: e.g. an AuthorizationPolicy with HTTP-only fields
	 * that applies to a tcp listener (ALLOW rules needing them never match,
	 * DENY rules are enforced without them, as ztunnel does). */
	struct config_errors warnings;
	int appliance_line;                 /* where the Appliance document starts */
	/* spec.console.passwordHash (config_console.h); "" = no console login */
	char console_password_hash[160];
	/* spec.egress, spec.networkPolicies, ServiceEntry documents (egress.h);
	 * NULL when the config has none of them. Owned. */
	struct egress_config *egress;
};

/* Loads and validates. Returns 0 on success; on any error returns -1 with
 * `errs` filled and `out` left empty (nothing to free). Cross-references are
 * checked: listener.port / listener.service name existing entries, listen
 * ports unique per port, every trust bundle readable, the identity files
 * readable (their content is checked by tls/). */
int config_load(const char *const *files, int nfiles, struct config *out,
		struct config_errors *errs);

/* Same, from an in-memory buffer named `name` in messages (embedded demo,
 * console upload). Relative paths resolve against `base_dir`. */
int config_load_buffer(const char *name, const char *base_dir, const char *text,
		       size_t len, struct config *out, struct config_errors *errs);

/* config_load with flags. CONFIG_LOAD_POLICIES_ONLY: the files may hold no
 * Appliance document (e.g. `meshgate authz check`); then only `policies`,
 * `file0`, `root_namespace` ("istio-system") and `warnings` are filled. An
 * Appliance document, if present, is still fully validated. */
#define CONFIG_LOAD_POLICIES_ONLY 1u
int config_load_ex(const char *const *files, int nfiles, unsigned flags, struct config *out,
		   struct config_errors *errs);

void config_free(struct config *cfg);

/* Index of the service named "NAME" or "NAMESPACE/NAME", -1 if none. */
int config_service_by_name(const struct config *cfg, const char *name);

const struct config_port *config_port_by_name(const struct config *cfg, const char *name);

#endif
