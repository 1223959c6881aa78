/* DPDK ports: the only code that sees DPDK (STYLE.md habit 4).
 *
 * One RX and one TX queue per port, polled from the single appliance loop.
 * Pools are created once in port_open(); nothing allocates afterwards.
 * No function here exits or panics: errors come back as -1 plus a message in
 * the caller's buffer that says what to check (device string, permissions,
 * hugepages / --no-huge), never raw EAL internals. At most the first line DPDK
 * logged for the failure is quoted at the end of the message.
 *
 * Threading: everything is called from the one thread that called
 * port_eal_init(); nothing here is thread-safe. */
#ifndef MESHGATE_PORT_H
#define MESHGATE_PORT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct port;

/* Burst sizes: RX frames per port_poll(), TX frames per batch. */
#define PORT_BURST 32u
/* mbufs per port when port_open() is given 0. */
#define PORT_DEFAULT_MBUFS 8191u
/* Largest multi-segment frame port_poll() linearises; longer ones are
 * dropped and counted in rx_too_long. */
#define PORT_MAX_FRAME 9216u
/* IP MTU of a port: 1500 unless port_open() is given another (jumbo frames
 * up to PORT_MAX_MTU; the frame adds 14 bytes of Ethernet header). */
#define PORT_DEFAULT_MTU 1500u
#define PORT_MIN_MTU 576u
#define PORT_MAX_MTU 9000u

struct port_stats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
	uint64_t rx_dropped;    /* NIC missed + no mbuf + rx_too_long */
	uint64_t tx_dropped;    /* TX ring full or mbuf pool empty */
	uint64_t rx_errors, tx_errors;
	int link_up;
	uint32_t link_speed_mbps;
	/* Named breakdown of the drops above (STYLE.md habit 5). */
	uint64_t rx_missed;     /* NIC had no descriptor (imissed), or the receive-offload ring was full */
	uint64_t rx_no_mbuf;    /* NIC had no mbuf (rx_nombuf) */
	uint64_t rx_too_long;   /* multi-segment frame over PORT_MAX_FRAME */
	uint64_t tx_no_mbuf;    /* port_tx_reserve: pool empty */
	uint64_t tx_ring_full;  /* port_tx_flush: NIC did not take the frame */
	uint64_t tx_too_long;   /* port_tx_reserve: len over one mbuf (in tx_errors) */
	/* port_tx_gso: frames taken (the packets they are cut into are in
	 * tx_packets/tx_bytes), and frames refused (then sent as separate
	 * segments) */
	uint64_t tx_gso_frames, tx_gso_errors;
	/* receive offload: frames larger than the MTU's, taken whole (also in
	 * rx_packets); the kernel's own ring-full drops are in rx_missed */
	uint64_t rx_offload_frames;
};

/* Starts the EAL once per process. `args` are extra EAL arguments from the
 * config (e.g. "--no-huge", "-m", "512"); the driver adds what a single-core
 * appliance always wants: -l <first CPU of our affinity mask> (unless args
 * give -l/-c/--lcores), --file-prefix meshgate-<pid> --no-shconf (unless args
 * give --in-memory), quiet logging captured in memory (set MESHGATE_DPDK_LOG=1
 * to also copy it to stderr), --no-telemetry, --no-pci unless a PCI device is
 * configured (then -a ADDR for each of `pci_allow`, may be NULL/0), and
 * --no-huge -m 512 when args name no memory option and /proc/meminfo shows no
 * free hugepages. Returns 0, or -1 with `err` filled (one line). A second call
 * after success returns 0 without doing anything. */
int port_eal_init(const char *const *args, int nargs,
		  const char *const *pci_allow, int npci,
		  char *err, size_t errlen);

/* Opens and starts one port. `device` is a vdev string
 * ("net_af_packet0,iface=mg-out", "net_af_xdp0,iface=mg-out", "net_tap0,iface=mg0",
 * "net_ring0") or a PCI
 * address ("0000:00:04.0", which must also be in port_eal_init's pci_allow).
 * `name` is ours (for messages and port_name()); it is copied. `mbufs` sizes
 * the port's mbuf pool (0 = PORT_DEFAULT_MBUFS). `mtu` (0 = 1500) is set on
 * the device; above 1500 the mbufs are made large enough for a whole frame,
 * and an af_packet device string without framesz/blocksz gets ring frames
 * that fit it. Waits up to ~1 s for link
 * (a port whose link is down still opens). Returns NULL with `err` filled on
 * failure; nothing is left half-open. */
struct port *port_open(const char *name, const char *device, unsigned mbufs, unsigned mtu,
		       char *err, size_t errlen);

void port_mac(const struct port *port, uint8_t mac[6]);
const char *port_name(const struct port *port);
unsigned port_mtu(const struct port *port);    /* the IP MTU set on the device */

