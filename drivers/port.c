/* DPDK ports (drivers/port.h). Boot-time code may allocate and touch the
 * file system; port_poll/port_tx_* never allocate outside the mbuf pool. */
#include "drivers/port.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#define PORT_RX_DESC 1024
#define PORT_TX_DESC 1024
#define PORT_NAME_MAX 32
#define PORT_DEVICE_MAX 256
#define PORT_TX_RETRIES 8       /* quick re-tries of a partly taken batch */
#define PORT_LINK_WAIT_MS 1000
#define EAL_MAX_ARGS 96
#define EAL_NO_HUGE_MB "512"

struct port {
	uint16_t port_id;
	int is_vdev;
	struct rte_mempool *pool;
	char name[PORT_NAME_MAX];
	char device[PORT_DEVICE_MAX];
	unsigned mtu;
	int wait_fd[PORT_MAX_WAIT_FDS];   /* readable when a frame waits */
	int nwait;
	uint8_t mac[6];
	uint16_t tx_count;
	struct rte_mbuf *tx_batch[PORT_BURST];
	uint64_t rx_too_long, tx_no_mbuf, tx_ring_full, tx_too_long;
	/* af_packet, AF_XDP: a packet socket that takes segmentation-offload
	 * frames (PACKET_VNET_HDR, gso_socket_open); -1 = none */
	int gso_fd;
	struct sockaddr_ll gso_to;
	uint64_t tx_gso_frames, tx_gso_errors, tx_gso_packets, tx_gso_bytes;
	/* af_packet with receive offload (port_rx_offload_start): our own
	 * receive ring, whose frames hold a whole 64 KB packet; NULL = the
	 * driver's ring */
	uint8_t *rxr_map;
	int rxr_fd;
	unsigned rxr_next, rxr_nframes, rxr_frame_size, rxr_frames_per_block;
	uint8_t *rxr_big;               /* a frame larger than a ring frame, recv()'d */
	uint64_t rxr_packets, rxr_bytes, rxr_large, rxr_kernel_drops, rxr_truncated;
	/* af_packet with receive offload: a send ring of our own too (txr_start);
	 * NULL = the driver sends. Frames [txr_first, +txr_pending) are being
	 * filled; txr_kick: the kernel left some unsent, kick again. */
	uint8_t *txr_map;
	int txr_fd;
	char ifname[IF_NAMESIZE];
	unsigned txr_first, txr_pending, txr_nframes;
	bool txr_kick;
	bool dev_released;              /* txr_start: the driver's device is gone */
	uint64_t txr_packets, txr_bytes, txr_kick_errors;
	/* Scratch for linearising a multi-segment frame. */
	uint8_t scratch[PORT_MAX_FRAME];
};

/* ------------------------------------------------------------ EAL log capture
 * DPDK writes its log through a stdio stream; ours keeps the last
 * LOG_RING bytes in a fixed buffer (bounded memory for a long-running
 * appliance) so a failure can be explained with the line DPDK wrote. */
#define LOG_RING 8192
static char log_ring[LOG_RING];
static size_t log_total;          /* bytes ever written */
static int log_echo_fd = -1;      /* MESHGATE_DPDK_LOG=1: copy to stderr */
static FILE *log_stream;
static int eal_ready;

static ssize_t log_write(void *cookie, const char *buf, size_t size)
{
	(void)cookie;
	for (size_t i = 0; i < size; i++)
		log_ring[(log_total + i) % LOG_RING] = buf[i];
	log_total += size;
	if (log_echo_fd >= 0) {
		ssize_t w = write(log_echo_fd, buf, size);
		(void)w;
	}
	return (ssize_t)size;
}

size_t port_log_tail(char *buf, size_t len)
{
	if (len == 0)
		return 0;
	size_t have = log_total < LOG_RING ? log_total : LOG_RING;
	size_t n = have < len - 1 ? have : len - 1;
	size_t start = log_total - n;
	for (size_t i = 0; i < n; i++)
		buf[i] = log_ring[(start + i) % LOG_RING];
	buf[n] = '\0';
	return n;
}

/* The first non-empty line DPDK logged since `mark` (the cause; later lines
 * are mostly consequences), trimmed, or "". */
static void log_first_line(size_t mark, char *out, size_t outlen)
{
	char text[1024];
	out[0] = '\0';
	if (log_stream)
		fflush(log_stream);
	if (log_total <= mark || log_total - mark > LOG_RING)
		return;
	size_t want = log_total - mark;
	size_t n = want < sizeof(text) ? want : sizeof(text) - 1;
	for (size_t i = 0; i < n; i++)
		text[i] = log_ring[(mark + i) % LOG_RING];
	text[n] = '\0';
	char *line = text;
	while (*line && isspace((unsigned char)*line))
		line++;
	line[strcspn(line, "\n")] = '\0';
	size_t len = strlen(line);
	while (len > 0 && isspace((unsigned char)line[len - 1]))
		line[--len] = '\0';
	snprintf(out, outlen, "%s", line);
}

static void log_capture_start(void)
{
	if (log_stream)
		return;
	const char *e = getenv("MESHGATE_DPDK_LOG");
	/* a copy of stderr, so the echo survives the redirection around
	 * rte_eal_init() */
	if (e && e[0] == '1')
		log_echo_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	cookie_io_functions_t io = { .read = NULL, .write = log_write, .seek = NULL, .close = NULL };
	log_stream = fopencookie(NULL, "w", io);
	if (!log_stream)
		return;         /* DPDK keeps logging to stderr; not fatal */
	setvbuf(log_stream, NULL, _IOLBF, 0);
	rte_openlog_stream(log_stream);
}

