/* Per-module console commands on the host (no DPDK, no lwIP traffic):
 * policy_console (show policies, authz check against the running set and
 * against --config files, errors) and the spec.console section of the
 * Appliance document (config_console). The run loop's commands and the
 * proxy's are exercised end to end by tests/console/test_console_e2e.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "appliance/authz_cli.h"
#include "appliance/config.h"
#include "appliance/console.h"
#include "appliance/console_auth.h"
#include "appliance/policy_console.h"

static struct console con;
static struct console_registry reg;
static struct policy_console pcmds;
static struct config *running;
static char out[CONSOLE_OUT_SIZE + 1];

static struct config *load(const char *file, unsigned flags)
{
	struct config *cfg = calloc(1, sizeof *cfg);
	struct config_errors *errs = calloc(1, sizeof *errs);
	assert_non_null(cfg);
	const char *files[] = {file};
	if (config_load_ex(files, 1, flags, cfg, errs) != 0) {
		config_errors_print(errs, stderr);
		fail_msg("%s does not load", file);
	}
	free(errs);
	return cfg;
}

static void unload(struct config *cfg)
{
	config_free(cfg);
	free(cfg);
}

/* Runs one line; returns the handler's result, output in `out`. */
static int run(const char *line)
{
	int rc = console_execute(&con, line, 1000);
	const char *p;
	size_t n = console_output(&con, &p);
	memcpy(out, p, n);
	out[n] = 0;
	console_output_consume(&con, n);
	if (getenv("SHOW_OUTPUT"))
		fprintf(stderr, "[%s]\n%s", line, out);
	return rc;
}

static int setup(void **state)
{
	running = load("data/config/good/edge.yaml", 0);
	console_registry_init(&reg);
	assert_int_equal(policy_console_register(&reg, &pcmds, &running), CONSOLE_OK);
	assert_int_equal(console_init(&con, &reg, CONSOLE_LINES, NULL, NULL), CONSOLE_OK);
	return 0;
}

static int teardown(void **state)
{
	unload(running);
	running = NULL;
	return 0;
}

static void test_show_policies(void **state)
{
	assert_int_equal(run("show policies"), CONSOLE_CMD_OK);
	assert_non_null(strstr(out, "production/allow-frontend ALLOW L7  (data/config/good/edge.yaml:25)\n"
				    "    applies to: production/backend-api\n"));
	assert_non_null(strstr(out, "1 authorization policy, 1 peer authentication\n"));
	assert_int_equal(run("show policies extra"), CONSOLE_CMD_USAGE);
}

static void test_authz_running_set(void **state)
{
	assert_int_equal(run("authz check --workload-namespace production --workload-label app=backend-api "
			     "--principal spiffe://cluster.local/ns/production/sa/frontend --method GET --path /api/x"),
			 CONSOLE_CMD_OK);
	assert_string_equal(out, "ALLOW production/allow-frontend\n");
	/* a DENY is a decision, not a failed command */
	assert_int_equal(run("authz check --workload-namespace production --workload-label app=backend-api "
			     "--principal cluster.local/ns/production/sa/frontend --method POST --path /api/x"),
			 CONSOLE_CMD_OK);
	assert_string_equal(out, "DENY (no ALLOW policy matched)\n");
	assert_int_equal(run("authz check --workload-namespace production --workload-label app=backend-api "
			     "--source-namespace production"), CONSOLE_CMD_OK);
	assert_string_equal(out, "note: --source-namespace without --principal: using principal "
			    "cluster.local/ns/production/sa/default\nDENY (no ALLOW policy matched)\n");
}

static void test_authz_sees_reload(void **state)
{
	struct config *old = running;
	running = load("data/policy/order.yaml", CONFIG_LOAD_POLICIES_ONLY);
	assert_int_equal(run("authz check --workload-namespace prod --principal cluster.local/ns/prod/sa/admin"),
			 CONSOLE_CMD_OK);
	assert_string_equal(out, "DENY prod/deny-admin audit\n");
	assert_int_equal(run("show policies"), CONSOLE_CMD_OK);
	assert_non_null(strstr(out, "prod/deny-admin DENY  (data/policy/order.yaml:"));
	unload(running);
	running = old;
}

static void test_authz_config_files(void **state)
{
	assert_int_equal(run("authz check --config data/policy/dry_run.yaml --workload-namespace d "
			     "--principal td/ns/b/sa/b"), CONSOLE_CMD_OK);
	assert_string_equal(out, "ALLOW (no ALLOW policy applies) dry-run: would have denied by d/try-deny-b\n");
	assert_int_equal(run("authz check --config data/policy/bad.yaml --workload-namespace b"), CONSOLE_CMD_FAILED);
	assert_non_null(strstr(out, "data/policy/bad.yaml:5: spec.action: CUSTOM (external authorization) is not supported by meshgate"));
	assert_int_equal(run("authz check --config data/policy/none.yaml --workload-namespace b"), CONSOLE_CMD_FAILED);
	assert_non_null(strstr(out, "none.yaml: cannot read: No such file or directory"));
}

