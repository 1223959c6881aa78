/* port_echo: one DPDK port + lwIP, answering ARP and ping and echoing TCP.
 * A test tool for tests/platform/test_port.sh, and the smallest example of
 * the appliance loop: port_poll -> net_if_input, net_timers, port_tx_flush.
 *
 *   port_echo --device DEV --addr A.B.C.D/LEN [--port 7] [--seconds 60]
 *             [--mbufs N] [-- EAL args...]
 *
 * Prints "port_echo: ready ..." once listening, a "port_echo: stats ..."
 * line on exit (after --seconds or SIGTERM/SIGINT). Exit 0, 1 on runtime
 * trouble, 2 on bad arguments or when the port cannot be opened (one line on
 * stderr saying what to check). */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lwip/pbuf.h"
#include "lwip/tcp.h"

#include "drivers/port.h"
#include "net/stack.h"

#define ECHO_CONNS 16
/* We only tcp_recved() what has left the ring, so the peer can never have
 * more than TCP_WND bytes here: the ring cannot overflow. */
#define ECHO_RING TCP_WND
#define IDLE_POLLS_BEFORE_SLEEP 256

struct echo_conn {
	struct tcp_pcb *pcb;
	uint8_t ring[ECHO_RING];
	uint32_t head, len;
	int peer_closed;
};

struct echo {
	struct echo_conn conns[ECHO_CONNS];
	struct port *port;
	struct net_if *nif;
	uint64_t accepted, refused_full, echoed_bytes, aborted;
};

static struct echo echo;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void conn_free(struct echo_conn *c)
{
	c->pcb = NULL;
	c->len = c->head = 0;
	c->peer_closed = 0;
}

static void conn_close(struct echo_conn *c)
{
	struct tcp_pcb *pcb = c->pcb;
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	if (tcp_close(pcb) != ERR_OK) {
		tcp_abort(pcb);
		echo.aborted++;
	}
	conn_free(c);
}

