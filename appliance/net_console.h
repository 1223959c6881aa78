/* Console output for the lwIP stack (net/): its fixed pools, in use / size.
 * Printed by `status`; lwIP's pools are sized at build time (net/lwipopts.h)
 * and never grow, so "in use" near "size" means refusals are coming. */
#ifndef MESHGATE_NET_CONSOLE_H
#define MESHGATE_NET_CONSOLE_H

struct console;

/* One line per pool: "  NAME  USED / SIZE in use (peak P, refused E)". */
void net_console_print_pools(struct console *c);

#endif
