/* Identity policy engine: Istio AuthorizationPolicy / PeerAuthentication
 * semantics, evaluated per connection (tcp listeners) or per request (http).
 *
 * The engine does no I/O. A policy_set is built at config load (allocation is
 * fine there), is immutable afterwards, and is shared read-only by the data
 * path; a reload builds a new set and swaps the pointer between loop
 * iterations. policy_evaluate() never allocates. */
#ifndef MESHGATE_POLICY_H
#define MESHGATE_POLICY_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct policy_set;
struct config_errors;
struct config_label;

enum policy_action { POLICY_ALLOW = 0, POLICY_DENY = 1 };

struct policy_header { const char *name; size_t name_len; const char *value; size_t value_len; };

/* What is known about one connection or request. Strings are not owned and
 * need not be NUL-terminated where a length is given; NULL = absent. */
struct policy_request {
	/* the workload: the service the listener fronts */
	const char *workload_namespace;
	const struct config_label *workload_labels;
	int workload_nlabels;
	/* the peer: principal without "spiffe://", e.g.
	 * "cluster.local/ns/prod/sa/frontend"; NULL = plaintext peer */
	const char *principal;
	uint32_t source_ip;         /* network byte order */
	uint32_t dest_ip;           /* network byte order */
	uint16_t dest_port;         /* host order */
	const char *sni;            /* may be NULL */
	/* L7: only for http listeners (has_l7 = true) */
	bool has_l7;
	const char *method;
	const char *path;           /* with query; the engine drops "?..." */
	size_t path_len;
	const char *host;
	const struct policy_header *headers;
	int nheaders;
};

struct policy_decision {
	enum policy_action action;
	/* the policy that decided (DENY match or ALLOW match); empty when none
	 * decided (no ALLOW policy applies → allow; none matched → deny).
	 * no_allow_applies tells the two "none" cases apart. */
	bool no_allow_applies;
	char policy_namespace[64];
	char policy_name[64];
	/* dry-run (annotation istio.io/dry-run: "true"): evaluated, never
	 * enforced. Set when a dry-run DENY matched (would have denied by it),
	 * else when dry-run ALLOW policies apply to the workload: one matched
	 * (would have allowed by it) or none did (would have denied; name
	 * empty), as Envoy's shadow rules report it. */
	bool dry_run_matched;
	enum policy_action dry_run_action;  /* what it would have done */
	char dry_run_namespace[64];
	char dry_run_name[64];
	bool audit;                 /* an AUDIT policy matched */
};

void policy_evaluate(const struct policy_set *set, const struct policy_request *req,
		     struct policy_decision *out);

/* Formats the decision as the CLI prints it, e.g.
 *   "ALLOW production/allow-frontend"
 *   "ALLOW (no ALLOW policy applies)"
 *   "DENY (no ALLOW policy matched)"
 *   "DENY production/deny-x audit dry-run: would have allowed by ns/name"
 * Returns snprintf's result. */
int policy_decision_format(const struct policy_decision *d, char *buf, size_t len);

/* PeerAuthentication: mTLS mode for a workload on a port. */
enum policy_mtls_mode { POLICY_MTLS_STRICT, POLICY_MTLS_PERMISSIVE, POLICY_MTLS_DISABLE };
enum policy_mtls_mode policy_mtls_mode(const struct policy_set *set, const char *workload_namespace,
				       const struct config_label *labels, int nlabels, uint16_t port);

/* Number of AuthorizationPolicy documents in the set. */
size_t policy_set_count(const struct policy_set *set);
/* Number of PeerAuthentication documents in the set. */
size_t policy_set_peer_count(const struct policy_set *set);
void policy_set_free(struct policy_set *set);

/* ---- building (boot / reload time; allocates) ----
 * config_load() drives a builder with every AuthorizationPolicy and
 * PeerAuthentication document it meets; the CLI and tests can use
 * policy_set_from_yaml() on text holding only such documents. Validation
 * problems are reported to `errs` as FILE:LINE: field.path: message. */
struct policy_builder;
struct yaml_document_s;
struct yaml_node_s;

struct policy_builder *policy_builder_new(void);
/* `root` is the document's top mapping; its `kind` selects the parser.
 * Returns false when the document had errors (they are in `errs`). */
bool policy_builder_add(struct policy_builder *b, struct yaml_document_s *doc,
			struct yaml_node_s *root, const char *file, struct config_errors *errs);
/* Indexes and returns the set (NULL when out of memory); consumes `b`.
 * `root_namespace` NULL = "istio-system". */
struct policy_set *policy_builder_finish(struct policy_builder *b, const char *root_namespace);
void policy_builder_free(struct policy_builder *b);

/* Parses multi-document YAML text with only AuthorizationPolicy /
 * PeerAuthentication documents (`name` is used in messages). Returns 0 and
 * *out on success, -1 with errs filled otherwise. */
int policy_set_from_yaml(const char *name, const char *text, size_t len,
			 const char *root_namespace, struct policy_set **out,
			 struct config_errors *errs);

/* ---- introspection (for load-time warnings and the console) ---- */
struct policy_info {
	const char *namespace_;
	const char *name;
	const char *file;
	int line;
	const char *action;         /* "ALLOW", "DENY", "AUDIT" */
	bool dry_run;
	bool has_l7;                /* uses HTTP-only fields (methods, paths,
				     * hosts, request.headers): on tcp listeners
				     * its ALLOW rules needing them never match and
				     * its DENY/AUDIT rules drop them */
};
/* i in [0, policy_set_count). */
void policy_set_info(const struct policy_set *set, size_t i, struct policy_info *out);
/* Whether AuthorizationPolicy i applies to the workload (namespace, selector). */
bool policy_applies(const struct policy_set *set, size_t i, const char *workload_namespace,
		    const struct config_label *labels, int nlabels);

#endif
