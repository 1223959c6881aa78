/* meshgate config validate: see config_cli.h. */
#include "appliance/config_cli.h"
#include "appliance/config.h"
#include "appliance/policy.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALIDATE_MAX_FILES 64

int config_validate_main(int argc, char **argv)
{
	const char *files[VALIDATE_MAX_FILES];
	int nfiles = 0;
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i];
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: meshgate config validate --config FILE [--config FILE ...]\n"
			       "  exit 0 when valid, 2 with FILE:LINE: field: message lines on stderr\n");
			return 0;
		}
		if (!strcmp(argv[i], "--config")) {
			if (++i >= argc) {
				fprintf(stderr, "meshgate config validate: --config needs a file\n");
				return 2;
			}
			f = argv[i];
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "meshgate config validate: unknown option \"%s\"\n", argv[i]);
			return 2;
		}
		if (nfiles == VALIDATE_MAX_FILES) {
			fprintf(stderr, "meshgate config validate: at most %d files\n", VALIDATE_MAX_FILES);
			return 2;
		}
		files[nfiles++] = f;
	}
	if (!nfiles) {
		fprintf(stderr, "usage: meshgate config validate --config FILE [--config FILE ...]\n");
		return 2;
	}
	struct config *cfg = malloc(sizeof *cfg);
	struct config_errors *errs = malloc(sizeof *errs);
	int rc = 2;
	if (!cfg || !errs) {
		fprintf(stderr, "meshgate config validate: out of memory\n");
	} else if (config_load(files, nfiles, cfg, errs) != 0) {
		config_errors_print(errs, stderr);
		fprintf(stderr, "%d problem%s found\n", errs->count, errs->count == 1 ? "" : "s");
	} else {
		if (cfg->warnings.count) {
			fprintf(stderr, "warnings:\n");
			config_errors_print(&cfg->warnings, stderr);
		}
		for (int i = 0; i < nfiles; i++)
			printf("%s: ok\n", files[i]);
		printf("appliance %s: trust domain %s, %d port%s, %d service%s, %d listener%s, "
		       "%zu AuthorizationPolic%s, %zu PeerAuthentication%s, %d warning%s\n",
		       cfg->name, cfg->trust_domain, cfg->nports, cfg->nports == 1 ? "" : "s",
		       cfg->nservices, cfg->nservices == 1 ? "" : "s", cfg->nlisteners,
		       cfg->nlisteners == 1 ? "" : "s", policy_set_count(cfg->policies),
		       policy_set_count(cfg->policies) == 1 ? "y" : "ies",
		       policy_set_peer_count(cfg->policies), policy_set_peer_count(cfg->policies) == 1 ? "" : "s",
		       cfg->warnings.count, cfg->warnings.count == 1 ? "" : "s");
		config_free(cfg);
		rc = 0;
	}
	free(cfg);
	free(errs);
	return rc;
}
