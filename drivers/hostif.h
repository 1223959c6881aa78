/* Host-side kernel interface settings (the kernel end of a DPDK net_tap).
 * Used by the embedded demo so the host can reach the appliance over the
 * tap DPDK creates. Linux ioctls; drivers/ only. */
#ifndef MESHGATE_HOSTIF_H
#define MESHGATE_HOSTIF_H
#include <stddef.h>
#include <stdint.h>

/* Sets IPv4 address/prefix on kernel interface `ifname` and brings it up.
 * Returns 0, or -1 with a reason in err. */
int hostif_set_ipv4(const char *ifname, const char *addr, unsigned prefix, char *err, size_t errlen);

#endif
