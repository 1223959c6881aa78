/* lwIP glue (net/stack.h): Ethernet interfaces whose frames go to and come
 * from driver callbacks. Only lwIP and C library headers here: no DPDK, and
 * no <netinet/ip.h> (its IP_DF/IP_MF clash with lwIP's). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/err.h"
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

#include "net/pcb_index.h"
#include "net/stack.h"
#include "net/tcp_coalesce.h"

#define NET_IF_NAME_MAX 32
#define NET_MTU 1500

/* Gathered offload frames a port holds at most before sending (64 KB each). */
#define NET_GSO_FRAMES 4

struct net_if {
	struct netif netif;             /* first: netif->state points back too */
	char name[NET_IF_NAME_MAX];
	net_tx_reserve_fn tx_reserve;
	void *drv;
	struct net_if_stats stats;
	net_tx_gso_fn tx_gso;           /* NULL: no segmentation offload */
	/* Segments gathered for it: gso[ngso] is being gathered, gso[0..ngso)
	 * are finished frames held until net_if_flush (the end of a loop pass)
	 * or until all NET_GSO_FRAMES are in use, then sent back to back. */
	struct tco gso[NET_GSO_FRAMES];
	unsigned ngso;
	/* Since offload was first set: lwIP leaves this interface's TCP
	 * checksums to us (NETIF_CHECKSUM_GEN_TCP off), a gathered frame gets
	 * the pseudo-header sum, any other TCP frame its checksum on the way
	 * out. For good: segments queued meanwhile have none. */
	int sw_tcp_sum;
	uint32_t csum_flags;            /* the netif's NETIF_CHECKSUM_* */
};


static struct net_if net_ifs[NET_MAX_IFS];
static unsigned net_nifs;
static int net_started;

int meshgate_tcp_sum_on_copy = 1;

/* tcp_write's copies need no checksum when no interface wants lwIP's. */
static void update_sum_on_copy(void)
{
	int want = 0;
	for (unsigned i = 0; i < net_nifs; i++)
		want |= !net_ifs[i].sw_tcp_sum;
	meshgate_tcp_sum_on_copy = want || net_nifs == 0;
}
static net_tx_filter_fn net_tx_filter;
static void *net_tx_filter_arg;

void net_set_tx_filter(net_tx_filter_fn fn, void *arg)
{
	net_tx_filter = fn;
	net_tx_filter_arg = arg;
}

void net_init(void)
{
	if (net_started)
		return;
	lwip_init();
	net_pcb_index_init();
	net_started = 1;
}

/* A driver buffer for one frame of len bytes, counted; NULL (counted) when
 * there is none. */
static void *tx_buf(struct net_if *nif, uint16_t len)
{
	void *buf = nif->tx_reserve(nif->drv, len);
	if (!buf) {
		nif->stats.tx_no_buffer++;
		return NULL;
	}
	nif->stats.tx_frames++;
	return buf;
}

/* Sends one gathered frame: one segment as it came; more with the driver's
 * segmentation offload, or, when the driver does not take the frame (or has
 * turned it off), as the separate segments lwIP made (rebuilt,
 * checksummed). */
static void gso_send_one(struct net_if *nif, struct tco *c)
{
	if (c->nsegs == 0)
		return;
	if (c->nsegs == 1) {
		void *buf = tx_buf(nif, (uint16_t)c->len);
		if (buf) {
			memcpy(buf, c->buf, c->len);
			if (nif->sw_tcp_sum)
				tco_tcp_checksum(buf, c->len);
		}
	} else {
		unsigned n = c->nsegs;
		uint32_t len = tco_finish(c);
		int rc = -1;            /* offload turned off while the frame was held */
		if (nif->tx_gso) {
			rc = nif->tx_gso(nif->drv, c->buf, len, TCO_L4_OFF, TCO_HDR, c->seg);
			if (rc != 0)
				nif->stats.tx_gso_refused++;
		}
		if (rc == 0) {
			nif->stats.tx_gso_frames++;
			nif->stats.tx_gso_segments += n;
			nif->stats.tx_frames += n;
		} else {
			for (unsigned i = 0; i < n; i++) {
				void *buf = tx_buf(nif, (uint16_t)tco_segment_len(c, i));
				if (!buf)
					break;   /* TCP retransmits the rest */
				tco_segment(c, i, buf);
			}
			if (rc == -2)
				nif->tx_gso = NULL;     /* the driver has turned it off */
		}
	}
	tco_reset(c);
}

