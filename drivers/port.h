/* DPDK ports: the only code that sees DPDK (STYLE.md habit 4).
 *
 * One RX and one TX queue per port, polled from the single appliance loop.
 * Pools are created once in port_open(); nothing allocates afterwards.
 * No function here exits or panics: errors come back as -1 plus a message in
 * the caller's buffer that says what to check (device string, permissions,
 * hugepages / --no-huge), never raw EAL internals. */
#ifndef MESHGATE_PORT_H
#define MESHGATE_PORT_H
#include <stddef.h>
#include <stdint.h>

struct port;

struct port_stats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
	uint64_t rx_dropped;    /* NIC missed + no mbuf */
	uint64_t tx_dropped;    /* TX ring full or mbuf pool empty */
	uint64_t rx_errors, tx_errors;
	int link_up;
	uint32_t link_speed_mbps;
};

/* Starts the EAL once per process. `args` are extra EAL arguments from the
 * config (e.g. "--no-huge", "-m", "512"); the driver adds what a single-core
 * appliance always wants (-l, --no-shconf/--file-prefix, --no-pci unless a
 * PCI device is configured, quiet logging). `pci_allow` lists PCI addresses
 * the config names (may be NULL/0). Returns 0, or -1 with `err` filled. */
int port_eal_init(const char *const *args, int nargs,
		  const char *const *pci_allow, int npci,
		  char *err, size_t errlen);

/* Opens and starts one port. `device` is a vdev string
 * ("net_af_packet0,iface=mg-out", "net_tap0,iface=mg0", "net_ring0") or a PCI
 * address ("0000:00:04.0"). `mbufs` sizes the port's mbuf pool (0 = default).
 * Returns NULL with `err` filled on failure. */
struct port *port_open(const char *name, const char *device, unsigned mbufs,
		       char *err, size_t errlen);

void port_mac(const struct port *port, uint8_t mac[6]);
const char *port_name(const struct port *port);

/* Receive up to a burst; calls deliver() once per frame. The frame memory is
 * only valid during the call (the mbuf is freed after it returns).
 * Returns the number of frames delivered. */
typedef void (*port_deliver_fn)(void *arg, const void *frame, uint16_t len);
unsigned port_poll(struct port *port, port_deliver_fn deliver, void *arg);

/* Reserve `len` bytes for one outgoing frame inside a fresh mbuf appended to
 * the port's TX batch. Returns a pointer the caller fills completely before
 * the next call on this port, or NULL when the mbuf pool is empty (counted in
 * tx_dropped). A full batch is sent automatically. */
void *port_tx_reserve(struct port *port, uint16_t len);

/* Sends the pending TX batch; frames the NIC did not take are freed and
 * counted in tx_dropped. Call once per loop iteration. */
void port_tx_flush(struct port *port);

void port_get_stats(struct port *port, struct port_stats *out);
void port_close(struct port *port);
void port_eal_cleanup(void);

#endif
