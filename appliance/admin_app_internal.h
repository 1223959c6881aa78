/* Internal to the admin console in the appliance (admin_app.c: listener,
 * transport, lifecycle; admin_view.c: what the API shows). Not for other
 * modules. */
#ifndef MESHGATE_ADMIN_APP_INTERNAL_H
#define MESHGATE_ADMIN_APP_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/admin.h"
#include "appliance/admin_app.h"
#include "appliance/config.h"
#include "appliance/http.h"
#include "tls/tls.h"

struct pbuf;
struct tcp_pcb;

struct admin_conn {
	bool in_use, dirty;
	struct admin_app *app;
	struct tcp_pcb *pcb;
	struct pbuf *rx[ADMIN_RX_RING];
	unsigned rx_head, rx_count;
	size_t rx_off;
	bool eof, eof_fed, reset, closing, opened;
	uint32_t started_ms, last_ms, close_deadline_ms;
	uint32_t peer_ip;
	uint16_t peer_port;
	/* the request being read */
	bool in_body, too_large, chunked, keep_alive, is_head;
	char method[16];
	char target[1024];
	size_t target_len;
	char cookie[1024];
	bool has_cookie;
	char ctype[128];
	bool has_ctype;
	size_t body_len;
	char *body;                     /* ADMIN_BODY_MAX, from the app's slab */
	/* the response being sent */
	bool responding, close_after;
	char head[1536];
	size_t head_len, head_off;
	const char *resp;
	size_t resp_len, resp_off;
	char *out;                      /* ADMIN_OUT_MAX, from the app's slab */
	struct http_request_parser req;
	char head_buf[HTTP_HEAD_BUF_SIZE(HTTP_DEFAULT_HEAD)];
	struct tls_conn tls;
};

struct admin_app {
	struct admin_app_options opt;
	const struct config *cfg;
	const struct tls_credentials *creds;
	struct proxy *proxy;
	struct admin_obs *obs;
	struct admin admin;
	struct admin_source src;
	struct tcp_pcb *listener;
	int listen_port_index;
	uint16_t listen_port;
	struct admin_conn *conns;
	unsigned nconns;                /* conns in use */
	char *bodies, *outs;
	uint32_t now_ms;
	char base_dir[CONFIG_MAX_PATH];
	uint64_t accepted, pool_refused, tls_failed;
};

/* admin_app.c */
void admin_app_log(struct admin_app *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void admin_ip_text(uint32_t ip_be, char *buf, size_t len);
unsigned admin_app_conns_in_use(const struct admin_app *app);

/* admin_view.c: the struct admin_source callbacks */
void admin_view_source(struct admin_app *app, struct admin_source *src);

#endif
