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
	 * decided (no ALLOW policy applies → allow; none matched → deny) */
	char policy_namespace[64];
	char policy_name[64];
	/* dry-run: set when a dry-run policy matched */
	bool dry_run_matched;
	enum policy_action dry_run_action;  /* what it would have done */
	char dry_run_namespace[64];
	char dry_run_name[64];
	bool audit;                 /* an AUDIT policy matched */
};

void policy_evaluate(const struct policy_set *set, const struct policy_request *req,
		     struct policy_decision *out);

/* Formats "ALLOW ns/name" / "DENY ns/name dry-run ..." as the CLI prints it. */
int policy_decision_format(const struct policy_decision *d, char *buf, size_t len);

/* PeerAuthentication: mTLS mode for a workload on a port. */
enum policy_mtls_mode { POLICY_MTLS_STRICT, POLICY_MTLS_PERMISSIVE, POLICY_MTLS_DISABLE };
enum policy_mtls_mode policy_mtls_mode(const struct policy_set *set, const char *workload_namespace,
				       const struct config_label *labels, int nlabels, uint16_t port);

size_t policy_set_count(const struct policy_set *set);
void policy_set_free(struct policy_set *set);

#endif