/* err = "<what>: <hint>[ (DPDK: <last log line>)]" */
static void fail(char *err, size_t errlen, size_t mark, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void fail(char *err, size_t errlen, size_t mark, const char *fmt, ...)
{
	char last[160];
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	log_first_line(mark, last, sizeof(last));
	if (last[0] && n >= 0 && (size_t)n < errlen)
		snprintf(err + n, errlen - (size_t)n, " (DPDK: %s)", last);
	/* one line: never let a newline through */
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* ------------------------------------------------------------ EAL start */
static int arg_present(const char *const *args, int nargs, const char *opt)
{
	size_t len = strlen(opt);
	for (int i = 0; i < nargs; i++) {
		if (!args[i])
			continue;
		if (strcmp(args[i], opt) == 0)
			return 1;
		/* --opt=value */
		if (opt[0] == '-' && opt[1] == '-' && strncmp(args[i], opt, len) == 0 && args[i][len] == '=')
			return 1;
		/* -m512 style short options */
		if (opt[0] == '-' && opt[1] != '-' && len == 2 && strncmp(args[i], opt, 2) == 0)
			return 1;
	}
	return 0;
}

/* HugePages_Free from /proc/meminfo; -1 when unreadable. */
static long hugepages_free(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static const char *eal_hint(int e)
{
	switch (e) {
	case EACCES:
		return "cannot use hugepages or devices: run as root, and reserve hugepages "
		       "(/proc/sys/vm/nr_hugepages) or add --no-huge -m 512";
	case ENOMEM:
		return "not enough memory: reserve hugepages (/proc/sys/vm/nr_hugepages) or use --no-huge -m 512";
	case EINVAL:
		return "invalid EAL arguments: check the dpdk args in the config";
	case ENODEV:
		return "no usable device: check the PCI addresses and that the NIC is bound to vfio-pci";
	case ENOTSUP:
		return "unsupported platform or option: check the dpdk args in the config";
	case EPROTO:
		return "PCI bus scan failed: check the PCI addresses and permissions (root)";
	case EFAULT:
		return "tailq/hugepage setup failed: check hugepages or use --no-huge";
	case ENOEXEC:
		return "a driver failed to load: check the dpdk args in the config";
	default:
		return "check the dpdk args, permissions (root) and hugepages (or --no-huge)";
	}
}

int port_eal_init(const char *const *args, int nargs,
		  const char *const *pci_allow, int npci,
		  char *err, size_t errlen)
{
	static char argbuf[EAL_MAX_ARGS][256];
	char *argv[EAL_MAX_ARGS + 1];
	int argc = 0;

	if (eal_ready)
		return 0;
	if (nargs < 0 || npci < 0 || nargs + 2 * npci + 16 > EAL_MAX_ARGS) {
		fail(err, errlen, log_total, "dpdk: too many EAL arguments (%d args, %d PCI devices; at most %d in all)",
		     nargs, npci, EAL_MAX_ARGS - 16);
		return -1;
	}

#define ADD(...) do { snprintf(argbuf[argc], sizeof(argbuf[0]), __VA_ARGS__); argv[argc] = argbuf[argc]; argc++; } while (0)
	ADD("meshgate");
	if (!arg_present(args, nargs, "-l") && !arg_present(args, nargs, "-c") &&
	    !arg_present(args, nargs, "--lcores")) {
		cpu_set_t set;
		int cpu = 0;
		CPU_ZERO(&set);
		if (sched_getaffinity(0, sizeof(set), &set) == 0)
			for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set); cpu++)
				;
		if (cpu >= CPU_SETSIZE)
			cpu = 0;
		ADD("-l");
		ADD("%d", cpu);
	}
	int in_memory = arg_present(args, nargs, "--in-memory");
	if (!in_memory && !arg_present(args, nargs, "--file-prefix")) {
		ADD("--file-prefix");
		ADD("meshgate-%d", (int)getpid());
	}
	if (!in_memory && !arg_present(args, nargs, "--no-shconf"))
		ADD("--no-shconf");
	if (!arg_present(args, nargs, "--log-level"))
		ADD("--log-level=*:warning");
	if (!arg_present(args, nargs, "--no-telemetry") && !arg_present(args, nargs, "--telemetry"))
		ADD("--no-telemetry");
	if (npci == 0) {
		if (!arg_present(args, nargs, "--no-pci") && !arg_present(args, nargs, "-a") &&
		    !arg_present(args, nargs, "--allow"))
			ADD("--no-pci");
	} else {
		for (int i = 0; i < npci; i++) {
			if (!pci_allow[i] || strlen(pci_allow[i]) >= sizeof(argbuf[0])) {
				fail(err, errlen, log_total, "dpdk: PCI address #%d is missing or too long", i + 1);
				return -1;
			}
			ADD("-a");
			ADD("%s", pci_allow[i]);
		}
	}
	int auto_no_huge = 0;
	if (!in_memory && !arg_present(args, nargs, "-m") && !arg_present(args, nargs, "--socket-mem") &&
	    !arg_present(args, nargs, "--no-huge") && !arg_present(args, nargs, "--socket-limit") &&
	    hugepages_free() <= 0) {
		ADD("--no-huge");
		ADD("-m");
		ADD(EAL_NO_HUGE_MB);
		auto_no_huge = 1;
	}
	for (int i = 0; i < nargs; i++) {
		if (!args[i] || strlen(args[i]) >= sizeof(argbuf[0])) {
			fail(err, errlen, log_total, "dpdk: EAL argument #%d is missing or longer than %zu bytes",
			     i + 1, sizeof(argbuf[0]) - 1);
			return -1;
		}
		ADD("%s", args[i]);
	}
#undef ADD
	argv[argc] = NULL;

	log_capture_start();
	size_t mark = log_total;

	/* On bad arguments the EAL prints its whole usage text on stdout and
	 * getopt/alerts on stderr: keep both out of the appliance's output
	 * (stderr goes to a memory file whose first line can explain). */
	char said[160] = "";
	fflush(stdout);
	fflush(stderr);
	int saved_stdout = dup(1), saved_stderr = dup(2);
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int errmem = memfd_create("meshgate-eal-stderr", MFD_CLOEXEC);
	if (saved_stdout >= 0 && devnull >= 0)
		dup2(devnull, 1);
	if (saved_stderr >= 0 && errmem >= 0)
		dup2(errmem, 2);
	int ret = rte_eal_init(argc, argv);
	int eal_errno = rte_errno;
	fflush(stdout);
	fflush(stderr);
	if (saved_stdout >= 0 && devnull >= 0)
		dup2(saved_stdout, 1);
	if (saved_stderr >= 0 && errmem >= 0) {
		dup2(saved_stderr, 2);
		ssize_t got = pread(errmem, said, sizeof(said) - 1, 0);
		said[got > 0 ? got : 0] = '\0';
		said[strcspn(said, "\n")] = '\0';
	}
	if (saved_stdout >= 0)
		close(saved_stdout);
	if (saved_stderr >= 0)
		close(saved_stderr);
	if (devnull >= 0)
		close(devnull);
	if (errmem >= 0)
		close(errmem);

	if (ret < 0) {
		/* a failed start can leave its (empty) runtime dir behind */
		const char *rundir = rte_eal_get_runtime_dir();
		if (rundir && strstr(rundir, "/meshgate-"))
			rmdir(rundir);
		if (eal_errno == EALREADY) {
			fail(err, errlen, mark, "dpdk: the EAL was already started once in this process and cannot restart");
			return -1;
		}
		/* getopt's "unrecognized option '--x'" names the culprit */
		int from_getopt = strstr(said, "option") != NULL;
		fail(err, errlen, from_getopt ? log_total : mark, "dpdk: EAL start failed: %s%s%s%s%s",
		     eal_hint(eal_errno),
		     auto_no_huge ? " (no free hugepages, so --no-huge -m " EAL_NO_HUGE_MB " was used)" : "",
		     from_getopt ? " (DPDK: " : "", from_getopt ? said : "", from_getopt ? ")" : "");
		return -1;
	}
	eal_ready = 1;
	return 0;
}

void port_eal_cleanup(void)
{
	char dir[PATH_MAX];
	if (!eal_ready)
		return;
	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	eal_ready = 0;
	/* --no-shconf leaves an empty per-process runtime dir behind. */
	if (dir[0])
		rmdir(dir);
}

/* ------------------------------------------------------------ ports */
/* 0000:00:04.0 or 00:04.0 (domain optional) */
static int is_pci_addr(const char *s)
{
	unsigned d, b, dev, fn;
	char tail;
	if (sscanf(s, "%x:%x:%x.%x%c", &d, &b, &dev, &fn, &tail) == 4)
		return 1;
	if (sscanf(s, "%x:%x.%x%c", &b, &dev, &fn, &tail) == 3)
		return 1;
	return 0;
}

static void wait_link(uint16_t port_id)
{
	struct rte_eth_link link;
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	for (int waited = 0; waited < PORT_LINK_WAIT_MS; waited += 20) {
		memset(&link, 0, sizeof(link));
		if (rte_eth_link_get_nowait(port_id, &link) == 0 && link.link_status == RTE_ETH_LINK_UP)
			return;
		nanosleep(&ts, NULL);
	}
}

/* The interface name in an af_packet or tap device string ("...,iface=NAME,...");
 * false when there is none or it is too long. */
static bool devargs_iface(const char *device, char name[IF_NAMESIZE])
{
	const char *i = strstr(device, "iface=");
	if (!i)
		return false;
	i += 6;
	size_t n = strcspn(i, ",");
	if (n == 0 || n >= IF_NAMESIZE)
		return false;
	memcpy(name, i, n);
	name[n] = 0;
	return true;
}

/* Sets the kernel MTU of an af_packet device string's iface=. Returns 0
 * or -errno. */
static int afp_set_mtu(const char *device, unsigned mtu)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	if (!devargs_iface(device, ifr.ifr_name))
		return -EINVAL;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	int rc = 0;
	if (ioctl(s, SIOCGIFMTU, &ifr) != 0)
		rc = -errno;
	else if ((unsigned)ifr.ifr_mtu != mtu) {
		ifr.ifr_mtu = (int)mtu;
		if (ioctl(s, SIOCSIFMTU, &ifr) != 0)
			rc = -errno;
	}
	close(s);
	return rc;
}

