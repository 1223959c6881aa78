/* Policy decision benchmark: ns/decision at 10, 1,000 and 100,000
 * AuthorizationPolicies, exact principals only and a mix with wildcards
 * (2 in 100 policies use a prefix or suffix principal pattern: those sit
 * in the residual list, evaluated linearly, so that case grows with n).
 * Median of 5 runs. Policies are generated as YAML and loaded by the real
 * loader. Run with `make bench-policy`. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "appliance/config.h"
#include "appliance/policy.h"

#define RUNS 5
#define DECISIONS 400000

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static char *gen(int n, bool mix, size_t *len)
{
	size_t cap = (size_t)n * 400 + 1024, off = 0;
	char *s = malloc(cap);
	for (int i = 0; i < n; i++) {
		char principal[128];
		if (mix && i % 100 == 5)
			snprintf(principal, sizeof principal, "cluster.local/ns/team%d/*", i);
		else if (mix && i % 100 == 7)
			snprintf(principal, sizeof principal, "*/sa/robot%d", i);
		else
			snprintf(principal, sizeof principal, "cluster.local/ns/ns%d/sa/client%d", i % 50, i);
		off += (size_t)snprintf(s + off, cap - off,
			"---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
			"metadata: {name: p%d, namespace: prod}\nspec:\n  action: %s\n"
			"  selector: {matchLabels: {app: api}}\n  rules:\n"
			"  - from: [{source: {principals: [\"%s\"]}}]\n    to: [{operation: {ports: [\"8443\"]}}]\n",
			i, i % 7 == 3 ? "DENY" : "ALLOW", principal);
	}
	*len = off;
	return s;
}

int main(void)
{
	static const int sizes[] = {10, 1000, 100000};
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("%-8s %-10s %14s %12s\n", "policies", "kind", "decisions/s", "ns/decision");
	for (int mix = 0; mix <= 1; mix++)
		for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
			int n = sizes[si];
			size_t len;
			char *text = gen(n, mix, &len);
			struct policy_set *set;
			struct config_errors *errs = calloc(1, sizeof *errs);
			double t0 = now();
			if (policy_set_from_yaml("bench.yaml", text, len, NULL, &set, errs)) {
				config_errors_print(errs, stderr);
				return 1;
			}
			double load = now() - t0;
			/* requests: a rotating set of principals, most hit exact entries */
			enum { NP = 1024 };
			static char principals[NP][128];
			for (int i = 0; i < NP; i++) {
				int k = (int)(((unsigned)i * 2654435761u) % (unsigned)n);
				snprintf(principals[i], sizeof principals[i], "cluster.local/ns/ns%d/sa/client%d", k % 50, k);
			}
			struct config_label label = {"app", "api"};
			struct policy_request r;
			memset(&r, 0, sizeof r);
			r.workload_namespace = "prod";
			r.workload_labels = &label;
			r.workload_nlabels = 1;
			r.source_ip = inet_addr("198.18.0.9");
			r.dest_port = 8443;
			double ns[RUNS];
			long allow = 0;
			for (int run = 0; run < RUNS; run++) {
				struct policy_decision d;
				double t = now(), el;
				long done = 0;
				/* at most DECISIONS, at most ~0.3 s per run */
				do {
					for (int i = 0; i < 1024; i++, done++) {
						r.principal = principals[done & (NP - 1)];
						policy_evaluate(set, &r, &d);
						allow += d.action == POLICY_ALLOW;
					}
					el = now() - t;
				} while (done < DECISIONS && el < 0.3);
				ns[run] = el * 1e9 / (double)done;
			}
			qsort(ns, RUNS, sizeof ns[0], cmp);
			printf("%-8d %-10s %14.0f %12.1f   (load %.2f s, %ld allowed)\n", n,
			       mix ? "wildcards" : "exact", 1e9 / ns[RUNS / 2], ns[RUNS / 2], load, allow);
			policy_set_free(set);
			free(errs);
			free(text);
		}
	return 0;
}