/* Moves ring bytes into lwIP's send buffer as room allows. */
static void conn_drain(struct echo_conn *c)
{
	int wrote = 0;
	while (c->len > 0) {
		uint32_t room = tcp_sndbuf(c->pcb);
		uint32_t n = ECHO_RING - c->head;
		if (n > c->len)
			n = c->len;
		if (n > room)
			n = room;
		if (n > NET_MAX_CHUNK)
			n = NET_MAX_CHUNK;
		if (n == 0)
			break;
		if (tcp_write(c->pcb, c->ring + c->head, (u16_t)n, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;  /* out of segments: the sent callback retries */
		c->head = (c->head + n) % ECHO_RING;
		c->len -= n;
		tcp_recved(c->pcb, (u16_t)n);
		echo.echoed_bytes += n;
		wrote = 1;
	}
	if (wrote)
		tcp_output(c->pcb);
	if (c->peer_closed && c->len == 0)
		conn_close(c);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct echo_conn *c = arg;
	if (!p) {
		c->peer_closed = 1;
		conn_drain(c);
		return ERR_OK;
	}
	if (p->tot_len > ECHO_RING - c->len) {
		/* cannot happen while the window bound holds; refuse loudly */
		pbuf_free(p);
		tcp_arg(pcb, NULL);
		tcp_abort(pcb);
		echo.aborted++;
		conn_free(c);
		return ERR_ABRT;
	}
	uint32_t tail = (c->head + c->len) % ECHO_RING;
	uint32_t first = ECHO_RING - tail;
	if (first > p->tot_len)
		first = p->tot_len;
	pbuf_copy_partial(p, c->ring + tail, (u16_t)first, 0);
	if (first < p->tot_len)
		pbuf_copy_partial(p, c->ring, (u16_t)(p->tot_len - first), (u16_t)first);
	c->len += p->tot_len;
	pbuf_free(p);
	conn_drain(c);
	return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	conn_drain(arg);
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	if (arg)
		conn_free(arg);        /* lwIP already freed the pcb */
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	for (int i = 0; i < ECHO_CONNS; i++) {
		struct echo_conn *c = &echo.conns[i];
		if (c->pcb)
			continue;
		c->pcb = pcb;
		c->head = c->len = 0;
		c->peer_closed = 0;
		tcp_arg(pcb, c);
		tcp_recv(pcb, on_recv);
		tcp_sent(pcb, on_sent);
		tcp_err(pcb, on_err);
		echo.accepted++;
		return ERR_OK;
	}
	echo.refused_full++;
	tcp_abort(pcb);
	return ERR_ABRT;
}

static int usage(const char *why)
{
	fprintf(stderr, "port_echo: %s; usage: port_echo --device DEV --addr A.B.C.D/LEN [--port N] "
		"[--seconds N] [--mbufs N] [-- EAL args]\n", why);
	return 2;
}

int main(int argc, char **argv)
{
	const char *device = NULL, *addr_arg = NULL;
	unsigned long tcp_port = 7, seconds = 60, mbufs = 0;
	const char *const *eal_args = NULL;
	int neal = 0;
	char err[512];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			eal_args = (const char *const *)&argv[i + 1];
			neal = argc - i - 1;
			break;
		}
		if (i + 1 >= argc)
			return usage("missing value after an option");
		char *end;
		if (strcmp(a, "--device") == 0) {
			device = argv[++i];
		} else if (strcmp(a, "--addr") == 0) {
			addr_arg = argv[++i];
		} else if (strcmp(a, "--port") == 0) {
			tcp_port = strtoul(argv[++i], &end, 10);
			if (*end || tcp_port == 0 || tcp_port > 65535)
				return usage("--port must be 1..65535");
		} else if (strcmp(a, "--seconds") == 0) {
			seconds = strtoul(argv[++i], &end, 10);
			if (*end || seconds == 0)
				return usage("--seconds must be a positive number");
		} else if (strcmp(a, "--mbufs") == 0) {
			mbufs = strtoul(argv[++i], &end, 10);
			if (*end || mbufs > 1000000)
				return usage("--mbufs must be a number up to 1000000");
		} else {
			return usage("unknown option");
		}
	}
	if (!device || !addr_arg)
		return usage("--device and --addr are required");

	char ipbuf[32];
	const char *slash = strchr(addr_arg, '/');
	unsigned long prefix = 24;
	struct in_addr ip;
	if (slash) {
		char *end;
		prefix = strtoul(slash + 1, &end, 10);
		if (*end || prefix > 32 || (size_t)(slash - addr_arg) >= sizeof(ipbuf))
			return usage("--addr must be A.B.C.D/LEN");
		memcpy(ipbuf, addr_arg, (size_t)(slash - addr_arg));
		ipbuf[slash - addr_arg] = '\0';
	} else {
		snprintf(ipbuf, sizeof(ipbuf), "%s", addr_arg);
	}
	if (inet_pton(AF_INET, ipbuf, &ip) != 1)
		return usage("--addr must be A.B.C.D/LEN");

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if (port_eal_init(eal_args, neal, NULL, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "port_echo: %s\n", err);
		port_eal_cleanup();
		return 2;
	}
	echo.port = port_open("echo", device, (unsigned)mbufs, 0, err, sizeof(err));
	if (!echo.port) {
		fprintf(stderr, "port_echo: %s\n", err);
		port_eal_cleanup();
		return 2;
	}
	uint8_t mac[6];
	port_mac(echo.port, mac);
	net_init();
	echo.nif = net_if_add("echo", mac, ip.s_addr, (uint8_t)prefix, 0, port_tx_reserve_drv, echo.port);
	struct tcp_pcb *l = tcp_new();
	int rc = 1;
	if (!echo.nif || !l || tcp_bind(l, IP4_ADDR_ANY, (u16_t)tcp_port) != ERR_OK) {
		fprintf(stderr, "port_echo: cannot set up the interface or bind TCP port %lu\n", tcp_port);
		goto out;
	}
	struct tcp_pcb *listener = tcp_listen(l);
	if (!listener) {
		fprintf(stderr, "port_echo: cannot listen on TCP port %lu\n", tcp_port);
		goto out;
	}
	tcp_accept(listener, on_accept);
	port_tx_flush(echo.port);   /* the gratuitous ARP */

	printf("port_echo: ready device=%s mac=%02x:%02x:%02x:%02x:%02x:%02x addr=%s/%lu port=%lu\n",
	       device, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], ipbuf, prefix, tcp_port);
	fflush(stdout);

	uint32_t start = net_now_ms();
	unsigned idle = 0;
	while (!stop && net_now_ms() - start < seconds * 1000u) {
		unsigned n = port_poll(echo.port, net_if_deliver, echo.nif);
		net_timers();
		port_tx_flush(echo.port);
		if (n) {
			idle = 0;
		} else if (++idle >= IDLE_POLLS_BEFORE_SLEEP) {
			struct timespec ts = { 0, 50 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	rc = 0;

out:;
	struct port_stats ps;
	struct net_if_stats ns = { 0 };
	port_get_stats(echo.port, &ps);
	if (echo.nif)
		net_if_get_stats(echo.nif, &ns);
	printf("port_echo: stats rx_packets=%llu rx_bytes=%llu tx_packets=%llu tx_bytes=%llu "
	       "rx_dropped=%llu tx_dropped=%llu rx_errors=%llu tx_errors=%llu tx_ring_full=%llu tx_no_mbuf=%llu "
	       "link_up=%d net_rx=%llu net_tx=%llu rx_no_pbuf=%llu tx_no_buffer=%llu "
	       "accepted=%llu refused=%llu aborted=%llu echoed_bytes=%llu\n",
	       (unsigned long long)ps.rx_packets, (unsigned long long)ps.rx_bytes,
	       (unsigned long long)ps.tx_packets, (unsigned long long)ps.tx_bytes,
	       (unsigned long long)ps.rx_dropped, (unsigned long long)ps.tx_dropped,
	       (unsigned long long)ps.rx_errors, (unsigned long long)ps.tx_errors,
	       (unsigned long long)ps.tx_ring_full, (unsigned long long)ps.tx_no_mbuf, ps.link_up,
	       (unsigned long long)ns.rx_frames, (unsigned long long)ns.tx_frames,
	       (unsigned long long)ns.rx_no_pbuf, (unsigned long long)ns.tx_no_buffer,
	       (unsigned long long)echo.accepted, (unsigned long long)echo.refused_full,
	       (unsigned long long)echo.aborted, (unsigned long long)echo.echoed_bytes);
	fflush(stdout);
	port_close(echo.port);
	port_eal_cleanup();
	return rc;
}
