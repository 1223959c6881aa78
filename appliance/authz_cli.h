/* `meshgate authz check`: evaluates one request against policy files with the
 * same engine as the data path. */
#ifndef MESHGATE_AUTHZ_CLI_H
#define MESHGATE_AUTHZ_CLI_H
#include <stdio.h>

/* argv[0] is "check". Prints one line "ALLOW ..." / "DENY ..." to stdout.
 * Returns the exit code: 0 ALLOW, 3 DENY, 2 usage or configuration error
 * (messages on stderr, FILE:LINE: field: message). */
#define AUTHZ_EXIT_ALLOW 0
#define AUTHZ_EXIT_USAGE 2
#define AUTHZ_EXIT_DENY 3
int authz_check_main(int argc, char **argv);
void authz_usage(FILE *out);

#endif