static void test_authz_errors(void **state)
{
	assert_int_equal(run("authz check --principal x"), CONSOLE_CMD_FAILED);
	assert_non_null(strstr(out, "error: --workload-namespace NS is required\nusage: authz check [--config FILE ...]"));
	assert_int_equal(run("authz check --workload-namespace b --dest-port 0"), CONSOLE_CMD_FAILED);
	assert_non_null(strstr(out, "error: --dest-port wants a port number 1-65535, got \"0\"\n"));
	assert_int_equal(run("authz check --workload-namespace b --header novalue"), CONSOLE_CMD_FAILED);
	assert_non_null(strstr(out, "error: --header wants NAME=VALUE, got \"novalue\"\n"));
	assert_int_equal(run("authz check --workload-namespace b --principal cluster.local/ns/a/sa/x "
			     "--source-namespace b"), CONSOLE_CMD_FAILED);
	assert_non_null(strstr(out, "error: --source-namespace b disagrees with --principal"));
	assert_int_equal(run("authz check --help"), CONSOLE_CMD_OK);
	assert_non_null(strstr(out, "without --config: the policies in service"));
	assert_int_equal(run("authz check --workload-namespace"), CONSOLE_CMD_FAILED);
	assert_non_null(strstr(out, "error: --workload-namespace needs a value"));
}

/* ------------------------------------------------------------ spec.console */

static const char appliance_head[] =
	"apiVersion: meshgate.dev/v1alpha1\n"
	"kind: Appliance\n"
	"metadata: {name: c}\n"
	"spec:\n"
	"  trustDomain: cluster.local\n"
	"  identity: {certificateChain: gw.pem, privateKey: gw.key}\n"
	"  trustBundles: [{trustDomain: cluster.local, roots: ca.pem}]\n"
	"  ports: [{name: p, device: net_ring0, address: 198.18.16.2/24}]\n";

static int load_console_section(const char *section, struct config *cfg, struct config_errors *errs)
{
	char text[2048];
	snprintf(text, sizeof text, "%s%s", appliance_head, section);
	memset(cfg, 0, sizeof *cfg);
	memset(errs, 0, sizeof *errs);
	return config_load_buffer("console.yaml", "data/config/good", text, strlen(text), cfg, errs);
}

static void test_config_console(void **state)
{
	struct config *cfg = calloc(1, sizeof *cfg);
	struct config_errors *errs = calloc(1, sizeof *errs);
	char hash[CONSOLE_AUTH_ENCODED_MAX], section[512];
	assert_int_equal(console_auth_create("s3cret", 6, 1000, hash, sizeof hash), CONSOLE_AUTH_OK);

	snprintf(section, sizeof section, "  console: {passwordHash: \"%s\"}\n", hash);
	assert_int_equal(load_console_section(section, cfg, errs), 0);
	assert_string_equal(cfg->console_password_hash, hash);
	assert_int_equal(console_auth_check(cfg->console_password_hash, "s3cret", 6), CONSOLE_AUTH_OK);
	config_free(cfg);

	assert_int_equal(load_console_section("", cfg, errs), 0);
	assert_string_equal(cfg->console_password_hash, "");
	config_free(cfg);

	/* a password in clear, a tampered hash, an unknown key: FILE:LINE: field */
	assert_int_equal(load_console_section("  console:\n    passwordHash: hunter2\n", cfg, errs), -1);
	assert_int_equal(errs->count, 1);
	assert_string_equal(errs->items[0].file, "console.yaml");
	assert_int_equal(errs->items[0].line, 10);
	assert_string_equal(errs->items[0].field, "spec.console.passwordHash");
	assert_non_null(strstr(errs->items[0].message, "hash-password"));

	hash[strlen(hash) - 2] = '!';
	snprintf(section, sizeof section, "  console: {passwordHash: \"%s\"}\n", hash);
	assert_int_equal(load_console_section(section, cfg, errs), -1);
	assert_string_equal(errs->items[0].field, "spec.console.passwordHash");

	assert_int_equal(load_console_section("  console: {password: x}\n", cfg, errs), -1);
	assert_string_equal(errs->items[0].field, "spec.console.password");
	assert_int_equal(load_console_section("  console: [x]\n", cfg, errs), -1);
	assert_string_equal(errs->items[0].field, "spec.console");
	free(cfg);
	free(errs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_show_policies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authz_running_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authz_sees_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authz_config_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authz_errors, setup, teardown),
		cmocka_unit_test(test_config_console),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
