/* lwIP options for meshgate: NO_SYS=1, raw API, one polling thread.
 *
 * Every option not set here keeps lwIP's default from src/include/lwip/opt.h.
 * Pool counts are u16_t in lwIP: keep every *_NUM below 65535 (70000 wraps).
 * tcp_write/tcp_recved/pbuf.tot_len lengths are u16_t too: callers chunk to
 * NET_MAX_CHUNK (net/stack.h). */
#ifndef MESHGATE_LWIPOPTS_H
#define MESHGATE_LWIPOPTS_H

#define NO_SYS                          1
#define SYS_LIGHTWEIGHT_PROT            0
#define LWIP_NETCONN                    0
#define LWIP_SOCKET                     0
#define LWIP_RAW                        0
#define LWIP_IPV4                       1
#define LWIP_IPV6                       0
#define LWIP_ARP                        1
#define LWIP_ETHERNET                   1
#define LWIP_ICMP                       1
#define LWIP_UDP                        1
#define LWIP_TCP                        1
#define LWIP_DHCP                       0
#define LWIP_DNS                        0
#define LWIP_IGMP                       0
#define LWIP_STATS                      1
#define LWIP_STATS_DISPLAY              0
#define LWIP_NETIF_STATUS_CALLBACK      0
#define LWIP_NETIF_LINK_CALLBACK        0
#define LWIP_SINGLE_NETIF               0
#define LWIP_HAVE_LOOPIF                0
#define LWIP_NETIF_LOOPBACK             0
#define IP_FORWARD                      0
#define IP_REASSEMBLY                   1
#define IP_FRAG                         1
#define ETHARP_SUPPORT_STATIC_ENTRIES   1
#define ARP_TABLE_SIZE                  256
#define ARP_QUEUEING                    1
#define ETHARP_TABLE_MATCH_NETIF        1

/* Byte order helpers come from the C library (they clash with DPDK's). */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS 1

/* Memory: the heap backs PBUF_RAM (TX copies, ARP queue); pools back the rest.
 * Sized for thousands of connections; published by `status`. */
#define MEM_LIBC_MALLOC                 0
#define MEMP_MEM_MALLOC                 0
#define MEM_ALIGNMENT                   8
#define MEM_SIZE                        (64 * 1024 * 1024)
#define MEM_USE_POOLS                   0
#define MEMP_NUM_PBUF                   8192
#define MEMP_NUM_TCP_PCB                16384
#define MEMP_NUM_TCP_PCB_LISTEN         64
/* One ext-arg slot per pcb: net/pcb_index.c's record and destroy callback. */
#define LWIP_TCP_PCB_NUM_EXT_ARGS       1
#define MEMP_NUM_TCP_SEG                32768
#define MEMP_NUM_UDP_PCB                16
#define MEMP_NUM_REASSDATA              16
#define IP_REASS_MAX_PBUFS              64
#define MEMP_NUM_FRAG_PBUF              256
#define MEMP_NUM_ARP_QUEUE              1024
#define MEMP_NUM_SYS_TIMEOUT            (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)
#define PBUF_POOL_SIZE                  16384
#define PBUF_POOL_BUFSIZE               1536
#define LWIP_SUPPORT_CUSTOM_PBUF        1

/* TCP: window scaling so one connection can fill a fast link. */
/* TCP_MSS is the largest segment, for jumbo-frame ports (MTU 9000, see
 * drivers/port.h); each connection's MSS follows its interface's MTU
 * (TCP_CALCULATE_EFF_SEND_MSS), so 1460 on a 1500-byte port. */
#define TCP_MSS                         8960
#define TCP_MSS_1500                    1460
#define LWIP_WND_SCALE                  1
#define TCP_RCV_SCALE                   7
#define TCP_WND                         (256 * 1024)
#define TCP_SND_BUF                     (256 * 1024)
/* A window update of its own when the application has read this much since
 * the last window we announced. lwIP's default (4 * TCP_MSS, 35 KB) sent
 * one for nearly every 64 KB frame a kernel peer sends us, on top of the
 * ACKs that already carry the window: two ACKs per frame where Linux sends
 * 0.7. Half the window still reopens a sender stopped by it long before
 * it has drained. */
