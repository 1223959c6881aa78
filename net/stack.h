/* lwIP integration: NO_SYS=1, raw API, driven by the appliance loop.
 *
 * net/ never sees DPDK: a port is reached through the two callbacks given to
 * net_if_add() (drivers/port.h provides them). Frames are copied into pbufs on
 * input and into driver buffers on output. */
#ifndef MESHGATE_NET_STACK_H
#define MESHGATE_NET_STACK_H
#include <stddef.h>
#include <stdint.h>

/* tcp_write / tcp_recved / pbuf lengths are u16_t in lwIP: chunk to this. */
#define NET_MAX_CHUNK 32768u
#define NET_MAX_IFS 8

struct netif;
struct net_if;

/* Driver hook: reserve a frame buffer of len bytes that lwIP fills
 * completely before its next call (NULL = no buffer; the frame is dropped,
 * counted in tx_no_buffer, and TCP keeps the segment for its next output).
 * drivers/port.h's port_tx_reserve() has this shape with drv = the port;
 * flushing what is queued is the caller's loop's job (port_tx_flush). */
typedef void *(*net_tx_reserve_fn)(void *drv, uint16_t len);

/* Initialises lwIP once (later calls do nothing). */
void net_init(void);

/* Adds an Ethernet interface with an IPv4 address (network byte order) and
 * prefix length; gateway 0 = none. The first interface with a gateway becomes
 * lwIP's default route. MTU 1500; `name` is copied. The interface is up
 * (a gratuitous ARP is queued on tx_reserve at once). Returns NULL when
 * NET_MAX_IFS are in use, before net_init(), or when prefix > 32. */
struct net_if *net_if_add(const char *name, const uint8_t mac[6],
			  uint32_t addr_be, uint8_t prefix, uint32_t gateway_be,
			  net_tx_reserve_fn tx_reserve, void *drv);

/* Feeds one received Ethernet frame (copied; the caller keeps its buffer).
 * When lwIP's PBUF_POOL is empty the frame is dropped and counted in
 * rx_no_pbuf. `len` may exceed the MTU's frame (receive offload): an IPv4
 * frame of up to 14 + 65535 bytes is taken whole; longer ones, or non-IPv4
 * ones over 65535, are counted in rx_oversize. With NET_RX_CSUM_OK in
 * `flags` (the driver's PORT_RX_CSUM_OK) the frame's TCP and UDP checksums
 * are not checked. May call tx_reserve of any interface (replies, ACKs). */
#define NET_RX_CSUM_OK 1u
void net_if_input(struct net_if *nif, const void *frame, uint32_t len, unsigned flags);

/* The interface's IP MTU (1500 from net_if_add); TCP's MSS follows it, up
 * to TCP_MSS (lwipopts.h). */
void net_if_set_mtu(struct net_if *nif, uint16_t mtu);

/* net_if_input() with exactly port_deliver_fn's shape (drivers/port.h):
 * port_poll(port, net_if_deliver, nif). */
void net_if_deliver(void *nif, const void *frame, uint32_t len, unsigned flags);

struct netif *net_if_netif(struct net_if *nif);
uint32_t net_if_addr(const struct net_if *nif);
const char *net_if_name(const struct net_if *nif);

struct net_if_stats {
	uint64_t rx_frames, tx_frames, rx_no_pbuf, tx_no_buffer;
	uint64_t rx_oversize;       /* over 14 + 65535 bytes, or not IPv4 over 65535 */
	uint64_t tx_filtered;       /* refused by the TX filter hook */
	/* segmentation offload (net_if_set_gso): frames handed to it, the
	 * segments they held (also in tx_frames), and frames it refused
	 * (then sent as separate segments) */
	uint64_t tx_gso_frames, tx_gso_segments, tx_gso_refused;
};

/* Driver hook for TCP segmentation offload: sends one Ethernet + IPv4 + TCP
 * frame of len bytes (up to 64 KB) whose payload is to go out as seg-byte
 * segments (the last may be shorter); the TCP checksum field holds the
 * pseudo-header sum and the driver (or the kernel under it) fills in each
 * segment's checksums. l4_off is where TCP starts, hdr_len where the payload
 * starts. Returns 0; -1 when the frame was not taken; -2 when it was not and
 * none will be (the interface's offload is then turned off). drivers/port.h's
 * port_tx_gso_drv has this shape. */
typedef int (*net_tx_gso_fn)(void *drv, const void *frame, uint32_t len, uint16_t l4_off,
			     uint16_t hdr_len, uint16_t seg);

/* Turns segmentation offload on (fn) or off (NULL) for an interface:
 * consecutive full-sized segments of one TCP flow are then gathered (up to
 * 64 KB, net/tcp_coalesce.h) and handed to fn as one frame; anything else,
 * or a frame fn refuses (sent as the separate segments instead), goes
 * through tx_reserve as before. Allocates the 64 KB gathering buffer once;
 * -1 when that fails (offload stays off). */
int net_if_set_gso(struct net_if *nif, net_tx_gso_fn fn);

/* Hands on the segments gathered for offload; call before flushing the
 * driver's TX batch (port_tx_flush), every loop iteration that does. */
void net_if_flush(struct net_if *nif);

/* Optional hook on every outgoing frame, before a driver buffer is taken:
 * `head` is the frame's first pbuf (all of lwIP's headers), frame_len the
 * whole frame. false = drop it (counted in tx_filtered; TCP retransmits as
 * after a loss). The hook may rewrite header fields in place (lwIP rebuilds
 * the headers of a retransmission, which comes through the hook again).
 * NULL removes the hook. Used by the packet filter and the egress NAT. */
#include <stdbool.h>
typedef bool (*net_tx_filter_fn)(void *arg, struct net_if *nif, void *head,
				 uint16_t head_len, uint16_t frame_len);
void net_set_tx_filter(net_tx_filter_fn fn, void *arg);
void net_if_get_stats(const struct net_if *nif, struct net_if_stats *out);

/* Runs lwIP's timers when due; call every loop iteration. */
void net_timers(void);
/* Milliseconds until lwIP's next timer is due (0xffffffff: none). */
uint32_t net_timers_due_ms(void);

/* Milliseconds and microseconds on CLOCK_MONOTONIC. */
uint32_t net_now_ms(void);
uint64_t net_now_us(void);

/* The main loop's clock: net_clock_pass() reads CLOCK_MONOTONIC once at the
 * start of a pass and returns it in microseconds; until the next call,
 * net_pass_us() and lwIP's sys_now() (its timers) return that reading
 * instead of reading the clock again (a read costs ~0.1 us on this VM, and
 * a keep-alive request took ~4). Before the first call (tests, start-up)
 * they read the clock; after it, a loop of its own that waits on lwIP's
 * timers must call net_clock_pass() too, or their time stands still. */
uint64_t net_clock_pass(void);
uint64_t net_pass_us(void);
/* The pass clock in milliseconds, as sys_now() (wraps every ~49 days). Time
 * stamps compared with a loop pass's now_ms come from here: a fresh
 * net_now_ms() can be a millisecond ahead of the pass's reading. */
uint32_t net_pass_ms(void);

#endif
