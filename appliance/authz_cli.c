/* meshgate authz check: see authz_cli.h. */
#include "appliance/authz_cli.h"
#include "appliance/yaml_node.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char authz_usage_options[] =
	"[--config FILE ...] --workload-namespace NS\n"
	"         [--workload-label KEY=VALUE ...] [--principal P] [--source-namespace NS]\n"
	"         [--source-ip IP] [--dest-ip IP] [--dest-port N] [--method M] [--path P]\n"
	"         [--host H] [--header NAME=VALUE ...] [--sni NAME]\n"
	"  --principal omitted = plaintext peer; principals are written without spiffe://\n"
	"  any of --method/--path/--host/--header makes it an HTTP (L7) request\n";

void authz_usage(FILE *out)
{
	fprintf(out, "usage: meshgate authz check %s"
		"  --config is required here (the console defaults to the running policies)\n"
		"  exit: 0 ALLOW, 3 DENY, 2 usage or configuration error\n", authz_usage_options);
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
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

int authz_query_parse(struct authz_query *q, int argc, char **argv, char *err, size_t errlen)
{
	memset(q, 0, sizeof *q);
	struct policy_request *req = &q->req;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
			q->help = true;
			return 0;
		}
		if (strncmp(opt, "--", 2))
			return fail(err, errlen, "unexpected argument \"%s\"", opt);
		if (i + 1 >= argc)
			return fail(err, errlen, "%s needs a value", opt);
		char *val = argv[++i];
		char *k, *v;
		if (!strcmp(opt, "--config")) {
			if (q->nfiles == AUTHZ_MAX_FILES)
				return fail(err, errlen, "too many --config files (at most %d)", AUTHZ_MAX_FILES);
			q->files[q->nfiles++] = val;
		} else if (!strcmp(opt, "--workload-namespace")) {
			req->workload_namespace = val;
		} else if (!strcmp(opt, "--workload-label")) {
			struct config_label *l = &q->labels[q->nlabels];
			if (q->nlabels == CONFIG_MAX_LABELS)
				return fail(err, errlen, "too many --workload-label (at most %d)", CONFIG_MAX_LABELS);
			if (!split_kv(val, &k, &v) || strlen(k) >= sizeof l->key || strlen(v) >= sizeof l->value)
				return fail(err, errlen, "--workload-label wants KEY=VALUE, got \"%s\"", val);
			snprintf(l->key, sizeof l->key, "%s", k);
			snprintf(l->value, sizeof l->value, "%s", v);
			q->nlabels++;
		} else if (!strcmp(opt, "--principal")) {
			if (!strncmp(val, "spiffe://", 9))
				val += 9;
			req->principal = val;
		} else if (!strcmp(opt, "--source-namespace")) {
			q->source_namespace = val;
		} else if (!strcmp(opt, "--source-ip") || !strcmp(opt, "--dest-ip")) {
			uint32_t ip;
			if (!yparse_ipv4(val, &ip))
				return fail(err, errlen, "wants an IPv4 address, got \"%s\"", val);
			if (opt[2] == 's')
				req->source_ip = ip;
			else
				req->dest_ip = ip;
		} else if (!strcmp(opt, "--dest-port")) {
			char *end;
			unsigned long p = strtoul(val, &end, 10);
			if (*end || !*val || p < 1 || p > 65535)
				return fail(err, errlen, "--dest-port wants a port number 1-65535, got \"%s\"", val);
			req->dest_port = (uint16_t)p;
		} else if (!strcmp(opt, "--method")) {
			req->method = val;
			req->has_l7 = true;
		} else if (!strcmp(opt, "--path")) {
			req->path = val;
			req->path_len = strlen(val);
			req->has_l7 = true;
		} else if (!strcmp(opt, "--host")) {
			req->host = val;
			req->has_l7 = true;
		} else if (!strcmp(opt, "--header")) {
			if (q->nheaders == AUTHZ_MAX_HEADERS)
				return fail(err, errlen, "too many --header (at most %d)", AUTHZ_MAX_HEADERS);
			if (!split_kv(val, &k, &v))
				return fail(err, errlen, "--header wants NAME=VALUE, got \"%s\"", val);
			q->headers[q->nheaders++] = (struct policy_header){k, strlen(k), v, strlen(v)};
			req->has_l7 = true;
		} else if (!strcmp(opt, "--sni")) {
			req->sni = val;
		} else {
			return fail(err, errlen, "unknown option \"%s\"", opt);
		}
	}
	if (!req->workload_namespace)
		return fail(err, errlen, "--workload-namespace NS is required");
	req->workload_labels = q->labels;
	req->workload_nlabels = q->nlabels;
	req->headers = q->headers;
	req->nheaders = q->nheaders;
	return 0;
}