/* Sends every frame held and the one being gathered, in order. */
static void gso_send(struct net_if *nif)
{
	for (unsigned i = 0; i <= nif->ngso; i++)
		gso_send_one(nif, &nif->gso[i]);
	nif->ngso = 0;
}

/* The frame being gathered is finished: hold it, so that the frames a pass
 * makes leave together (a receiver on a veth is woken once for them, not
 * once per frame), or, when every buffer is in use, send them all. */
static void gso_hold(struct net_if *nif)
{
	if (nif->ngso + 1 < NET_GSO_FRAMES)
		nif->ngso++;
	else
		gso_send(nif);
}

void net_if_flush(struct net_if *nif)
{
	if (nif->gso[0].buf)
		gso_send(nif);
}

/* lwIP hands us a finished frame as a pbuf chain: copy it into the driver's
 * buffer, or, with segmentation offload, gather consecutive segments of one
 * TCP flow (net/tcp_coalesce.h) until a frame that does not continue them,
 * or net_if_flush. ERR_MEM (not ERR_OK) on no buffer so TCP keeps the
 * segment queued and retries on its next output instead of waiting for a
 * retransmit. */
static err_t net_if_linkoutput(struct netif *netif, struct pbuf *p)
{
	struct net_if *nif = netif->state;
	if (net_tx_filter && !net_tx_filter(net_tx_filter_arg, nif, p->payload, p->len, p->tot_len)) {
		nif->stats.tx_filtered++;
		return ERR_OK;
	}
	if (nif->tx_gso) {
		uint8_t h[TCO_HDR];
		struct tco *c = &nif->gso[nif->ngso];
		if (p->tot_len > TCO_HDR && pbuf_copy_partial(p, h, TCO_HDR, 0) == TCO_HDR &&
		    tco_eligible(h, p->tot_len)) {
			if (tco_continues(c, h, p->tot_len)) {
				uint8_t *dst = tco_append(c, h, p->tot_len);
				pbuf_copy_partial(p, dst, (u16_t)(p->tot_len - TCO_HDR), TCO_HDR);
				return ERR_OK;
			}
			if (c->nsegs)
				gso_hold(nif);
			if (nif->tx_gso) {      /* still on: the driver may have turned it off */
				c = &nif->gso[nif->ngso];
				pbuf_copy_partial(p, tco_start(c, h, p->tot_len), p->tot_len, 0);
				return ERR_OK;
			}
		} else {
			gso_send(nif);  /* keeps the flow's frames in order */
		}
	}
	void *buf = tx_buf(nif, p->tot_len);
	if (!buf)
		return ERR_MEM;
	pbuf_copy_partial(p, buf, p->tot_len, 0);
	if (nif->sw_tcp_sum)
		tco_tcp_checksum(buf, p->tot_len);
	return ERR_OK;
}

int net_if_set_gso(struct net_if *nif, net_tx_gso_fn fn)
{
	if (!fn) {
		net_if_flush(nif);
		nif->tx_gso = NULL;
		return 0;
	}
	for (unsigned i = 0; i < NET_GSO_FRAMES; i++) {
		if (nif->gso[i].buf)
			continue;
		uint8_t *buf = malloc(TCO_MAX_FRAME);
		if (!buf)
			return -1;      /* the ones made stay for the next try */
		tco_init(&nif->gso[i], buf);
	}
	nif->tx_gso = fn;
	if (!nif->sw_tcp_sum) {
		nif->sw_tcp_sum = 1;
		nif->csum_flags &= ~(uint32_t)NETIF_CHECKSUM_GEN_TCP;
		NETIF_SET_CHECKSUM_CTRL(&nif->netif, nif->csum_flags);
		update_sum_on_copy();
	}
	return 0;
}

static err_t net_if_init_netif(struct netif *netif)
{
	struct net_if *nif = netif->state;
	unsigned idx = (unsigned)(nif - net_ifs);
	netif->name[0] = 'm';
	netif->name[1] = (char)('0' + idx);
	netif->output = etharp_output;
	netif->linkoutput = net_if_linkoutput;
	netif->mtu = NET_MTU;
	netif->hwaddr_len = ETH_HWADDR_LEN;
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
	return ERR_OK;
}