/* How port_open treats a device: af_packet and tap get their kernel MTU set
 * or frame size checked, and those and af_xdp have receive descriptors that
 * an idle loop can wait on. */
enum port_kind { PORT_KIND_OTHER, PORT_KIND_AF_PACKET, PORT_KIND_TAP, PORT_KIND_AF_XDP };

/* The process's open descriptors (from /proc/self/fd), at most `max`;
 * returns how many there are, which may be more. */
static int open_fds(int *fds, int max)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end || fd < 0 || fd == dirfd(d))
			continue;
		if (n < max)
			fds[n] = (int)fd;
		n++;
	}
	closedir(d);
	return n;
}

#define PORT_FDS_SEEN 1024      /* descriptors looked at for receive queues */

static bool is_xdp_socket(int fd)
{
	int domain = 0;
	socklen_t len = sizeof domain;
	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_XDP;
}

/* AF_XDP sockets open before a device is probed (fds below FD_SETSIZE): the
 * af_xdp driver's own sockets are the ones that appear after. */
static void xdp_fds_before(fd_set *set)
{
	int fds[PORT_FDS_SEEN];
	int n = open_fds(fds, PORT_FDS_SEEN);
	FD_ZERO(set);
	for (int i = 0; i < n && i < PORT_FDS_SEEN; i++)
		if (fds[i] < FD_SETSIZE && is_xdp_socket(fds[i]))
			FD_SET(fds[i], set);
}

/* Whether descriptor `fd` is the driver's receive queue for interface
 * `ifindex`/`ifname`: an AF_PACKET socket bound to it (af_packet), a tun/tap
 * queue of it that is attached (tap; the driver's keep-alive queue is
 * detached and never receives), or an AF_XDP socket the driver opened
 * (af_xdp: not in `xdp_before`; an XDP socket does not say its interface). */
static bool is_rx_fd(int fd, enum port_kind kind, unsigned ifindex, const char *ifname, const fd_set *xdp_before)
{
	if (kind == PORT_KIND_AF_XDP)
		return is_xdp_socket(fd) && (fd >= FD_SETSIZE || !FD_ISSET(fd, xdp_before));
	if (kind == PORT_KIND_AF_PACKET) {
		int domain = 0;
		socklen_t len = sizeof domain;
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_PACKET)
			return false;
		struct sockaddr_ll sll;
		len = sizeof sll;
		return getsockname(fd, (struct sockaddr *)&sll, &len) == 0 && (unsigned)sll.sll_ifindex == ifindex;
	}
	char link[64], path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n <= 0)
		return false;
	link[n] = 0;
	if (strcmp(link, "/dev/net/tun") != 0)
		return false;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	return ioctl(fd, TUNGETIFF, &ifr) == 0 && strcmp(ifr.ifr_name, ifname) == 0 &&
	       !(ifr.ifr_flags & IFF_DETACH_QUEUE);
}

/* The driver's receive descriptors for `device`'s iface=: poll() on them
 * says when a frame waits, so an idle loop can sleep until traffic comes
 * instead of waking on a timer. af_packet has one socket per queue pair, and
 * af_xdp one XDP socket; the tap driver keeps more than one attached queue
 * descriptor, and any of them may receive. Fills p->wait_fd[]; none when
 * there are more than fit. */
static void find_rx_fds(struct port *p, const char *device, enum port_kind kind, const fd_set *xdp_before)
{
	char ifname[IF_NAMESIZE];
	p->nwait = 0;
	if (!devargs_iface(device, ifname))
		return;
	unsigned ifindex = if_nametoindex(ifname);
	if (!ifindex)
		return;
	int fds[PORT_FDS_SEEN];
	int nfds = open_fds(fds, PORT_FDS_SEEN), n = 0;
	for (int i = 0; i < nfds && i < PORT_FDS_SEEN; i++) {
		if (!is_rx_fd(fds[i], kind, ifindex, ifname, xdp_before))
			continue;
		if (n < PORT_MAX_WAIT_FDS)
			p->wait_fd[n] = fds[i];
		n++;
	}
	p->nwait = n <= PORT_MAX_WAIT_FDS ? n : 0;
}

/* Segmentation offload for a port on a kernel interface (af_packet or
 * AF_XDP). DPDK's drivers for those have none: every frame they send is a
 * packet the kernel handles on its own, on both sides of a veth. A packet
 * socket with PACKET_VNET_HDR takes a 64 KB TCP frame with a virtio-net
 * header asking for segmentation: the kernel passes it on whole where the
 * device takes it so (a veth, or a NIC with TSO) and cuts it into segments
 * in software elsewhere. The socket is not bound to a protocol, so it
 * receives nothing. af_packet's own receive sockets are told to ignore
 * outgoing frames (PACKET_IGNORE_OUTGOING), which they would otherwise be
 * handed a copy of (an XDP socket only sees what arrives); without that, or
 * without vnet headers (an old kernel), the port has no offload. Returns
 * the socket or -1. */