int authz_query_evaluate(struct authz_query *q, const struct policy_set *policies,
			 const char *trust_domain, char *line, size_t linelen,
			 char *note, size_t notelen)
{
	struct policy_request *req = &q->req;
	const char *sns = q->source_namespace;
	note[0] = 0;
	if (sns) {
		if (req->principal) {
			const char *ns = strstr(req->principal, "/ns/");
			size_t n = strlen(sns);
			if (!ns || strncmp(ns + 4, sns, n) || (ns[4 + n] && ns[4 + n] != '/')) {
				snprintf(line, linelen, "--source-namespace %s disagrees with --principal %s "
					 "(the source namespace is the principal's /ns/NS/ segment)", sns, req->principal);
				return AUTHZ_EXIT_USAGE;
			}
		} else {
			/* a namespace implies an mTLS peer: give it the default account */
			snprintf(q->principal_buf, sizeof q->principal_buf, "%s/ns/%s/sa/default",
				 trust_domain && *trust_domain ? trust_domain : "cluster.local", sns);
			req->principal = q->principal_buf;
			snprintf(note, notelen, "note: --source-namespace without --principal: using principal %s",
				 q->principal_buf);
		}
	}
	struct policy_decision d;
	policy_evaluate(policies, req, &d);
	policy_decision_format(&d, line, linelen);
	return d.action == POLICY_ALLOW ? AUTHZ_EXIT_ALLOW : AUTHZ_EXIT_DENY;
}

int authz_check_main(int argc, char **argv)
{
	/* big enough to keep off the stack of small threads; the CLI runs once */
	static struct authz_query q;
	char msg[512];
	int parsed = authz_query_parse(&q, argc, argv, msg, sizeof msg);
	if (parsed == 0 && q.help) {
		authz_usage(stdout);
		return AUTHZ_EXIT_ALLOW;
	}
	if (parsed == 0 && !q.nfiles) {
		snprintf(msg, sizeof msg, "--config FILE is required");
		parsed = -1;
	}
	if (parsed != 0) {
		fprintf(stderr, "meshgate authz check: %s\n", msg);
		authz_usage(stderr);
		return AUTHZ_EXIT_USAGE;
	}
	struct config *cfg = malloc(sizeof *cfg);
	struct config_errors *errs = malloc(sizeof *errs);
	if (!cfg || !errs) {
		free(cfg);
		free(errs);
		fprintf(stderr, "meshgate authz check: out of memory\n");
		return AUTHZ_EXIT_USAGE;
	}
	int rc;
	if (config_load_ex(q.files, q.nfiles, CONFIG_LOAD_POLICIES_ONLY, cfg, errs) != 0) {
		config_errors_print(errs, stderr);
		rc = AUTHZ_EXIT_USAGE;
		goto out;
	}
	char line[512], note[640];
	rc = authz_query_evaluate(&q, cfg->policies, cfg->trust_domain, line, sizeof line, note, sizeof note);
	if (rc == AUTHZ_EXIT_USAGE) {
		fprintf(stderr, "meshgate authz check: %s\n", line);
	} else {
		if (note[0])
			fprintf(stderr, "%s\n", note);
		printf("%s\n", line);
	}
	config_free(cfg);
out:
	free(cfg);
	free(errs);
	return rc;
}