struct net_if *net_if_add(const char *name, const uint8_t mac[6],
			  uint32_t addr_be, uint8_t prefix, uint32_t gateway_be,
			  net_tx_reserve_fn tx_reserve, void *drv)
{
	ip4_addr_t addr, mask, gw;
	if (!net_started || net_nifs >= NET_MAX_IFS || prefix > 32 || !tx_reserve || !mac)
		return NULL;
	struct net_if *nif = &net_ifs[net_nifs];
	memset(nif, 0, sizeof(*nif));
	snprintf(nif->name, sizeof(nif->name), "%s", name ? name : "");
	nif->tx_reserve = tx_reserve;
	nif->drv = drv;
	/* netif_add() keeps hwaddr; it must be set before netif_set_up(),
	 * which announces the address with a gratuitous ARP. */
	memcpy(nif->netif.hwaddr, mac, ETH_HWADDR_LEN);

	addr.addr = addr_be;
	mask.addr = prefix ? htonl(0xffffffffu << (32 - prefix)) : 0;
	gw.addr = gateway_be;
	if (!netif_add(&nif->netif, &addr, &mask, &gw, nif, net_if_init_netif, ethernet_input))
		return NULL;
	nif->csum_flags = NETIF_CHECKSUM_ENABLE_ALL;    /* netif_add set it so */
	netif_set_up(&nif->netif);
	if (gateway_be != 0 && netif_default == NULL)
		netif_set_default(&nif->netif);
	net_nifs++;
	update_sum_on_copy();
	return nif;
}

/* What a frame the kernel vouches for is checked for: not its TCP and UDP
 * checksums (the IPv4 header's is always right and is still checked). */
#define NET_CSUM_TRUSTED (NETIF_CHECKSUM_ENABLE_ALL & ~(NETIF_CHECKSUM_CHECK_TCP | NETIF_CHECKSUM_CHECK_UDP))

void net_if_input(struct net_if *nif, const void *frame, uint32_t len, unsigned flags)
{
	const uint8_t *f = frame;
	/* A pbuf chain holds at most 65535 bytes: a larger frame (receive
	 * offload: an IPv4 packet up to 65535 plus its Ethernet header) goes
	 * to IPv4 without the Ethernet header, as ethernet_input() would. */
	int whole = len <= 0xffff;
	if (!whole && (len > SIZEOF_ETH_HDR + 0xffff || f[12] != 0x08 || f[13] != 0x00)) {
		nif->stats.rx_oversize++;
		return;
	}
	uint16_t n = (uint16_t)(whole ? len : len - SIZEOF_ETH_HDR);
	struct pbuf *p = pbuf_alloc(PBUF_RAW, n, PBUF_POOL);
	if (!p) {
		nif->stats.rx_no_pbuf++;
		return;
	}
	pbuf_take(p, whole ? f : f + SIZEOF_ETH_HDR, n);
	nif->stats.rx_frames++;
	if (flags & NET_RX_CSUM_OK)
		NETIF_SET_CHECKSUM_CTRL(&nif->netif, nif->csum_flags & NET_CSUM_TRUSTED);
	/* net/pcb_index.h: the segment's pcb to the head of lwIP's list (or
	 * the list hidden for a segment of no connection); for a frame that is
	 * not IPv4 (length 0) it only takes in new pcbs */
	bool ipv4 = len > SIZEOF_ETH_HDR && f[12] == 0x08 && f[13] == 0x00;
	net_pcb_index_front(ipv4 ? f + SIZEOF_ETH_HDR : f, ipv4 ? len - SIZEOF_ETH_HDR : 0);
	err_t e = whole ? nif->netif.input(p, &nif->netif) : ip4_input(p, &nif->netif);
	net_pcb_index_after();
	if (flags & NET_RX_CSUM_OK)
		NETIF_SET_CHECKSUM_CTRL(&nif->netif, nif->csum_flags);
	if (e != ERR_OK)
		pbuf_free(p);
}

void net_if_set_mtu(struct net_if *nif, uint16_t mtu)
{
	nif->netif.mtu = mtu;
}

void net_if_deliver(void *nif, const void *frame, uint32_t len, unsigned flags)
{
	net_if_input(nif, frame, len, flags);
}

struct netif *net_if_netif(struct net_if *nif)
{
	return &nif->netif;
}

uint32_t net_if_addr(const struct net_if *nif)
{
	return ip4_addr_get_u32(netif_ip4_addr(&nif->netif));
}

const char *net_if_name(const struct net_if *nif)
{
	return nif->name;
}

void net_if_get_stats(const struct net_if *nif, struct net_if_stats *out)
{
	*out = nif->stats;
}

void net_timers(void)
{
	sys_check_timeouts();
}

uint32_t net_timers_due_ms(void)
{
	return sys_timeouts_sleeptime();   /* SYS_TIMEOUTS_SLEEPTIME_INFINITE when none */
}
