/* Compiled form of AuthorizationPolicy / PeerAuthentication, shared by the
 * loader (policy_load.c) and the evaluator (policy.c). Not a public contract:
 * only those two files include it.
 *
 * Everything hangs off one policy_set and lives in its arena (strings,
 * rules, match lists) or in arrays it owns; policy_set_free() frees all. */
#ifndef MESHGATE_POLICY_INTERNAL_H
#define MESHGATE_POLICY_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>
#include "appliance/config.h"
#include "appliance/policy.h"

/* Istio string match forms: "exact", "prefix*", "*suffix", "*" (present). */
enum pm_kind { PM_EXACT, PM_PREFIX, PM_SUFFIX, PM_ANY };
struct pmatch { uint8_t kind; uint32_t len; const char *s; };
struct plist { struct pmatch *v; int n; };
struct pcidr { uint32_t net, mask; };          /* host byte order */
struct pcidrs { struct pcidr *v; int n; };
struct pports { uint16_t *v; int n; };

struct psource {
	struct plist principals, not_principals, namespaces, not_namespaces;
	struct pcidrs ip_blocks, not_ip_blocks, remote_ip_blocks, not_remote_ip_blocks;
};

struct poperation {
	/* L7 (HTTP-only) */
	struct plist hosts, not_hosts, methods, not_methods, paths, not_paths;
	/* L4 */
	struct pports ports, not_ports;
};

enum pcond_key {
	COND_SOURCE_IP, COND_REMOTE_IP, COND_SOURCE_NAMESPACE, COND_SOURCE_PRINCIPAL,
	COND_DEST_IP, COND_DEST_PORT, COND_SNI, COND_HEADER,
};

struct pcondition {
	enum pcond_key key;
	const char *header;             /* COND_HEADER: the header name */
	uint32_t header_len;
	struct plist values, not_values;        /* string keys */
	struct pcidrs cidrs, not_cidrs;         /* ip keys */
	struct pports ports, not_ports;         /* destination.port */
};

struct prule {
	struct psource *from; int nfrom;
	struct poperation *to; int nto;
	struct pcondition *when; int nwhen;
	bool l7;                        /* uses an HTTP-only field */
	int policy;                     /* index into set->policies */
};

enum paction { PA_ALLOW, PA_DENY, PA_AUDIT };

struct ppolicy {
	char namespace_[CONFIG_MAX_NAME];
	char name[CONFIG_MAX_NAME];
	const char *file;               /* arena copy */
	int line;
	enum paction action;
	bool dry_run;
	bool has_l7;
	struct config_label *selector; int nselector;   /* arena */
	int first_rule, nrules;         /* into set->rules */
	int scope;                      /* into set->scopes */
};

enum pmtls { PMTLS_UNSET, PMTLS_STRICT, PMTLS_PERMISSIVE, PMTLS_DISABLE };
struct ppeer_port { uint16_t port; enum pmtls mode; };
struct ppeer {
	char namespace_[CONFIG_MAX_NAME];
	char name[CONFIG_MAX_NAME];
	const char *file;
	int line;
	struct config_label *selector; int nselector;
	bool has_selector;
	enum pmtls mode;
	struct ppeer_port *ports; int nports;
};

/* Policies sharing one (namespace, selector): the unit of the workload index. */
struct pscope {
	const char *namespace_;
	const struct config_label *selector; int nselector;
	bool root;                      /* in the root namespace: all workloads */
	bool has_allow;                 /* an enforced ALLOW policy is here */
	bool has_dry_allow;             /* a dry-run ALLOW policy is here */
	int *residual; int nresidual;   /* rules not indexed by principal */
	int next_in_namespace;          /* chain of scopes of one namespace, -1 */
};

/* (scope, principal pattern) → rules that can only match peers that
 * pattern names. The pattern is an exact principal, or the fixed part of a
 * "prefix*" / "*suffix" one (kind PM_EXACT, PM_PREFIX, PM_SUFFIX). */
struct pslot {
	uint64_t hash;                  /* 0 = empty */
	int scope;
	uint8_t kind;
	const char *principal; uint32_t len;
	int first, count;               /* into set->slot_rules */
};
struct pns_slot { uint64_t hash; const char *ns; int first_scope; };

struct arena_chunk;

struct policy_set {
	struct arena_chunk *arena;
	char root_namespace[CONFIG_MAX_NAME];
	struct ppolicy *policies; int npolicies, cap_policies;
	struct prule *rules; int nrules, cap_rules;
	struct ppeer *peers; int npeers, cap_peers;
	/* index, built by policy_builder_finish() */
	struct pscope *scopes; int nscopes;
	int *root_scopes; int nroot_scopes;
	struct pns_slot *ns_slots; uint32_t ns_mask;
	struct pslot *slots; uint32_t slot_mask;
	int *slot_rules; int nslot_rules;
	/* distinct lengths of indexed prefix / suffix patterns: a lookup probes
	 * one slot per length, not one per policy */
	uint32_t *prefix_lens; int nprefix_lens;
	uint32_t *suffix_lens; int nsuffix_lens;
};

void *parena_alloc(struct policy_set *set, size_t size);   /* zeroed; NULL = OOM */
const char *parena_strdup(struct policy_set *set, const char *s, size_t len);
uint64_t phash(const void *data, size_t len, uint64_t seed);
bool plabels_subset(const struct config_label *sel, int nsel, const struct config_label *labels,
		    int nlabels);
/* Builds the index; false on OOM. */
bool pindex_build(struct policy_set *set);

#endif
