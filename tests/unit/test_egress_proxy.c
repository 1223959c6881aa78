/* appliance/proxy_egress.c, the egress splice, on two lwIP interfaces wired
 * back to back in memory (tests/unit/wire.h): "inside" is an inside machine
 * (198.18.28.2), "gw" is meshgate's inside port (198.18.28.1, from
 * data/egress/good.yaml), where the splice listens on the ServiceEntry ports.
 *
 * - The ClientHello timeout: a connection that sends nothing is kept until
 *   EGRESS_PROXY_PEEK_TIMEOUT_MS has passed since it was accepted, then
 *   reset and counted; a poll whose clock reads before the accept (a fresher
 *   clock stamped it) keeps it. That once read as ~49 days unsigned and
 *   reset every such connection at once (the egress e2e flake under ASan).
 * - A ClientHello naming an undeclared host (a real openssl capture) is
 *   reset, counted and logged with the host and the reason.
 * - A full pool refuses the next connection and counts it. Runs from tests/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lwip/tcp.h"

#include "appliance/config.h"
#include "appliance/egress.h"
#include "appliance/proxy_egress.h"
#include "net/stack.h"
#include "tests/unit/data_file.h"
#include "tests/unit/wire.h"

static struct wire in_to_gw, gw_to_in;
static struct net_if *if_in, *if_gw;
static ip4_addr_t ip_in, ip_gw;

static struct config *cfg;
static struct egress *engine;
static struct egress_proxy *ep;
static char last_log[600];
static unsigned nlogs;

static void pump(void)
{
	unsigned n;
	do {
		net_if_flush(if_in);
		net_if_flush(if_gw);
		n = wire_deliver(&in_to_gw, if_gw) + wire_deliver(&gw_to_in, if_in);
	} while (n);
}

static void on_log(void *arg, const char *line)
{
	(void)arg;
	snprintf(last_log, sizeof last_log, "%s", line);
	nlogs++;
}

/* ------------------------------------------------------------ clients */
struct client {
	struct tcp_pcb *pcb;
	bool connected, reset;
};

static void client_err(void *arg, err_t err)
{
	struct client *c = arg;
	if (!c)
		return;             /* client_close's own abort */
	c->pcb = NULL;
	c->reset = err == ERR_RST || err == ERR_ABRT;
}

static err_t client_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct client *c = arg;
	c->connected = err == ERR_OK;
	return ERR_OK;
}

static err_t client_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	if (p) {
		tcp_recved(pcb, p->tot_len);
		pbuf_free(p);
	}
	return ERR_OK;
}

static void client_open(struct client *c, uint16_t port)
{
	memset(c, 0, sizeof *c);
	c->pcb = tcp_new();
	assert_non_null(c->pcb);
	tcp_arg(c->pcb, c);
	tcp_err(c->pcb, client_err);
	tcp_recv(c->pcb, client_recv);
	/* both ends are this lwIP's: the inside machine's leaves by its own wire */
	tcp_bind_netif(c->pcb, net_if_netif(if_in));
	assert_int_equal(tcp_bind(c->pcb, &ip_in, 0), ERR_OK);
	assert_int_equal(tcp_connect(c->pcb, &ip_gw, port, client_connected), ERR_OK);
	pump();
}

static void client_close(struct client *c)
{
	if (c->pcb) {
		tcp_arg(c->pcb, NULL);
		tcp_abort(c->pcb);
		c->pcb = NULL;
	}
	pump();
}

