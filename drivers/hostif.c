#include "drivers/hostif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int set_addr(int fd, unsigned long req, const char *ifname, uint32_t addr_be)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = addr_be;
	return ioctl(fd, req, &ifr);
}

int hostif_set_ipv4(const char *ifname, const char *addr, unsigned prefix, char *err, size_t errlen)
{
	struct in_addr a;
	if (inet_pton(AF_INET, addr, &a) != 1 || prefix > 32) {
		snprintf(err, errlen, "bad address %s/%u", addr, prefix);
		return -1;
	}
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	uint32_t mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
	int rc = 0;
	if (set_addr(fd, SIOCSIFADDR, ifname, a.s_addr) != 0 ||
	    set_addr(fd, SIOCSIFNETMASK, ifname, mask) != 0) {
		snprintf(err, errlen, "cannot set %s/%u on %s: %s", addr, prefix, ifname, strerror(errno));
		rc = -1;
	} else {
		struct ifreq ifr;
		memset(&ifr, 0, sizeof ifr);
		snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
		if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0 ||
		    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)) {
			snprintf(err, errlen, "cannot bring %s up: %s", ifname, strerror(errno));
			rc = -1;
		}
	}
	close(fd);
	return rc;
}