static int gso_socket_open(struct port *p, const char *device, enum port_kind kind)
{
	char ifname[IF_NAMESIZE];
	if (p->nwait == 0 || !devargs_iface(device, ifname))
		return -1;
	unsigned ifindex = if_nametoindex(ifname);
	if (!ifindex)
		return -1;
	int one = 1;
	for (int i = 0; i < p->nwait && kind == PORT_KIND_AF_PACKET; i++)
		if (setsockopt(p->wait_fd[i], SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0)
			return -1;
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* not PACKET_QDISC_BYPASS: the direct path drops a frame that needs
	 * cutting in software (a device without TSO or checksum offload) */
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0) {
		close(fd);
		return -1;
	}
	memset(&p->gso_to, 0, sizeof p->gso_to);
	p->gso_to.sll_family = AF_PACKET;
	p->gso_to.sll_protocol = htons(ETH_P_IP);
	p->gso_to.sll_ifindex = (int)ifindex;   /* no address: the frame has its header */
	return fd;
}

/* af_packet's ring frames default to 2 KB: a jumbo frame needs bigger ones
 * (10 KB, two per 20 KB block), and the driver wants a whole ring frame to
 * fit one mbuf. */
#define PORT_JUMBO_ROOM 10240u
#define PORT_AFP_JUMBO_ARGS ",blocksz=20480,framesz=10240"
/* AF_XDP's driver defaults to preferred busy polling: every receive poll is
 * then a recvfrom() that drives the kernel's NAPI, which is for an
 * application that never sleeps. Our loop sleeps when idle and polls both
 * ports on every pass, so that made 1,000 req/s cost 14.2 instead of 12.4%
 * of a core (same run). Off unless the device string sets busy_budget. */
#define PORT_XDP_ARGS ",busy_budget=0"

struct port *port_open(const char *name, const char *device, unsigned mbufs, unsigned mtu,
		       char *err, size_t errlen)
{
	struct port *p = NULL;
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	char ethname[RTE_ETH_NAME_MAX_LEN];
	char poolname[RTE_MEMPOOL_NAMESIZE];
	int probed = 0, configured = 0, rc;
	size_t mark = log_total;
	uint16_t pid;
	fd_set xdp_before;
	FD_ZERO(&xdp_before);

	if (!name || !device || !device[0]) {
		fail(err, errlen, mark, "port: missing name or device string");
		return NULL;
	}
	if (!eal_ready) {
		fail(err, errlen, mark, "port %s: the EAL is not started (port_eal_init must succeed first)", name);
		return NULL;
	}
	if (strlen(device) >= PORT_DEVICE_MAX) {
		fail(err, errlen, mark, "port %s: device string longer than %d bytes", name, PORT_DEVICE_MAX - 1);
		return NULL;
	}
	if (mtu == 0)
		mtu = PORT_DEFAULT_MTU;
	if (mtu < PORT_MIN_MTU || mtu > PORT_MAX_MTU) {
		fail(err, errlen, mark, "port %s: MTU %u out of range (%u-%u)", name, mtu, PORT_MIN_MTU, PORT_MAX_MTU);
		return NULL;
	}
	enum port_kind kind = strncmp(device, "net_af_packet", 13) == 0 ? PORT_KIND_AF_PACKET
			      : strncmp(device, "net_tap", 7) == 0    ? PORT_KIND_TAP
			      : strncmp(device, "net_af_xdp", 10) == 0 ? PORT_KIND_AF_XDP
								     : PORT_KIND_OTHER;
	bool afp = kind == PORT_KIND_AF_PACKET;
	char probe_args[PORT_DEVICE_MAX + sizeof PORT_AFP_JUMBO_ARGS + sizeof PORT_XDP_ARGS];
	snprintf(probe_args, sizeof probe_args, "%s%s", device,
		 kind == PORT_KIND_AF_XDP && !strstr(device, "busy_budget=") ? PORT_XDP_ARGS : "");
	const char *fz = strstr(device, "framesz=");
	if (mtu > PORT_DEFAULT_MTU && afp) {
		/* a ring frame holds the packet header (~80 bytes) and the frame;
		 * the driver wants a whole ring frame to fit one mbuf */
		unsigned lo = mtu + RTE_ETHER_HDR_LEN + 128;
		unsigned long v = fz ? strtoul(fz + 8, NULL, 10) : 0;
		if (fz && (v < lo || v > PORT_JUMBO_ROOM)) {
			fail(err, errlen, mark, "port %s: framesz=%lu in '%s' does not fit MTU %u frames (use %u-%u, "
			     "or leave framesz and blocksz out)", name, v, device, mtu, lo, PORT_JUMBO_ROOM);
			return NULL;
		}
		if (!fz && !strstr(device, "blocksz="))
			snprintf(probe_args, sizeof probe_args, "%s%s", device, PORT_AFP_JUMBO_ARGS);
	}
	if (mbufs == 0)    /* jumbo mbufs are 5x larger: half as many */
		mbufs = mtu > PORT_DEFAULT_MTU ? PORT_DEFAULT_MBUFS / 2 : PORT_DEFAULT_MBUFS;
	if (mbufs < 2 * PORT_RX_DESC) {
		fail(err, errlen, mark, "port %s: mbufs %u too small (at least %d: RX ring plus TX batches)",
		     name, mbufs, 2 * PORT_RX_DESC);
		return NULL;
	}

	size_t n = strcspn(device, ",");
	if (n >= sizeof(ethname)) {
		fail(err, errlen, mark, "port %s: device name in '%s' is too long", name, device);
		return NULL;
	}
	memcpy(ethname, device, n);
	ethname[n] = '\0';

	int is_vdev = !is_pci_addr(ethname);
	if (is_vdev) {
		if (rte_eth_dev_get_port_by_name(ethname, &pid) == 0) {
			fail(err, errlen, mark, "port %s: device %s is already open (each vdev name, e.g. net_tap0/net_tap1, must be unique)",
			     name, ethname);
			return NULL;
		}
		if (kind == PORT_KIND_AF_XDP)
			xdp_fds_before(&xdp_before);
		rc = rte_dev_probe(probe_args);
		if (rc < 0) {
			fail(err, errlen, mark, "port %s: cannot open device '%s': check the device string "
			     "(e.g. net_af_packet0,iface=IF or net_tap0,iface=IF), that the interface exists, "
			     "and permissions (root)", name, device);
			return NULL;
		}
		probed = 1;
		if (rte_eth_dev_get_port_by_name(ethname, &pid) != 0) {
			fail(err, errlen, mark, "port %s: device '%s' was probed but is not an Ethernet port: check the driver name",
			     name, device);
			goto fail_probe;
		}
	} else if (rte_eth_dev_get_port_by_name(ethname, &pid) != 0) {
		fail(err, errlen, mark, "port %s: PCI device %s not found: check the address (full form 0000:00:04.0), "
		     "that it is in the dpdk PCI list and bound to vfio-pci, and permissions (root)", name, ethname);
		return NULL;
	}

	p = calloc(1, sizeof(*p));
	if (!p) {
		fail(err, errlen, mark, "port %s: out of memory", name);
		goto fail_probe;
	}
	p->gso_fd = -1;
	p->rxr_fd = -1;
	p->txr_fd = -1;
	p->port_id = pid;
	p->is_vdev = is_vdev;
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->device, sizeof(p->device), "%s", device);

	if (rte_eth_dev_info_get(pid, &info) != 0) {
		fail(err, errlen, mark, "port %s: cannot query device %s", name, ethname);
		goto fail_free;
	}
	int socket = rte_eth_dev_socket_id(pid);
	if (socket < 0)
		socket = (int)rte_socket_id();

	unsigned cache = mbufs / 8 < 256 ? mbufs / 8 : 256;
	snprintf(poolname, sizeof(poolname), "mg_port%u", (unsigned)pid);
	/* jumbo: an mbuf holds a whole af_packet ring frame (PORT_JUMBO_ROOM),
	 * which holds a 9000-byte packet with its headers */
	unsigned room = mtu > PORT_DEFAULT_MTU ? RTE_PKTMBUF_HEADROOM + PORT_JUMBO_ROOM : RTE_MBUF_DEFAULT_BUF_SIZE;
	p->pool = rte_pktmbuf_pool_create(poolname, mbufs, cache, 0, (uint16_t)room, socket);
	if (!p->pool) {
		fail(err, errlen, mark, "port %s: cannot create a pool of %u mbufs: lower mbufs, or give DPDK more memory "
		     "(hugepages or --no-huge -m 512)", name, mbufs);
		goto fail_free;
	}

	memset(&conf, 0, sizeof(conf));
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
	rc = rte_eth_dev_configure(pid, 1, 1, &conf);
	if (rc < 0) {
		fail(err, errlen, mark, "port %s: cannot configure %s (%s)", name, ethname, rte_strerror(-rc));
		goto fail_pool;
	}
	configured = 1;
	uint16_t cur_mtu = 0;
	if (afp) {
		/* DPDK 22.11's ethdev layer caps af_packet at 1518-byte frames
		 * before the driver sees the request; the driver itself only sets
		 * the kernel interface's MTU, so do that here. */
		rc = afp_set_mtu(device, mtu);
		if (rc < 0) {
			fail(err, errlen, mark, "port %s: cannot set MTU %u on the interface of %s (%s)", name, mtu,
			     device, strerror(-rc));
			goto fail_pool;
		}
	} else if (rte_eth_dev_get_mtu(pid, &cur_mtu) != 0 || cur_mtu != mtu) {
		rc = rte_eth_dev_set_mtu(pid, (uint16_t)mtu);
		if (rc < 0) {
			fail(err, errlen, mark, "port %s: cannot set MTU %u on %s (%s; the device takes %u-%u)", name, mtu,
			     ethname, rte_strerror(-rc), info.min_mtu, info.max_mtu);
			goto fail_pool;
		}
	}
	p->mtu = mtu;
	uint16_t nb_rxd = PORT_RX_DESC, nb_txd = PORT_TX_DESC;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nb_rxd, &nb_txd);
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(pid, 0, nb_rxd, (unsigned)socket, NULL, p->pool);
	if (rc == 0) {
		struct rte_eth_txconf txconf = info.default_txconf;
		txconf.offloads = conf.txmode.offloads;
		rc = rte_eth_tx_queue_setup(pid, 0, nb_txd, (unsigned)socket, &txconf);
	}
	if (rc < 0) {
		fail(err, errlen, mark, "port %s: cannot set up queues on %s (%s)", name, ethname, rte_strerror(-rc));
		goto fail_pool;
	}
	struct rte_ether_addr mac;
	if (rte_eth_macaddr_get(pid, &mac) != 0) {
		fail(err, errlen, mark, "port %s: cannot read the MAC address of %s", name, ethname);
		goto fail_pool;
	}
	memcpy(p->mac, mac.addr_bytes, 6);
	rc = rte_eth_dev_start(pid);
	if (rc < 0) {
		fail(err, errlen, mark, "port %s: cannot start %s (%s): check the interface is up and not used by another program",
		     name, ethname, rte_strerror(-rc));
		goto fail_pool;
	}
	wait_link(pid);
	if (kind != PORT_KIND_OTHER)
		find_rx_fds(p, device, kind, &xdp_before);
	p->gso_fd = afp || kind == PORT_KIND_AF_XDP ? gso_socket_open(p, device, kind) : -1;
	return p;