#define TCP_WND_UPDATE_THRESHOLD        (TCP_WND / 2)
/* segments per send buffer: sized for 1460-byte segments, the most */
#define TCP_SND_QUEUELEN                ((4 * (TCP_SND_BUF) + (TCP_MSS_1500 - 1)) / (TCP_MSS_1500))
#define TCP_SNDLOWAT                    (24 * 1024) /* u16_t: must stay below 0xffff - 4*TCP_MSS */
#define TCP_SNDQUEUELOWAT               (TCP_SND_QUEUELEN / 2)
#define TCP_QUEUE_OOSEQ                 1
#define LWIP_TCP_SACK_OUT               1
#define TCP_LISTEN_BACKLOG              1
#define TCP_DEFAULT_LISTEN_BACKLOG      255
#define LWIP_TCP_KEEPALIVE              1
#define TCP_OVERSIZE                    TCP_MSS
#define LWIP_TCP_TIMESTAMPS             0
#define LWIP_CALLBACK_API               1
#define LWIP_EVENT_API                  0

#define CHECKSUM_CHECK_IP               1
#define CHECKSUM_CHECK_TCP              1
/* Per-interface checksum switches, so net_if_input() can skip checking a
 * frame whose checksum the kernel vouches for (NET_RX_CSUM_OK). */
#define LWIP_CHECKSUM_CTRL_PER_NETIF    1
/* ...which makes lwIP sum each outgoing IPv4 header in a separate pass
 * (inet_chksum, 1.8% of the CPU in bulk: one call per 1,460-byte segment);
 * summed as the fields are written instead, still per interface. */
#define LWIP_INLINE_IP_CHKSUM           1
/* The payload checksum is summed while tcp_write copies the data in, so
 * tcp_output does not read it a second time. */
#define LWIP_CHECKSUM_ON_COPY           1

/* Internet checksum (RFC 1071) for LWIP_CHKSUM: the 16-bit one's-complement
 * sum of the bytes as native-order 16-bit words (a trailing odd byte counts
 * as if followed by a zero), folded, not inverted -- what lwIP's own
 * lwip_standard_chksum returns. 32-bit loads into a 64-bit accumulator, four
 * at a time: about twice as fast as lwIP's algorithm 3, which showed as 8%
 * of the appliance's CPU in bulk transfers. Tested against a byte-wise
 * reference in tests/unit/test_net_chksum.c. */
#include <stdint.h>
#include <string.h>
static inline uint16_t meshgate_chksum(const void *dataptr, int len)
{
	const unsigned char *p = (const unsigned char *)dataptr;
	uint64_t sum = 0;
	uint32_t a, b, c, d;
	uint16_t h;

	while (len >= 16) {
		memcpy(&a, p, 4);
		memcpy(&b, p + 4, 4);
		memcpy(&c, p + 8, 4);
		memcpy(&d, p + 12, 4);
		sum += (uint64_t)a + b + c + d;
		p += 16;
		len -= 16;
	}
	while (len >= 4) {
		memcpy(&a, p, 4);
		sum += a;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&h, p, 2);
		sum += h;
		p += 2;
		len -= 2;
	}
	if (len > 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		sum += (uint32_t)*p << 8;
#else
		sum += *p;
#endif
	}
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffu) + (sum >> 16);
	sum = (sum & 0xffffu) + (sum >> 16);
	return (uint16_t)sum;
}
#define LWIP_CHKSUM                     meshgate_chksum

/* Copy with checksum for tcp_write (LWIP_CHECKSUM_ON_COPY). When every
 * interface leaves TCP checksums to the driver side (net/stack.c: ports
 * with segmentation offload, where a gathered frame needs only the
 * pseudo-header sum and single frames get theirs on the way out), the sum
 * would never be used: plain copy. */
extern int meshgate_tcp_sum_on_copy;
static inline uint16_t meshgate_chksum_copy(void *dst, const void *src, uint16_t len)
{
	memcpy(dst, src, len);
	return meshgate_tcp_sum_on_copy ? meshgate_chksum(dst, len) : 0;
}
#define LWIP_CHKSUM_COPY(dst, src, len) meshgate_chksum_copy(dst, src, len)

/* Randomness for ISNs and ports: getrandom(2), see net/sys_arch.c. */
unsigned int meshgate_lwip_rand(void);
#define LWIP_RAND()                     meshgate_lwip_rand()

#define LWIP_NOASSERT                   1
#define LWIP_DEBUG                      0

#endif
