/* The Appliance document's `spec.console` section (config.c calls this):
 *
 *   console:
 *     passwordHash: "pbkdf2-sha256$100000$SALT$HASH"   # meshgate console hash-password
 *
 * Only a salted hash is accepted, never a password; a malformed hash is a
 * FILE:LINE: spec.console.passwordHash: error (so a reload with a broken
 * hash is refused and the console keeps its old password). */
#ifndef MESHGATE_CONFIG_CONSOLE_H
#define MESHGATE_CONFIG_CONSOLE_H
#include "appliance/yaml_node.h"

void config_parse_console(const struct ydoc *d, const yaml_node_t *n, struct config *cfg);

#endif
