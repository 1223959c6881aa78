/* The policy engine's console commands: see policy_console.h. */
#include "appliance/policy_console.h"

#include <stdlib.h>
#include <string.h>

#include "appliance/authz_cli.h"
#include "appliance/config.h"
#include "appliance/policy.h"

static int cmd_show_policies(struct console *c, void *ctx, int argc, char **argv)
{
	const struct policy_console *pc = ctx;
	const struct config *cfg = *pc->cfg;
	if (argc != 1)
		return CONSOLE_CMD_USAGE;
	size_t n = policy_set_count(cfg->policies);
	size_t shown = 0;
	for (size_t i = 0; i < n && console_output_room(c) > 1024; i++, shown++) {
		struct policy_info pi;
		policy_set_info(cfg->policies, i, &pi);
		console_printf(c, "%s/%s %s%s%s  (%s:%d)\n    applies to:", pi.namespace_, pi.name, pi.action,
			       pi.dry_run ? " dry-run" : "", pi.has_l7 ? " L7" : "", pi.file, pi.line);
		int applies = 0;
		for (int s = 0; s < cfg->nservices; s++) {
			const struct config_service *sv = &cfg->services[s];
			if (policy_applies(cfg->policies, i, sv->namespace_, sv->labels, sv->nlabels)) {
				console_printf(c, " %s/%s", sv->namespace_, sv->name);
				applies++;
			}
		}
		console_printf(c, "%s\n", applies ? "" : " no service");
	}
	if (shown < n)
		console_printf(c, "... and %zu more\n", n - shown);
	size_t np = policy_set_peer_count(cfg->policies);
	console_printf(c, "%zu authorization polic%s, %zu peer authentication%s\n", n, n == 1 ? "y" : "ies",
		       np, np == 1 ? "" : "s");
	return CONSOLE_CMD_OK;
}

static void print_usage(struct console *c)
{
	console_printf(c, "usage: authz check %s"
		       "  without --config: the policies in service\n", authz_usage_options);
}

/* Prints config errors the way config_errors_print does (FILE:LINE: field: message). */
static void print_config_errors(struct console *c, const struct config_errors *errs)
{
	char buf[8192];
	FILE *f = fmemopen(buf, sizeof buf, "w");
	if (!f) {
		console_printf(c, "error: the policy files did not load (%d errors)\n", errs->count);
		return;
	}
	config_errors_print(errs, f);
	long len = ftell(f);
	fclose(f);
	if (len > 0)
		console_write(c, buf, (size_t)len < sizeof buf ? (size_t)len : sizeof buf - 1);
}

static int cmd_authz_check(struct console *c, void *ctx, int argc, char **argv)
{
	const struct policy_console *pc = ctx;
	const struct config *running = *pc->cfg;
	struct authz_query *q = calloc(1, sizeof *q);
	if (!q) {
		console_printf(c, "error: out of memory\n");
		return CONSOLE_CMD_FAILED;
	}
	int rc = CONSOLE_CMD_FAILED;
	char msg[512];
	struct config *files_cfg = NULL;
	struct config_errors *errs = NULL;
	if (authz_query_parse(q, argc, argv, msg, sizeof msg) != 0) {
		console_printf(c, "error: %s\n", msg);
		print_usage(c);
		goto out;
	}
	if (q->help) {
		print_usage(c);
		rc = CONSOLE_CMD_OK;
		goto out;
	}
	const struct policy_set *ps = running->policies;
	const char *trust_domain = running->trust_domain;
	if (q->nfiles) {
		files_cfg = calloc(1, sizeof *files_cfg);
		errs = calloc(1, sizeof *errs);
		if (!files_cfg || !errs) {
			console_printf(c, "error: out of memory\n");
			goto out;
		}
		if (config_load_ex(q->files, q->nfiles, CONFIG_LOAD_POLICIES_ONLY, files_cfg, errs) != 0) {
			print_config_errors(c, errs);
			free(files_cfg);
			files_cfg = NULL;
			goto out;
		}
		ps = files_cfg->policies;
		trust_domain = files_cfg->trust_domain;
	}
	char line[512], note[640];
	int r = authz_query_evaluate(q, ps, trust_domain, line, sizeof line, note, sizeof note);
	if (r == AUTHZ_EXIT_USAGE) {
		console_printf(c, "error: %s\n", line);
		goto out;
	}
	if (note[0])
		console_printf(c, "%s\n", note);
	console_printf(c, "%s\n", line);
	rc = CONSOLE_CMD_OK;
out:
	if (files_cfg) {
		config_free(files_cfg);
		free(files_cfg);
	}
	free(errs);
	free(q);
	return rc;
}

enum console_err policy_console_register(struct console_registry *reg, struct policy_console *pc,
					 struct config *const *cfg)
{
	pc->cfg = cfg;
	const struct console_command cmds[POLICY_CONSOLE_COMMANDS] = {
		{"show policies", "", "authorization policies in service and the services they apply to",
		 cmd_show_policies, pc},
		{"authz check", "[--config FILE ...] --workload-namespace NS [OPTION ...]",
		 "evaluate one request like `meshgate authz check` (same flags and line; "
		 "`authz check --help` lists them), against the running policies unless --config",
		 cmd_authz_check, pc},
	};
	for (int i = 0; i < POLICY_CONSOLE_COMMANDS; i++) {
		pc->cmds[i] = cmds[i];
		enum console_err e = console_register(reg, &pc->cmds[i]);
		if (e != CONSOLE_OK)
			return e;
	}
	return CONSOLE_OK;
}
