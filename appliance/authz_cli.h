/* `meshgate authz check`: evaluates one request against policy files with the
 * same engine as the data path. The option parsing and the evaluation are
 * shared with the console's `authz check` (appliance/policy_console.c), so
 * both accept the same flags and print the same line. */
#ifndef MESHGATE_AUTHZ_CLI_H
#define MESHGATE_AUTHZ_CLI_H
#include <stdbool.h>
#include <stdio.h>

#include "appliance/config.h"
#include "appliance/policy.h"

/* Exit codes of the CLI (the console prints the line and counts a DENY as
 * a successful command). */
#define AUTHZ_EXIT_ALLOW 0
#define AUTHZ_EXIT_USAGE 2
#define AUTHZ_EXIT_DENY 3

#define AUTHZ_MAX_FILES 64
#define AUTHZ_MAX_HEADERS 32

/* One parsed `authz check` request. Strings point into the argv given to
 * authz_query_parse (which it modifies: KEY=VALUE is split in place), or
 * into `principal_buf`; the query lives no longer than argv. */
struct authz_query {
	const char *files[AUTHZ_MAX_FILES];
	int nfiles;
	struct config_label labels[CONFIG_MAX_LABELS];
	int nlabels;
	struct policy_header headers[AUTHZ_MAX_HEADERS];
	int nheaders;
	const char *source_namespace;
	struct policy_request req;
	char principal_buf[512];
	bool help;                  /* --help / -h: print the usage, nothing else */
};

/* The options, for both front ends ("meshgate authz check" prints it with
 * that prefix; the console with "authz check"). */
extern const char authz_usage_options[];

/* Parses argv[1..argc-1] (argv[0] is the verb). --config is optional here:
 * the CLI requires it, the console falls back to the running policies.
 * Returns 0, or -1 with the reason (one line, no prefix) in err. */
int authz_query_parse(struct authz_query *q, int argc, char **argv, char *err, size_t errlen);

/* Evaluates q against `policies`. trust_domain (may be NULL or "") names
 * the default principal when only --source-namespace was given; then a
 * one-line note is written to `note` (else note[0] = 0). Writes the
 * decision line (policy_decision_format) to `line`. Returns
 * AUTHZ_EXIT_ALLOW or AUTHZ_EXIT_DENY, or AUTHZ_EXIT_USAGE with the reason
 * in `line` (--source-namespace disagrees with --principal). */
int authz_query_evaluate(struct authz_query *q, const struct policy_set *policies,
			 const char *trust_domain, char *line, size_t linelen,
			 char *note, size_t notelen);

/* argv[0] is "check". Prints one line "ALLOW ..." / "DENY ..." to stdout.
 * Returns the exit code: 0 ALLOW, 3 DENY, 2 usage or configuration error
 * (messages on stderr, FILE:LINE: field: message). */
int authz_check_main(int argc, char **argv);
void authz_usage(FILE *out);

#endif