/* ------------------------------------------------------------ set-up */
static int setup(void **state)
{
	static bool once;
	if (!once) {
		IP4_ADDR(&ip_in, 198, 18, 28, 2);
		IP4_ADDR(&ip_gw, 198, 18, 28, 1);
		if (wire_join(0x72, ip4_addr_get_u32(&ip_in), &in_to_gw, &if_in, ip4_addr_get_u32(&ip_gw), &gw_to_in,
			      &if_gw) != 0)
			return -1;
		once = true;
	}
	cfg = calloc(1, sizeof *cfg);
	struct config_errors *errs = calloc(1, sizeof *errs);
	const char *files[] = {"data/egress/good.yaml"};
	if (!cfg || !errs || config_load(files, 1, cfg, errs) != 0) {
		if (errs)
			config_errors_print(errs, stderr);
		return -1;
	}
	free(errs);
	char err[256];
	if (!(engine = egress_new(cfg->egress, NULL, err, sizeof err))) {
		fprintf(stderr, "egress_new: %s\n", err);
		return -1;
	}
	nlogs = 0;
	last_log[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	if (ep)
		egress_proxy_free(ep);
	ep = NULL;
	pump();
	egress_free(engine);
	config_free(cfg);
	free(cfg);
	return 0;
}

static void proxy_start(unsigned pool)
{
	char err[256];
	ep = egress_proxy_new(pool, on_log, NULL);
	assert_non_null(ep);
	assert_int_equal(egress_proxy_apply(ep, cfg, engine, err, sizeof err), 0);
	assert_true(egress_proxy_listens(ep, 443));
}

/* ------------------------------------------------------------ tests */
static void test_client_hello_timeout(void **state)
{
	proxy_start(4);
	struct client c;
	/* the pass's clock: the accept below is stamped with it */
	net_clock_pass();
	uint32_t start = net_pass_ms();
	client_open(&c, 443);
	assert_true(c.connected);
	const struct egress_proxy_counters *k = egress_proxy_counters(ep);
	assert_int_equal(k->accepted, 1);

	/* a poll whose clock reads a millisecond before the accept */
	egress_proxy_poll(ep, start - 1);
	pump();
	assert_int_equal(k->peek_timeout, 0);
	assert_false(c.reset);
	assert_non_null(c.pcb);
	/* the timeout itself, to the millisecond */
	egress_proxy_poll(ep, start + EGRESS_PROXY_PEEK_TIMEOUT_MS);
	pump();
	assert_int_equal(k->peek_timeout, 0);
	assert_false(c.reset);
	egress_proxy_poll(ep, start + EGRESS_PROXY_PEEK_TIMEOUT_MS + 1);
	pump();
	assert_int_equal(k->peek_timeout, 1);
	assert_true(c.reset);
	assert_non_null(strstr(last_log, "\"decision\":\"client-hello-timeout\""));
	assert_non_null(strstr(last_log, "\"source\":\"198.18.28.2:"));
	client_close(&c);
}

static void test_undeclared_host_refused(void **state)
{
	proxy_start(4);
	static uint8_t hello[20000];
	/* openssl s_client -servername www.allowed.example: not a declared host */
	size_t n = read_data("data/sni/openssl_tls12_upper.bin", hello, sizeof hello);
	assert_true(n > 0 && n < 0xffff);
	struct client c;
	net_clock_pass();
	client_open(&c, 443);
	assert_true(c.connected);
	assert_int_equal(tcp_write(c.pcb, hello, (u16_t)n, TCP_WRITE_FLAG_COPY), ERR_OK);
	tcp_output(c.pcb);
	pump();
	egress_proxy_poll(ep, net_pass_ms());
	pump();
	const struct egress_proxy_counters *k = egress_proxy_counters(ep);
	assert_int_equal(k->refused, 1);
	assert_int_equal(k->spliced, 0);
	assert_true(c.reset);
	assert_int_equal(nlogs, 1);
	assert_non_null(strstr(last_log, "\"sni\":\"www.allowed.example\""));
	assert_null(strstr(last_log, "\"decision\":\"allowed\""));
	assert_null(strstr(last_log, "\"decision\":\"\""));
	client_close(&c);
}

static void test_pool_full(void **state)
{
	proxy_start(1);
	struct client a, b;
	net_clock_pass();
	client_open(&a, 443);
	client_open(&b, 443);
	const struct egress_proxy_counters *k = egress_proxy_counters(ep);
	assert_int_equal(k->accepted, 1);
	assert_int_equal(k->pool_empty, 1);
	assert_true(b.reset);
	assert_false(a.reset);
	assert_non_null(a.pcb);
	client_close(&a);
	client_close(&b);
	egress_proxy_poll(ep, net_pass_ms());
	pump();
	/* the slot is free again */
	client_open(&b, 443);
	assert_int_equal(k->accepted, 2);
	assert_false(b.reset);
	client_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_client_hello_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_undeclared_host_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_full, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