/* Descriptors that poll() reports readable when a frame is waiting in the
 * port's RX queue: fills fds (at most max) and returns how many, 0 when the
 * device has none (then the run loop sleeps on a timer). Today: af_packet's
 * socket, af_xdp's XDP socket, or tap's attached queues. Owned by the driver. */
#define PORT_MAX_WAIT_FDS 4
int port_wait_fds(const struct port *port, int *fds, int max);

/* After poll() reported an error condition on one of them: clears what the
 * driver's descriptors hold pending (an af_packet socket keeps an interface
 * going down as a socket error, and poll() says POLLERR until it is read). */
void port_wait_reset(const struct port *port);

/* Receive up to a burst; calls deliver() once per frame. The frame memory is
 * only valid during the call (the mbuf or ring frame is reused after it
 * returns). `len` exceeds the MTU's frame only with receive offload (up to
 * 14 + 65535). `flags` has PORT_RX_CSUM_OK when the kernel vouches for the
 * frame's TCP/UDP checksum: it verified it, or the frame comes from this
 * machine's own stack and its checksum was never computed (the field then
 * holds only the pseudo-header sum and must not be checked).
 * deliver() may call port_tx_reserve() on any port.
 * Returns the number of frames taken. */
#define PORT_RX_CSUM_OK 1u
typedef void (*port_deliver_fn)(void *arg, const void *frame, uint32_t len, unsigned flags);
unsigned port_poll(struct port *port, port_deliver_fn deliver, void *arg);

/* Receive offload for an af_packet port: from now on it receives through a
 * ring of our own (1,024 frames of 2 KB, 10 KB with jumbo frames) where a
 * packet larger than a frame is marked and taken whole from the socket
 * (PACKET_COPY_THRESH): a local sender's 64 KB segmentation-offload frame,
 * or what the interface's GRO merged. Each frame says which checksums need
 * no checking (PORT_RX_CSUM_OK), so the peers on a kernel interface keep
 * their checksum and segmentation offloads. It also sends through a ring of
 * its own (linear frames, no mbufs) and closes the driver's device and mbuf
 * pool; if the kernel refuses that ring, the driver keeps sending (logged).
 * Other drivers: nothing to do. Returns 0, or -1 with err filled (the kernel
 * refused a step: the port keeps the driver's receive ring). */
int port_rx_offload_start(struct port *port, char *err, size_t errlen);

/* Reserve `len` bytes for one outgoing frame inside a fresh mbuf appended to
 * the port's TX batch (with its own send ring, in the next ring frame).
 * Returns a pointer the caller fills completely before the next call on this
 * port, or NULL when the mbuf pool is empty (counted in tx_dropped/tx_no_mbuf),
 * the send ring is full (tx_dropped/tx_ring_full) or len does not fit one
 * mbuf or ring frame (tx_errors/tx_too_long).
 * When the batch is already full (PORT_BURST frames) it is sent first.
 * The signature matches net_tx_reserve_fn (net/stack.h) with drv = port. */
void *port_tx_reserve(struct port *port, uint16_t len);

/* port_tx_reserve() with exactly net_tx_reserve_fn's shape (net/stack.h):
 * net_if_add(..., port_tx_reserve_drv, port). */
void *port_tx_reserve_drv(void *port, uint16_t len);

/* TCP segmentation offload (af_packet and AF_XDP ports; net/stack.h's net_tx_gso_fn
 * describes the frame): sends what is batched first, then the frame through
 * a packet socket with a virtio-net header, without waiting. Returns 0; -1
 * (counted in tx_gso_errors) when the port has none or the kernel did not
 * take it for now (its send buffer is full); -2 when the kernel refuses such
 * frames for another reason: the port's offload is then off for good, and
 * that is logged once. */
bool port_has_gso(const struct port *port);
int port_tx_gso(struct port *port, const void *frame, uint32_t len, uint16_t l4_off,
		uint16_t hdr_len, uint16_t seg);
int port_tx_gso_drv(void *port, const void *frame, uint32_t len, uint16_t l4_off,
		    uint16_t hdr_len, uint16_t seg);

/* Sends the pending TX batch; frames the NIC did not take after a few quick
 * retries are freed and counted in tx_dropped/tx_ring_full. Call once per
 * loop iteration. Returns the number of frames sent. */
unsigned port_tx_flush(struct port *port);

void port_get_stats(struct port *port, struct port_stats *out);

/* Flushes, stops and closes the port, removes a vdev (a net_tap interface
 * disappears), frees its pool and the struct. NULL is ignored. */
void port_close(struct port *port);

/* rte_eal_cleanup() and removal of the empty runtime directory; call after
 * every port is closed. Safe to call when port_eal_init failed or never ran. */
void port_eal_cleanup(void);

/* Copies the tail of the DPDK log captured since port_eal_init (NUL
 * terminated, at most len-1 bytes); returns the bytes copied. For `status`
 * and for diagnosing a failure beyond the one-line error. */
size_t port_log_tail(char *buf, size_t len);

#endif
