/* meshgate authz check: see authz_cli.h. */
#include "appliance/authz_cli.h"
#include "appliance/config.h"
#include "appliance/policy.h"
#include "appliance/yaml_node.h"
#include <stdlib.h>
#include <string.h>

#define AUTHZ_MAX_FILES 64
#define AUTHZ_MAX_HEADERS 32

void authz_usage(FILE *out)
{
	fputs("usage: meshgate authz check --config FILE [--config FILE ...] --workload-namespace NS\n"
	      "         [--workload-label KEY=VALUE ...] [--principal P] [--source-namespace NS]\n"
	      "         [--source-ip IP] [--dest-ip IP] [--dest-port N] [--method M] [--path P]\n"
	      "         [--host H] [--header NAME=VALUE ...] [--sni NAME]\n"
	      "  --principal omitted = plaintext peer; principals are written without spiffe://\n"
	      "  any of --method/--path/--host/--header makes it an HTTP (L7) request\n"
	      "  exit: 0 ALLOW, 3 DENY, 2 usage or configuration error\n", out);
}

static int usage_error(const char *fmt, const char *arg) __attribute__((format(printf, 1, 0)));
static int usage_error(const char *fmt, const char *arg)
{
	char msg[512];
	fprintf(stderr, "meshgate authz check: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(msg, sizeof msg, fmt, arg);  /* fmt is always a literal of this file */
#pragma GCC diagnostic pop
	fputs(msg, stderr);
	fputc('\n', stderr);
	authz_usage(stderr);
	return AUTHZ_EXIT_USAGE;
}

static bool split_kv(char *s, char **k, char **v)
{
	char *eq = strchr(s, '=');
	if (!eq || eq == s)
		return false;
	*eq = 0;
	*k = s;
	*v = eq + 1;
	return true;
}

int authz_check_main(int argc, char **argv)
{
	const char *files[AUTHZ_MAX_FILES];
	int nfiles = 0;
	struct config_label labels[CONFIG_MAX_LABELS];
	int nlabels = 0;
	struct policy_header headers[AUTHZ_MAX_HEADERS];
	int nheaders = 0;
	struct policy_request req;
	const char *source_ns = NULL;
	memset(&req, 0, sizeof req);

	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
			authz_usage(stdout);
			return AUTHZ_EXIT_ALLOW;
		}
		if (strncmp(opt, "--", 2))
			return usage_error("unexpected argument \"%s\"", opt);
		if (i + 1 >= argc)
			return usage_error("%s needs a value", opt);
		char *val = argv[++i];
		char *k, *v;
		if (!strcmp(opt, "--config")) {
			if (nfiles == AUTHZ_MAX_FILES)
				return usage_error("too many --config files (at most 64)%s", "");
			files[nfiles++] = val;
		} else if (!strcmp(opt, "--workload-namespace")) {
			req.workload_namespace = val;
		} else if (!strcmp(opt, "--workload-label")) {
			if (nlabels == CONFIG_MAX_LABELS)
				return usage_error("too many --workload-label (at most 16)%s", "");
			if (!split_kv(val, &k, &v) || strlen(k) >= sizeof labels[0].key ||
			    strlen(v) >= sizeof labels[0].value)
				return usage_error("--workload-label wants KEY=VALUE, got \"%s\"", val);
			snprintf(labels[nlabels].key, sizeof labels[0].key, "%s", k);
			snprintf(labels[nlabels].value, sizeof labels[0].value, "%s", v);
			nlabels++;
		} else if (!strcmp(opt, "--principal")) {
			if (!strncmp(val, "spiffe://", 9))
				val += 9;
			req.principal = val;
		} else if (!strcmp(opt, "--source-namespace")) {
			source_ns = val;
		} else if (!strcmp(opt, "--source-ip") || !strcmp(opt, "--dest-ip")) {
			uint32_t ip;
			if (!yparse_ipv4(val, &ip))
				return usage_error("wants an IPv4 address, got \"%s\"", val);
			if (opt[2] == 's')
				req.source_ip = ip;
			else
				req.dest_ip = ip;
		} else if (!strcmp(opt, "--dest-port")) {
			char *end;
			unsigned long p = strtoul(val, &end, 10);
			if (*end || !*val || p < 1 || p > 65535)
				return usage_error("--dest-port wants a port number 1-65535, got \"%s\"", val);
			req.dest_port = (uint16_t)p;
		} else if (!strcmp(opt, "--method")) {
			req.method = val;
			req.has_l7 = true;
		} else if (!strcmp(opt, "--path")) {
			req.path = val;
			req.path_len = strlen(val);
			req.has_l7 = true;
		} else if (!strcmp(opt, "--host")) {
			req.host = val;
			req.has_l7 = true;
		} else if (!strcmp(opt, "--header")) {
			if (nheaders == AUTHZ_MAX_HEADERS)
				return usage_error("too many --header (at most 32)%s", "");
			if (!split_kv(val, &k, &v))
				return usage_error("--header wants NAME=VALUE, got \"%s\"", val);
			headers[nheaders++] = (struct policy_header){k, strlen(k), v, strlen(v)};
			req.has_l7 = true;
		} else if (!strcmp(opt, "--sni")) {
			req.sni = val;
		} else {
			return usage_error("unknown option \"%s\"", opt);
		}
	}
	if (!nfiles)
		return usage_error("--config FILE is required%s", "");
	if (!req.workload_namespace)
		return usage_error("--workload-namespace NS is required%s", "");
	req.workload_labels = labels;
	req.workload_nlabels = nlabels;
	req.headers = headers;
	req.nheaders = nheaders;

	struct config *cfg = malloc(sizeof *cfg);
	struct config_errors *errs = malloc(sizeof *errs);
	if (!cfg || !errs) {
		free(cfg);
		free(errs);
		fprintf(stderr, "meshgate authz check: out of memory\n");
		return AUTHZ_EXIT_USAGE;
	}
	int rc;
	char principal[512];
	if (config_load_ex(files, nfiles, CONFIG_LOAD_POLICIES_ONLY, cfg, errs) != 0) {
		config_errors_print(errs, stderr);
		rc = AUTHZ_EXIT_USAGE;
		goto out;
	}
	if (source_ns) {
		if (req.principal) {
			const char *ns = strstr(req.principal, "/ns/");
			size_t n = strlen(source_ns);
			if (!ns || strncmp(ns + 4, source_ns, n) || (ns[4 + n] && ns[4 + n] != '/')) {
				fprintf(stderr, "meshgate authz check: --source-namespace %s disagrees with --principal %s "
					"(the source namespace is the principal's /ns/NS/ segment)\n", source_ns, req.principal);
				rc = AUTHZ_EXIT_USAGE;
				config_free(cfg);
				goto out;
			}
		} else {
			/* a namespace implies an mTLS peer: give it the default account */
			snprintf(principal, sizeof principal, "%s/ns/%s/sa/default",
				 cfg->trust_domain[0] ? cfg->trust_domain : "cluster.local", source_ns);
			req.principal = principal;
			fprintf(stderr, "note: --source-namespace without --principal: using principal %s\n", principal);
		}
	}
	struct policy_decision d;
	char line[512];
	policy_evaluate(cfg->policies, &req, &d);
	policy_decision_format(&d, line, sizeof line);
	printf("%s\n", line);
	rc = d.action == POLICY_ALLOW ? AUTHZ_EXIT_ALLOW : AUTHZ_EXIT_DENY;
	config_free(cfg);
out:
	free(cfg);
	free(errs);
	return rc;
}