fail_pool:
	if (configured)
		rte_eth_dev_close(pid);
	rte_mempool_free(p->pool);
	if (is_vdev) {
		/* close released the ethdev; the vdev itself is still there */
		rte_dev_remove(info.device);
		probed = 0;
	}
fail_free:
	free(p);
fail_probe:
	if (probed) {
		uint16_t id;
		if (rte_eth_dev_get_port_by_name(ethname, &id) == 0) {
			struct rte_eth_dev_info i2;
			if (rte_eth_dev_info_get(id, &i2) == 0) {
				rte_eth_dev_close(id);
				rte_dev_remove(i2.device);
			}
		}
	}
	return NULL;
}

void port_mac(const struct port *port, uint8_t mac[6])
{
	memcpy(mac, port->mac, 6);
}

int port_wait_fds(const struct port *port, int *fds, int max)
{
	if (port->nwait > max)
		return 0;
	for (int i = 0; i < port->nwait; i++)
		fds[i] = port->wait_fd[i];
	return port->nwait;
}

void port_wait_reset(const struct port *port)
{
	for (int i = 0; i < port->nwait; i++) {
		int e = 0;
		socklen_t len = sizeof e;
		getsockopt(port->wait_fd[i], SOL_SOCKET, SO_ERROR, &e, &len);   /* reading clears it */
	}
}

unsigned port_mtu(const struct port *port)
{
	return port->mtu;
}

const char *port_name(const struct port *port)
{
	return port->name;
}

/* ------------------------------------------------------------ receive offload
 * DPDK's af_packet driver copies each ring frame into one mbuf, and its ring
 * frames are 2 KB: a frame the kernel hands over whole (a local sender's
 * 64 KB segmentation-offload frame on a veth, or segments the interface's
 * GRO merged) would be cut short, so the peers on a kernel interface had to
 * turn their offloads off, and every 1.5 KB segment cost a trip through both
 * stacks. It also ignores what the ring says about checksums: a frame from
 * this machine's own stack carries a checksum that was never computed
 * (TP_STATUS_CSUMNOTREADY). port_rx_offload_start() gives an af_packet port
 * a receive ring of our own, with frames for the MTU (2 KB; 10 KB for
 * jumbo frames), and PACKET_COPY_THRESH: a packet larger than a ring frame
 * is marked TP_STATUS_COPY there and queued whole on the socket, where the
 * next recv() takes it, in order. Each frame is handed over with the
 * kernel's word on its checksum. The driver's own receive sockets get a
 * filter that takes nothing, and sending moves to a ring of ours too
 * (txr_start, below), after which the driver's device is closed. */
