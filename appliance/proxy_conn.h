/* Internal to the proxy (proxy.c, proxy_http.c): the connection record and
 * the helpers the protocol halves share. Not for other modules. */
#ifndef MESHGATE_PROXY_CONN_H
#define MESHGATE_PROXY_CONN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/ack_wait.h"
#include "appliance/config.h"
#include "appliance/policy.h"
#include "appliance/proxy.h"
#include "appliance/http.h"
#include "tls/tls.h"

struct pbuf;
struct tcp_pcb;
struct net_if;

/* Chains received from one pcb, oldest first. 256 chains cover a full 256 KB
 * window of 1460-byte segments; beyond that lwIP holds the data back. */
#define PROXY_RX_RING 256

/* Per-connection HTTP state. One request is handled at a time: the next
 * request head is not parsed until the previous response has completed, so a
 * local answer (403, 503) can never overtake an upstream response. */
#define PROXY_HEAD_OUT_MAX (HTTP_DEFAULT_HEAD + 1024)
struct http_conn_state {
	bool local;             /* answered by meshgate (demo service or refusal) */
	bool in_flight;         /* a request was forwarded, its response not complete */
	bool close_after;       /* close once the current response is done */
	bool response_started;  /* bytes of the current response reached the client */
	bool head_out_pending;  /* head_out waits for the upstream connection */
	bool body_done;
	unsigned status;
	uint32_t started_ms;
	uint64_t req_bytes, resp_bytes;
	char method[16];
	char path[256];
	char host[256];
	size_t head_out_len, head_out_off;
	char head_out[PROXY_HEAD_OUT_MAX];
};

struct pbuf_ring {
	struct pbuf *items[PROXY_RX_RING];
	unsigned head, count;
	size_t offset;      /* consumed bytes of items[head] */
	size_t bytes;       /* unconsumed bytes in the ring */
};

struct proxy_listener {
	struct config_listener cfg;
	struct tcp_pcb *pcb;
	struct proxy *proxy;
	unsigned next_endpoint;     /* round robin */
	bool open;
};

enum conn_state { CONN_FREE = 0, CONN_HANDSHAKE, CONN_OPEN };
enum up_state { UP_NONE = 0, UP_CONNECTING, UP_OPEN };

struct conn {
	/* --- reset on every allocation (everything before `tls`) --- */
	struct proxy *proxy;
	struct conn *next_free, *prev, *next;
	uint64_t id;
	bool in_use, dirty;
	bool ack_listed;             /* on proxy.acks (kept across reuse, like dirty) */
	uint64_t ack_due_us;         /* look at the owed ACKs again then */
	struct ack_wait down_ack, up_ack;
	enum conn_state state;
	struct proxy_listener *listener;
	int service;
	bool orphan;
	int new_listener;

	struct tcp_pcb *down, *up;
	struct pbuf_ring down_rx;   /* ciphertext from the client */
	struct pbuf_ring up_rx;     /* plaintext from the upstream */
	enum up_state up_state;
	bool down_eof, down_reset, up_eof, up_reset, up_connect_failed, up_shut;
	bool down_needs_output, up_needs_output;
	bool abort_down, abort_up;
	bool closing, down_shut;
	/* PeerAuthentication: PERMISSIVE listeners sniff the first byte (a TLS
	 * handshake record starts with 0x16); DISABLE takes plaintext only. A
	 * plaintext peer has no identity and bypasses the TLS engine. */
	bool sniffing, plain;

	uint32_t peer_ip, local_ip;     /* network order */
	uint16_t peer_port, local_port;
	char principal[300];            /* without spiffe:// */
	char sni[256];

	bool decided;
	struct policy_decision decision;
	enum proxy_reason reason;
	bool tls_failed;
	enum tls_error tls_error;

	uint32_t started_ms, last_activity_ms, deadline_ms, up_deadline_ms, close_deadline_ms;
	uint64_t bytes_from_down, bytes_to_down, bytes_to_up;
	unsigned requests;
	/* istio_requests_total series of the last request (admin_obs.c): the
	 * labels but the status stay while the connection is open, until a
	 * reload (cfg_generation) may rename its service */
	int mreq_series;
	uint16_t mreq_code;
	unsigned mreq_generation;       /* 0: none */

	/* HTTP state (proxy_http.c): reset by http_conn_init */

	/* --- reset by their own init functions --- */
	struct tls_conn tls;
	struct http_conn_state http;
	struct http_request_parser req;
	struct http_response_parser resp;
	char req_head_buf[HTTP_HEAD_BUF_SIZE(HTTP_DEFAULT_HEAD)];
};

struct proxy {
	const struct config *cfg;
	unsigned cfg_generation;        /* +1 per configuration taken, from 1 */
	char gateway_id[CONFIG_MAX_TRUST_DOMAIN + 64];   /* ours, for XFCC By= (set with cfg) */
	const struct tls_credentials *creds;
	struct proxy_options opt;
	struct proxy_listener listeners[CONFIG_MAX_LISTENERS];
	int nlisteners;
	struct net_if *ifs[CONFIG_MAX_PORTS];
	int ifs_count;
	struct conn *pool;
	unsigned pool_size;
	struct conn *free_list;
	struct conn *active;
	unsigned nactive;
	struct conn **dirty;
	unsigned ndirty;
	struct conn **acks;          /* ring of connections that may owe a delayed ACK */
	unsigned acks_head, nacks;
	uint64_t next_id;
	bool draining;
	uint32_t now_ms;
	struct proxy_counters counters;
};

/* shared helpers (proxy.c) */
void pconn_refuse(struct conn *c, enum proxy_reason why);
void pconn_fill_request(struct conn *c, struct policy_request *r);
bool pconn_decide(struct conn *c, const struct policy_request *r);
bool pconn_upstream_connect(struct conn *c);
size_t pconn_upstream_write(struct conn *c, const uint8_t *data, size_t len);
size_t pconn_down_write(struct conn *c, const uint8_t *data, size_t len);
/* The client's plaintext stream, whether it comes through TLS or not. */
const uint8_t *pconn_in_read(struct conn *c, size_t *len);
void pconn_in_ack(struct conn *c, size_t n);
void pconn_flush(struct conn *c);
void pconn_start_close(struct conn *c);
const uint8_t *pconn_up_peek(struct conn *c, size_t *len);
void pconn_up_consume(struct conn *c, size_t n);
void pconn_close_up(struct conn *c);
void pconn_ip_text(uint32_t ip_be, char *buf, size_t len);

/* the http half (proxy_http.c) */
void http_conn_init(struct conn *c);
bool http_progress(struct conn *c);
/* Re-evaluates an open connection after a reload; false = now denied. */
bool http_reevaluate(struct conn *c);

#endif
