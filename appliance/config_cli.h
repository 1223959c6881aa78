/* `meshgate config validate`: loads configuration files and reports. */
#ifndef MESHGATE_CONFIG_CLI_H
#define MESHGATE_CONFIG_CLI_H

/* argv[0] is "validate"; takes --config FILE (repeatable; bare FILE
 * arguments are accepted too). Returns the exit code: 0 valid (a "FILE: ok"
 * summary on stdout, warnings on stderr), 2 invalid or usage error (one line
 * per problem on stderr: FILE:LINE: field.path: message). */
int config_validate_main(int argc, char **argv);

#endif