#define RXR_BLOCK_SIZE (1u << 20)                   /* the kernel allocates 2^n pages */
#define RXR_MIN_FRAMES 1024u                        /* DPDK's af_packet ring has 512 */
#define RXR_BIG (14u + 65535u)                      /* the largest IPv4 frame */
#define RXR_RCVBUF (8 << 20)                        /* socket queue for large frames */

static unsigned rxr_blocks(const struct port *p)
{
	return (RXR_MIN_FRAMES + p->rxr_frames_per_block - 1) / p->rxr_frames_per_block;
}

static unsigned rxr_frames(const struct port *p)
{
	return rxr_blocks(p) * p->rxr_frames_per_block;
}

/* Frame i of a ring (receive or send: the same geometry) mapped at map. */
static struct tpacket2_hdr *ring_frame(const struct port *p, uint8_t *map, unsigned i)
{
	return (struct tpacket2_hdr *)(map + (size_t)(i / p->rxr_frames_per_block) * RXR_BLOCK_SIZE +
				       (size_t)(i % p->rxr_frames_per_block) * p->rxr_frame_size);
}

static struct tpacket2_hdr *rxr_frame(const struct port *p, unsigned i)
{
	return ring_frame(p, p->rxr_map, i);
}

/* Gives fd a ring (`which`: PACKET_RX_RING or PACKET_TX_RING) of
 * rxr_frames(p) frames, maps it, and binds fd to sll. Returns the mapping,
 * or MAP_FAILED with *step naming the step that failed (errno says why). */
static void *ring_open(const struct port *p, int fd, int which, const struct sockaddr_ll *sll, const char **step)
{
	struct tpacket_req req = {.tp_block_size = RXR_BLOCK_SIZE, .tp_block_nr = rxr_blocks(p),
				  .tp_frame_size = p->rxr_frame_size, .tp_frame_nr = rxr_frames(p)};
	size_t maplen = (size_t)RXR_BLOCK_SIZE * rxr_blocks(p);
	*step = which == PACKET_RX_RING ? "PACKET_RX_RING" : "PACKET_TX_RING";
	if (setsockopt(fd, SOL_PACKET, which, &req, sizeof req) != 0)
		return MAP_FAILED;
	*step = "mmap";
	void *map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return MAP_FAILED;
	*step = "bind";
	if (bind(fd, (const struct sockaddr *)sll, sizeof *sll) != 0) {
		int e = errno;
		munmap(map, maplen);
		errno = e;
		return MAP_FAILED;
	}
	return map;
}

static void txr_start(struct port *p, unsigned ifindex);

int port_rx_offload_start(struct port *p, char *err, size_t errlen)
{
	char ifname[IF_NAMESIZE];
	unsigned ifindex;
	if (p->rxr_map || strncmp(p->device, "net_af_packet", 13) != 0)
		return 0;               /* on already, or a driver this does not apply to */
	if (p->nwait == 0 || !devargs_iface(p->device, ifname) || !(ifindex = if_nametoindex(ifname))) {
		snprintf(err, errlen, "port %s: receive offload: no receive socket or interface found for '%s'",
			 p->name, p->device);
		return -1;
	}
	/* a frame holds the tpacket header (~80 bytes) and an MTU's frame */
	p->rxr_frame_size = p->mtu > PORT_DEFAULT_MTU ? PORT_JUMBO_ROOM : 2048u;
	p->rxr_frames_per_block = RXR_BLOCK_SIZE / p->rxr_frame_size;
	size_t maplen = (size_t)RXR_BLOCK_SIZE * rxr_blocks(p);
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	int v2 = TPACKET_V2, one = 1, rcvbuf = RXR_RCVBUF;
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				  .sll_ifindex = (int)ifindex};
	void *map = MAP_FAILED;
	uint8_t *big = malloc(RXR_BIG);
	const char *step = "socket";
	if (fd < 0)
		goto fail;
	step = "memory";
	if (!big)
		goto fail;
	step = "PACKET_VERSION";
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) != 0)
		goto fail;
	step = "PACKET_IGNORE_OUTGOING";   /* our own frames are not for us */
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0)
		goto fail;
	step = "PACKET_COPY_THRESH";
	if (setsockopt(fd, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof one) != 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);  /* what the limit allows */
	if ((map = ring_open(p, fd, PACKET_RX_RING, &sll, &step)) == MAP_FAILED)
		goto fail;
	/* From here every frame reaches our ring; the driver's sockets take
	 * none. What they took before is in our ring too, or lost as at any
	 * start, and is dropped. */
	struct sock_filter none = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog prog = {.len = 1, .filter = &none};
	step = "SO_ATTACH_FILTER";
	for (int i = 0; i < p->nwait; i++)
		if (setsockopt(p->wait_fd[i], SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) {
			for (int j = 0; j < i; j++)
				setsockopt(p->wait_fd[j], SOL_SOCKET, SO_DETACH_FILTER, NULL, 0);
			goto fail;
		}
	struct rte_mbuf *pkts[PORT_BURST];
	uint16_t n;
	while ((n = rte_eth_rx_burst(p->port_id, 0, pkts, PORT_BURST)) > 0)
		rte_pktmbuf_free_bulk(pkts, n);
	p->rxr_fd = fd;
	p->rxr_map = map;
	p->rxr_big = big;
	p->rxr_next = 0;
	p->rxr_nframes = rxr_frames(p);
	p->wait_fd[0] = fd;
	p->nwait = 1;
	snprintf(p->ifname, sizeof p->ifname, "%s", ifname);
	txr_start(p, ifindex);
	return 0;
fail:
	snprintf(err, errlen, "port %s: receive offload on %s: %s: %s", p->name, ifname, step, strerror(errno));
	if (map != MAP_FAILED)
		munmap(map, maplen);
	if (fd >= 0)
		close(fd);
	free(big);
	return -1;
}

/* ------------------------------------------------------------ send ring
 * Once the port receives through our ring, the driver's socket is only
 * used to send, yet as a packet socket bound to every protocol, in a fanout
 * group, it still took each arriving frame through the fanout and its
 * take-nothing filter: work on the receiving CPU for every frame. And its
 * send path copies each mbuf into its TX ring, whose frames the kernel
 * attaches to the skb as zero-copy pages, which a veth must copy again into
 * pages of its own (skb_copy_ubufs) before passing the frame on.
 *
 * txr_start() gives the port a send ring of its own instead, on a socket
 * bound to no protocol (it receives nothing), then closes and removes the
 * driver's device (its socket closes) and frees the mbuf pool, which nothing
 * uses any more (~33 MB less memory for two ports). The port still opens
 * through DPDK, which checks the device string and the interface; with
 * `offload: false` both rings stay the driver's. Each ring frame carries a virtio-net
 * header whose hdr_len covers the whole frame, so the kernel copies the
 * frame into the skb's own data (one copy, no page per frame); lwIP writes
 * the frame straight into the ring (no mbuf). Frames are marked for sending
 * in order when the batch is flushed, and one sendto() sends them all; a
 * frame the kernel cannot send yet stays marked and goes with the next. */
