/* Console commands of the policy engine (appliance/policy.h):
 *   show policies   every AuthorizationPolicy in service: action, dry-run,
 *                   L7, where it was read, and which services it applies to
 *   authz check     the `meshgate authz check` flags and output line
 *                   (appliance/authz_cli.h), evaluated against the running
 *                   policy set; with --config FILE... against those files.
 * The caller owns the struct (outliving the registry); the config pointer
 * is read at each command so a reload is seen at once. */
#ifndef MESHGATE_POLICY_CONSOLE_H
#define MESHGATE_POLICY_CONSOLE_H
#include "appliance/console.h"

struct config;

#define POLICY_CONSOLE_COMMANDS 2

struct policy_console {
	struct config *const *cfg;
	struct console_command cmds[POLICY_CONSOLE_COMMANDS];
};

enum console_err policy_console_register(struct console_registry *reg, struct policy_console *pc,
					 struct config *const *cfg);

#endif
