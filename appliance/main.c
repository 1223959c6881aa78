/* meshgate command line. The only place that exits (STYLE.md habit 6). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/run.h"
#include "appliance/authz_cli.h"
#include "appliance/config_cli.h"
#include "appliance/console_auth.h"

#ifndef MESHGATE_VERSION
#define MESHGATE_VERSION "unknown"
#endif

static void usage(FILE *out)
{
	fprintf(out,
		"usage: meshgate COMMAND [options]\n"
		"\n"
		"  run [--config FILE ...] [--console stdio|pty|DEVICE] [--state-dir DIR] [--busy-poll]\n"
		"        run the appliance; with no --config, the embedded demo (a net_tap port,\n"
		"        a demo PKI under the state directory, a built-in demo service)\n"
		"  config validate --config FILE [--config FILE ...]\n"
		"        check configuration files; exit 0, or 2 with FILE:LINE: field: message lines\n"
		"  authz check --config FILE ... --workload-namespace NS [options]\n"
		"        evaluate the policies for one request; exit 0 ALLOW, 3 DENY, 2 error\n"
		"  console hash-password\n"
		"        read a password on stdin, print the salted hash for the config\n"
		"  version\n");
}

static int run_main(int argc, char **argv)
{
	struct run_options o;
	memset(&o, 0, sizeof o);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--config") == 0 && i + 1 < argc) {
			if (o.nconfigs >= RUN_MAX_CONFIGS) {
				fprintf(stderr, "meshgate: at most %d --config files\n", RUN_MAX_CONFIGS);
				return 2;
			}
			o.configs[o.nconfigs++] = argv[++i];
		} else if (strcmp(a, "--console") == 0 && i + 1 < argc) {
			o.console = argv[++i];
		} else if (strcmp(a, "--state-dir") == 0 && i + 1 < argc) {
			o.state_dir = argv[++i];
		} else if (strcmp(a, "--busy-poll") == 0) {
			o.busy_poll = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "meshgate run: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	return run_appliance(&o);
}

int main(int argc, char **argv)
{
	if (run_is_pid1())
		return run_as_init(argc, argv);   /* never returns */
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "run") == 0)
		return run_main(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("meshgate %s (DPDK 22.11, lwIP 2.1.3, BearSSL 0.6)\n", MESHGATE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "config") == 0 && argc >= 3 && strcmp(argv[2], "validate") == 0)
		return config_validate_main(argc - 2, argv + 2);
	if (strcmp(cmd, "authz") == 0 && argc >= 3 && strcmp(argv[2], "check") == 0)
		return authz_check_main(argc - 2, argv + 2);
	if (strcmp(cmd, "console") == 0 && argc >= 3 && strcmp(argv[2], "hash-password") == 0)
		return console_hash_password_main(argc - 2, argv + 2);
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "meshgate: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