#define TXR_VNET_OFF TPACKET_ALIGN(sizeof(struct tpacket2_hdr))  /* where the kernel reads */
#define TXR_DATA_OFF (TXR_VNET_OFF + sizeof(struct virtio_net_hdr))

static struct tpacket2_hdr *txr_frame(const struct port *p, unsigned i)
{
	return ring_frame(p, p->txr_map, i);
}

/* Stops, closes and removes the driver's device (its sockets close; a
 * net_tap interface disappears) and frees its mbuf pool: at port_close, or
 * in txr_start once nothing uses them any more. */
static void dev_release(struct port *p)
{
	struct rte_eth_dev_info info;
	int have_info = rte_eth_dev_info_get(p->port_id, &info) == 0;
	rte_eth_dev_stop(p->port_id);
	rte_eth_dev_close(p->port_id);
	if (p->is_vdev && have_info && info.device)
		rte_dev_remove(info.device);
	rte_mempool_free(p->pool);
	p->pool = NULL;
	p->dev_released = true;
}

static void txr_start(struct port *p, unsigned ifindex)
{
	size_t maplen = (size_t)RXR_BLOCK_SIZE * rxr_blocks(p);
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	int v2 = TPACKET_V2, one = 1;
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = (int)ifindex};
	void *map = MAP_FAILED;
	const char *step = "socket";
	if (fd < 0)
		goto fail;
	step = "PACKET_VERSION";
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) != 0)
		goto fail;
	step = "PACKET_VNET_HDR";
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0)
		goto fail;
	/* a frame the kernel finds malformed is skipped, not left blocking the ring */
	step = "PACKET_LOSS";
	if (setsockopt(fd, SOL_PACKET, PACKET_LOSS, &one, sizeof one) != 0)
		goto fail;
	/* as DPDK's driver: straight to the device (these frames need no
	 * segmenting; the offload frames keep their own socket) */
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
	/* room for a whole ring of frames in flight: a frame's memory is the
	 * socket's until the receiver has queued it */
	int sndbuf = RXR_RCVBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	if ((map = ring_open(p, fd, PACKET_TX_RING, &sll, &step)) == MAP_FAILED)
		goto fail;
	/* What the driver batched goes first; then its device is closed, and
	 * with it the driver's socket. */
	port_tx_flush(p);
	dev_release(p);
	p->txr_fd = fd;
	p->txr_map = map;
	p->txr_nframes = rxr_frames(p);
	p->txr_first = p->txr_pending = 0;
	return;
fail:
	fprintf(stderr, "meshgate: port %s: a send ring of its own on %s: %s: %s; sending through the driver\n",
		p->name, p->ifname, step, strerror(errno));
	if (map != MAP_FAILED)
		munmap(map, maplen);
	if (fd >= 0)
		close(fd);
}

/* Marks the frames filled since the last flush for sending, in order, and
 * has the kernel send them. */
static unsigned txr_flush(struct port *p)
{
	unsigned n = p->txr_pending;
	if (!n && !p->txr_kick)
		return 0;
	for (unsigned k = 0; k < n; k++) {
		struct tpacket2_hdr *h = txr_frame(p, (p->txr_first + k) % p->txr_nframes);
		__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
	}
	p->txr_first = (p->txr_first + n) % p->txr_nframes;
	p->txr_pending = 0;
	/* the kernel sends every marked frame from its head on; a frame it
	 * cannot send now (its send buffer is full) stays marked */
	p->txr_kick = false;
	if (sendto(p->txr_fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0) {
		p->txr_kick = true;
		/* an error (the interface down, say) is counted once per batch,
		 * not again for each retry of the frames left marked */
		if (n && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS && errno != EINTR)
			p->txr_kick_errors++;
	}
	return n;
}

static void *txr_reserve(struct port *p, uint16_t len)
{
	if (p->txr_pending == PORT_BURST)
		txr_flush(p);
	if (len > p->rxr_frame_size - TXR_DATA_OFF) {
		p->tx_too_long++;
		return NULL;
	}
	struct tpacket2_hdr *h = txr_frame(p, (p->txr_first + p->txr_pending) % p->txr_nframes);
	if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) {
		txr_flush(p);           /* sending frees ring frames */
		h = txr_frame(p, p->txr_first);
		if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) {
			p->tx_ring_full++;      /* still in flight: the ring is full */
			return NULL;
		}
	}
	h->tp_len = (uint32_t)(sizeof(struct virtio_net_hdr) + len);
	struct virtio_net_hdr *vh = (struct virtio_net_hdr *)((uint8_t *)h + TXR_VNET_OFF);
	*vh = (struct virtio_net_hdr){.gso_type = VIRTIO_NET_HDR_GSO_NONE, .hdr_len = len};
	p->txr_pending++;
	p->txr_packets++;
	p->txr_bytes += len;
	return (uint8_t *)h + TXR_DATA_OFF;
}

static unsigned rxr_poll(struct port *p, port_deliver_fn deliver, void *arg)
{
	unsigned n = 0;
	while (n < PORT_BURST) {
		struct tpacket2_hdr *h = rxr_frame(p, p->rxr_next);
		uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
		if (!(st & TP_STATUS_USER))
			break;
		const uint8_t *frame = (const uint8_t *)h + h->tp_mac;
		uint32_t len = h->tp_snaplen;
		if (st & TP_STATUS_COPY) {
			/* the whole packet waits on the socket, next in line */
			ssize_t k = recv(p->rxr_fd, p->rxr_big, RXR_BIG, MSG_DONTWAIT | MSG_TRUNC);
			frame = p->rxr_big;
			len = k > 0 && (size_t)k <= RXR_BIG ? (uint32_t)k : 0;
		} else if (len < h->tp_len) {
			len = 0;                /* cut short, the socket queue full */
		}
		if (len == 0) {
			p->rxr_truncated++;
		} else {
			if (len > p->mtu + RTE_ETHER_HDR_LEN)
				p->rxr_large++;
			p->rxr_packets++;
			p->rxr_bytes += len;
			deliver(arg, frame, len, st & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID) ? PORT_RX_CSUM_OK : 0);
		}
		__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		if (++p->rxr_next == p->rxr_nframes)
			p->rxr_next = 0;
		n++;
	}
	return n;
}

unsigned port_poll(struct port *port, port_deliver_fn deliver, void *arg)
{
	if (port->rxr_map)
		return rxr_poll(port, deliver, arg);
	struct rte_mbuf *pkts[PORT_BURST];
	uint16_t n = rte_eth_rx_burst(port->port_id, 0, pkts, PORT_BURST);
	unsigned delivered = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		if (m->nb_segs == 1) {
			deliver(arg, rte_pktmbuf_mtod(m, const void *), m->data_len, 0);
			delivered++;
			continue;
		}
		if (m->pkt_len > sizeof(port->scratch)) {
			port->rx_too_long++;
			continue;
		}
		const void *frame = rte_pktmbuf_read(m, 0, m->pkt_len, port->scratch);
		if (!frame) {
			port->rx_too_long++;
			continue;
		}
		deliver(arg, frame, m->pkt_len, 0);
		delivered++;
	}
	if (n)
		rte_pktmbuf_free_bulk(pkts, n);
	return delivered;
}

void *port_tx_reserve(struct port *port, uint16_t len)
{
	if (port->txr_map)
		return txr_reserve(port, len);
	if (port->tx_count == PORT_BURST)
		port_tx_flush(port);
	struct rte_mbuf *m = rte_pktmbuf_alloc(port->pool);
	if (!m) {
		port->tx_no_mbuf++;
		return NULL;
	}
	char *data = rte_pktmbuf_append(m, len);
	if (!data) {
		rte_pktmbuf_free(m);
		port->tx_too_long++;
		return NULL;
	}
	port->tx_batch[port->tx_count++] = m;
	return data;
}

void *port_tx_reserve_drv(void *port, uint16_t len)
{
	return port_tx_reserve(port, len);
}

bool port_has_gso(const struct port *port)
{
	return port->gso_fd >= 0;
}

int port_tx_gso(struct port *port, const void *frame, uint32_t len, uint16_t l4_off,
		uint16_t hdr_len, uint16_t seg)
{
	if (port->gso_fd < 0)
		return -1;
	port_tx_flush(port);   /* what was queued before goes first */
	struct virtio_net_hdr vh = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
		.hdr_len = hdr_len,
		.gso_size = seg,
		.csum_start = l4_off,
		.csum_offset = 16,      /* the TCP checksum field */
	};
	struct iovec iov[2] = {{&vh, sizeof vh}, {(void *)frame, len}};
	struct msghdr m = {.msg_name = &port->gso_to, .msg_namelen = sizeof port->gso_to,
			   .msg_iov = iov, .msg_iovlen = 2};
	if (sendmsg(port->gso_fd, &m, MSG_DONTWAIT) != (ssize_t)(sizeof vh + len)) {
		int e = errno;
		port->tx_gso_errors++;
		if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == ENOMEM || e == EINTR)
			return -1;      /* a full queue or memory: try again with the next */
		fprintf(stderr, "meshgate: port %s: the kernel refuses segmentation-offload frames (%s); "
			"offload is off for this port from now on\n", port->name, strerror(e));
		close(port->gso_fd);
		port->gso_fd = -1;
		return -2;
	}
	uint32_t segs = (len - hdr_len + seg - 1) / seg;
	port->tx_gso_frames++;
	port->tx_gso_packets += segs;
	port->tx_gso_bytes += len + (uint64_t)(segs - 1) * hdr_len;
	return 0;
}

int port_tx_gso_drv(void *port, const void *frame, uint32_t len, uint16_t l4_off,
		    uint16_t hdr_len, uint16_t seg)
{
	return port_tx_gso(port, frame, len, l4_off, hdr_len, seg);
}

unsigned port_tx_flush(struct port *port)
{
	if (port->txr_map)
		return txr_flush(port);
	uint16_t sent = 0;
	if (port->tx_count == 0)
		return 0;
	for (int tries = 0; tries < PORT_TX_RETRIES && sent < port->tx_count; tries++) {
		uint16_t k = rte_eth_tx_burst(port->port_id, 0, port->tx_batch + sent, port->tx_count - sent);
		sent += k;
		if (k == 0 && tries > 0)
			rte_pause();
	}
	if (sent < port->tx_count) {
		port->tx_ring_full += port->tx_count - sent;
		rte_pktmbuf_free_bulk(port->tx_batch + sent, port->tx_count - sent);
	}
	port->tx_count = 0;
	return sent;
}

void port_get_stats(struct port *port, struct port_stats *out)
{
	struct rte_eth_stats s;
	struct rte_eth_link link;
	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	if (!port->dev_released && rte_eth_stats_get(port->port_id, &s) == 0) {
		out->rx_packets = s.ipackets;
		out->rx_bytes = s.ibytes;
		out->tx_packets = s.opackets;
		out->tx_bytes = s.obytes;
		out->rx_missed = s.imissed;
		out->rx_no_mbuf = s.rx_nombuf;
		out->rx_errors = s.ierrors;
		out->tx_errors = s.oerrors;
	}
	if (port->rxr_map) {
		struct tpacket_stats ks;
		socklen_t kl = sizeof ks;
		if (getsockopt(port->rxr_fd, SOL_PACKET, PACKET_STATISTICS, &ks, &kl) == 0)
			port->rxr_kernel_drops += ks.tp_drops;     /* reading resets them */
		out->rx_packets += port->rxr_packets;
		out->rx_bytes += port->rxr_bytes;
		out->rx_missed += port->rxr_kernel_drops;
		out->rx_offload_frames = port->rxr_large;
	}
	if (port->txr_map) {
		out->tx_packets += port->txr_packets;
		out->tx_bytes += port->txr_bytes;
		out->tx_errors += port->txr_kick_errors;
	}
	out->rx_too_long = port->rx_too_long + port->rxr_truncated;
	out->tx_no_mbuf = port->tx_no_mbuf;
	out->tx_ring_full = port->tx_ring_full;
	out->tx_too_long = port->tx_too_long;
	out->tx_packets += port->tx_gso_packets;
	out->tx_bytes += port->tx_gso_bytes;
	out->tx_gso_frames = port->tx_gso_frames;
	out->tx_gso_errors = port->tx_gso_errors;
	out->rx_dropped = out->rx_missed + out->rx_no_mbuf + out->rx_too_long;
	out->tx_dropped = out->tx_no_mbuf + out->tx_ring_full;
	out->tx_errors += out->tx_too_long;
	memset(&link, 0, sizeof(link));
	if (port->txr_map) {
		/* the driver's device is stopped: the interface's own state */
		struct ifreq ifr;
		memset(&ifr, 0, sizeof ifr);
		snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", port->ifname);
		out->link_up = ioctl(port->txr_fd, SIOCGIFFLAGS, &ifr) == 0 &&
			       (ifr.ifr_flags & (IFF_UP | IFF_RUNNING)) == (IFF_UP | IFF_RUNNING);
	} else if (rte_eth_link_get_nowait(port->port_id, &link) == 0) {
		out->link_up = link.link_status == RTE_ETH_LINK_UP;
		out->link_speed_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
	}
}

void port_close(struct port *port)
{
	if (!port)
		return;
	port_tx_flush(port);
	if (!port->dev_released)
		dev_release(port);
	if (port->gso_fd >= 0)
		close(port->gso_fd);
	if (port->txr_map) {
		munmap(port->txr_map, (size_t)RXR_BLOCK_SIZE * rxr_blocks(port));
		close(port->txr_fd);
	}
	if (port->rxr_map) {
		munmap(port->rxr_map, (size_t)RXR_BLOCK_SIZE * rxr_blocks(port));
		close(port->rxr_fd);
		free(port->rxr_big);
	}
	free(port);
}
