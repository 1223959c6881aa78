/* mgbench: mTLS load generator for `make bench` (tests/bench/run.sh).
 *
 * One thread, one epoll loop, non-blocking OpenSSL client connections with a
 * client certificate. Modes:
 *
 *   handshake  C connections in flight, each: TCP connect, full TLS 1.2 mTLS
 *              handshake (no session reuse, no tickets), close. Counts handshakes.
 *   keepalive  C connections, each sends GET PATH and waits for the whole
 *              response, again and again (closed loop). Counts responses.
 *   latency    open loop at RATE requests/s over C connections; latency is
 *              measured from the request's *scheduled* time (no coordinated
 *              omission) to the last byte of the response: p50/p90/p99/max.
 *              The schedule starts once every connection has finished its
 *              handshake (requests due while the handshakes still ran would
 *              measure the handshakes, ~10 ms for 16 of them, not the
 *              request path); requests of the warm-up are sent, not counted.
 *   bulk       C connections, each GETs PATH (a large body) again and again;
 *              MB/s of response body.
 *   idle       opens C mTLS connections (handshake only), prints "idle-ready",
 *              holds them for HOLD seconds (memory measurement), then closes.
 *   resume     like handshake, but each connection resumes the previous
 *              session of its slot (abbreviated handshake when the server
 *              supports it); counts handshakes and how many were resumed.
 *   connreq    C connections in flight, each: TCP connect, full mTLS
 *              handshake, one GET PATH, the whole response, close. Counts
 *              responses (a client that opens a connection per request). The
 *              close is an orderly one (FIN), as a browser's or curl's: the
 *              client's TIME-WAITs need its wide port range (bench_setup).
 *
 * Output: one line "result mode=... key=value ..." on stdout; errors counted.
 * The certificate of the server is NOT verified (the benchmark measures the
 * server; the client's own cost is kept low): the handshake is still a full
 * mutual one on the server side. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum mode { M_HANDSHAKE, M_KEEPALIVE, M_LATENCY, M_BULK, M_IDLE, M_RESUME, M_CONNREQ };
enum cstate { C_FREE, C_CONNECTING, C_HANDSHAKE, C_SEND, C_RECV, C_READY, C_HELD };

struct conn {
	int fd;
	SSL *ssl;
	SSL_SESSION *session;       /* resume mode: last session of this slot */
	enum cstate st;
	char head[4096];
	size_t head_len;
	int head_done;
	long long body_left;
	size_t sent;
	double sched;               /* latency: scheduled time of the request */
	double started;
	uint32_t ev;                /* the events epoll waits for on fd */
};

static struct {
	enum mode mode;
	const char *host, *ca, *cert, *key, *path, *sni;
	int port, conns;
	double duration, rate, hold, warmup;
	SSL_CTX *ctx;
	struct sockaddr_in addr;
	int ep;
	struct conn *c;
	char req[512];
	size_t req_len;
	/* results */
	unsigned long long ops, errors, resumed, body_bytes;
	double *lat;
	size_t nlat, lat_cap;
	/* latency queue: scheduled times not yet sent */
	double *queue;
	size_t qhead, qtail, qcap;
	int measuring;
	int sched;                  /* latency: the schedule has started */
	double t_start, t_end;
	int opened;
} g;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *msg)
{
	fprintf(stderr, "mgbench: %s\n", msg);
	exit(2);
}

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		if (g.mode == M_RESUME && SSL_is_init_finished(c->ssl)) {
			SSL_SESSION *s = SSL_get1_session(c->ssl);

			if (c->session)
				SSL_SESSION_free(c->session);
			c->session = s;
		}
		/* Marked as shut down: freed otherwise, OpenSSL makes the
		 * session non-resumable. */
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		if (g.mode == M_HANDSHAKE || g.mode == M_RESUME) {
			/* Reset instead of FIN: no TIME_WAIT pile-up on the client at
			 * thousands of connections per second. The server finished its
			 * handshake before ours completed (it sends Finished last). */
			struct linger lg = {1, 0};

			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		}
		epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	c->st = C_FREE;
}

static void conn_fail(struct conn *c)
{
	if (g.measuring)
		g.errors++;
	ERR_clear_error();
	conn_close(c);
}

/* Waits for `ev` on c; a system call only when that changes. */
static void want(struct conn *c, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};

	if (c->ev == ev)
		return;
	c->ev = ev;
	epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void conn_open(struct conn *c)
{
	struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket failed (raise ulimit -n?)");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->st = C_CONNECTING;
	c->started = now_s();
	if (connect(c->fd, (struct sockaddr *)&g.addr, sizeof g.addr) < 0 && errno != EINPROGRESS) {
		conn_fail(c);
		return;
	}
	c->ev = EPOLLOUT;
	epoll_ctl(g.ep, EPOLL_CTL_ADD, c->fd, &e);
}

static void req_start(struct conn *c)
{
	c->sent = 0;
	c->head_len = 0;
	c->head_done = 0;
	c->body_left = -1;
	c->st = C_SEND;
}

static void record_latency(double v)
{
	if (g.nlat == g.lat_cap) {
		g.lat_cap = g.lat_cap ? g.lat_cap * 2 : 65536;
		g.lat = realloc(g.lat, g.lat_cap * sizeof *g.lat);
		if (g.lat == NULL)
			die("out of memory");
	}
	g.lat[g.nlat++] = v;
}

/* Latency mode: hand the oldest due request to an idle connection. */
static void latency_dispatch(struct conn *c)
{
	if (g.qhead == g.qtail) {
		c->st = C_READY;
		want(c, EPOLLIN);   /* notice a server close while waiting */
		return;
	}
	c->sched = g.queue[g.qhead++ % g.qcap];
	req_start(c);
}

/* Latency mode: every connection is past its handshake. */
static int all_ready(void)
{
	for (int i = 0; i < g.conns; i++)
		if (g.c[i].st == C_FREE || g.c[i].st == C_CONNECTING || g.c[i].st == C_HANDSHAKE)
			return 0;
	return 1;
}

/* Called when a response is complete. */
static void resp_done(struct conn *c)
{
	double t = now_s();

	if (g.measuring) {
		g.ops++;
		if (g.mode == M_LATENCY)
			record_latency(t - c->sched);
	}
	if (g.mode == M_CONNREQ) {
		conn_close(c);
		conn_open(c);
	} else if (g.mode == M_LATENCY) {
		latency_dispatch(c);
	} else {
		req_start(c);
	}
}

/* Parses the response head in c->head; returns -1 on a bad response. */
static int parse_head(struct conn *c, size_t end)
{
	const char *p = c->head, *h;
	long long cl = -1;

	if (end < 12 || memcmp(p, "HTTP/1.", 7) != 0)
		return -1;
	if (p[9] != '2')
		return -1;     /* every benchmark request must succeed */
	for (h = strstr(p, "\r\n"); h && h < p + end; h = strstr(h + 2, "\r\n")) {
		if (strncasecmp(h + 2, "content-length:", 15) == 0)
			cl = strtoll(h + 17, NULL, 10);
	}
	if (cl < 0)
		return -1;     /* the upstream always sends Content-Length */
	c->body_left = cl;
	return 0;
}

static void on_body(struct conn *c, size_t n)
{
	c->body_left -= (long long)n;
	if (g.measuring)
		g.body_bytes += n;
}

static void conn_io(struct conn *c)
{
	for (;;) {
		int r, e;

		switch (c->st) {
		case C_CONNECTING: {
			int err = 0;
			socklen_t l = sizeof err;

			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err) {
				conn_fail(c);
				return;
			}
			c->ssl = SSL_new(g.ctx);
			if (c->ssl == NULL)
				die("SSL_new failed");
			SSL_set_fd(c->ssl, c->fd);
			if (g.sni)
				SSL_set_tlsext_host_name(c->ssl, g.sni);
			if (g.mode == M_RESUME && c->session)
				SSL_set_session(c->ssl, c->session);
			c->st = C_HANDSHAKE;
			break;
		}
		case C_HANDSHAKE:
			r = SSL_connect(c->ssl);
			if (r == 1) {
				if (g.mode == M_HANDSHAKE || g.mode == M_RESUME) {
					if (g.measuring) {
						g.ops++;
						if (SSL_session_reused(c->ssl))
							g.resumed++;
					}
					conn_close(c);
					conn_open(c);
					return;
				}
				if (g.mode == M_IDLE) {
					c->st = C_HELD;
					g.opened++;
					want(c, EPOLLIN);
					return;
				}
				if (g.mode == M_LATENCY) {
					latency_dispatch(c);
					if (c->st == C_READY)
						return;
				} else {
					req_start(c);
				}
				break;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ) {
				want(c, EPOLLIN);
				return;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				want(c, EPOLLOUT);
				return;
			}
			conn_fail(c);
			return;
		case C_SEND:
			r = SSL_write(c->ssl, g.req + c->sent, (int)(g.req_len - c->sent));
			if (r > 0) {
				c->sent += (size_t)r;
				if (c->sent < g.req_len)
					break;
				c->st = C_RECV;
				/* the answer cannot be there yet unless OpenSSL holds
				 * it: wait for it instead of a read that would fail */
				if (SSL_has_pending(c->ssl))
					break;
				want(c, EPOLLIN);
				return;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				want(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			conn_fail(c);
			return;
		case C_RECV: {
			char buf[65536];

			if (!c->head_done) {
				r = SSL_read(c->ssl, c->head + c->head_len,
					     (int)(sizeof c->head - 1 - c->head_len));
			} else {
				long long want_n = c->body_left < (long long)sizeof buf ? c->body_left
											: (long long)sizeof buf;
				r = SSL_read(c->ssl, buf, (int)want_n);
			}
			if (r <= 0) {
				e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
					want(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
					return;
				}
				conn_fail(c);
				return;
			}
			if (!c->head_done) {
				char *end;
				size_t hl, extra;

				c->head_len += (size_t)r;
				c->head[c->head_len] = 0;
				end = strstr(c->head, "\r\n\r\n");
				if (end == NULL) {
					if (c->head_len >= sizeof c->head - 1) {
						conn_fail(c);
						return;
					}
					break;
				}
				hl = (size_t)(end - c->head) + 4;
				if (parse_head(c, hl) < 0) {
					fprintf(stderr, "mgbench: bad response: %.80s\n", c->head);
					conn_fail(c);
					return;
				}
				c->head_done = 1;
				extra = c->head_len - hl;
				if ((long long)extra > c->body_left) {
					conn_fail(c);     /* pipelining is not used: junk */
					return;
				}
				on_body(c, extra);
			} else {
				on_body(c, (size_t)r);
			}
			if (c->body_left == 0)
				resp_done(c);
			if (c->st == C_READY || c->st == C_CONNECTING || c->st == C_FREE)
				return;
			break;
		}
		case C_READY:
		case C_HELD: {
			char b[64];

			/* Nothing expected: a readable socket here is a close or junk. */
			r = SSL_read(c->ssl, b, sizeof b);
			e = SSL_get_error(c->ssl, r);
			if (r <= 0 && (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE))
				return;
			if (c->st == C_HELD)
				g.opened--;
			conn_fail(c);
			return;
		}
		case C_FREE:
			return;
		}
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	size_t i;

	if (g.nlat == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)(g.nlat - 1) + 0.5);
	return g.lat[i];
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mgbench MODE --host IP --port N --ca F --cert F --key F [options]\n"
		"  MODE: handshake keepalive latency bulk idle resume connreq\n"
		"  --conns N (16)  --duration S (5)  --warmup S (1)  --rate R (1000, latency)\n"
		"  --path P (/)    --sni NAME        --hold S (10, idle)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"ca", 1, 0, 'a'}, {"cert", 1, 0, 'c'},
		{"key", 1, 0, 'k'}, {"conns", 1, 0, 'n'}, {"duration", 1, 0, 'd'},
		{"rate", 1, 0, 'r'}, {"path", 1, 0, 'P'}, {"sni", 1, 0, 's'}, {"hold", 1, 0, 'H'},
		{"warmup", 1, 0, 'w'}, {0, 0, 0, 0}};
	const char *m;
	int o, tfd = -1;
	struct rlimit rl;
	double t0, next_tick = 0, interval = 0;

	if (argc < 2)
		usage();
	m = argv[1];
	if (!strcmp(m, "handshake")) g.mode = M_HANDSHAKE;
	else if (!strcmp(m, "keepalive")) g.mode = M_KEEPALIVE;
	else if (!strcmp(m, "latency")) g.mode = M_LATENCY;
	else if (!strcmp(m, "bulk")) g.mode = M_BULK;
	else if (!strcmp(m, "idle")) g.mode = M_IDLE;
	else if (!strcmp(m, "resume")) g.mode = M_RESUME;
	else if (!strcmp(m, "connreq")) g.mode = M_CONNREQ;
	else usage();
	g.conns = 16;
	g.duration = 5;
	g.warmup = 1;
	g.rate = 1000;
	g.hold = 10;
	g.path = "/";
	optind = 2;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'h': g.host = optarg; break;
		case 'p': g.port = atoi(optarg); break;
		case 'a': g.ca = optarg; break;
		case 'c': g.cert = optarg; break;
		case 'k': g.key = optarg; break;
		case 'n': g.conns = atoi(optarg); break;
		case 'd': g.duration = atof(optarg); break;
		case 'r': g.rate = atof(optarg); break;
		case 'P': g.path = optarg; break;
		case 's': g.sni = optarg; break;
		case 'H': g.hold = atof(optarg); break;
		case 'w': g.warmup = atof(optarg); break;
		default: usage();
		}
	}
	if (!g.host || !g.port || !g.cert || !g.key || g.conns < 1 || g.duration <= 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);

	g.addr.sin_family = AF_INET;
	g.addr.sin_port = htons((uint16_t)g.port);
	if (inet_pton(AF_INET, g.host, &g.addr.sin_addr) != 1)
		die("bad --host");
	g.ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(g.ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(g.ctx, TLS1_2_VERSION);
	/* one read() per record rather than two (header, body): the client's
	 * CPU is shared with the upstream and must not be what limits a fast
	 * gateway */
	SSL_CTX_set_read_ahead(g.ctx, 1);
	if (!SSL_CTX_set_cipher_list(g.ctx, "ECDHE-ECDSA-AES128-GCM-SHA256"))
		die("cipher list");
	/* X25519 first, P-256 too (the certificates are P-256). */
	SSL_CTX_set1_groups_list(g.ctx, getenv("MGBENCH_GROUPS") ? getenv("MGBENCH_GROUPS")
								  : "X25519:P-256");
	if (SSL_CTX_use_certificate_chain_file(g.ctx, g.cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(g.ctx, g.key, SSL_FILETYPE_PEM) != 1)
		die("cannot load client certificate/key");
	SSL_CTX_set_verify(g.ctx, SSL_VERIFY_NONE, NULL);
	if (g.mode == M_RESUME) {
		/* Session IDs (what BearSSL resumes), not tickets. */
		SSL_CTX_set_session_cache_mode(g.ctx, SSL_SESS_CACHE_CLIENT |
						      SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_set_options(g.ctx, SSL_OP_NO_TICKET);
	} else {
		SSL_CTX_set_session_cache_mode(g.ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(g.ctx, SSL_OP_NO_TICKET);
	}
	g.req_len = (size_t)snprintf(g.req, sizeof g.req,
				     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mgbench\r\n\r\n",
				     g.path, g.sni ? g.sni : g.host);

	g.ep = epoll_create1(EPOLL_CLOEXEC);
	g.c = calloc((size_t)g.conns, sizeof *g.c);
	if (!g.c)
		die("out of memory");
	for (int i = 0; i < g.conns; i++)
		g.c[i].fd = -1;

	if (g.mode == M_LATENCY) {
		struct itimerspec its = {0};
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};

		interval = 1.0 / g.rate;
		g.qcap = 1 << 20;
		g.queue = calloc(g.qcap, sizeof *g.queue);
		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		its.it_interval.tv_nsec = (long)(interval * 1e9);
		its.it_value.tv_nsec = its.it_interval.tv_nsec;
		timerfd_settime(tfd, 0, &its, NULL);
		epoll_ctl(g.ep, EPOLL_CTL_ADD, tfd, &e);
	}

	t0 = now_s();
	next_tick = t0;
	/* Idle mode opens connections in waves of 64 so the server's accept
	 * queue is not flooded. */
	for (int i = 0; i < g.conns && (g.mode != M_IDLE || i < 64); i++)
		conn_open(&g.c[i]);
	g.measuring = g.warmup <= 0 && g.mode != M_LATENCY;
	g.sched = g.mode != M_LATENCY;
	if (g.measuring)
		g.t_start = t0;

	for (;;) {
		struct epoll_event ev[256];
		double t = now_s();
		int n;

		if (g.mode == M_IDLE) {
			int pending = 0, next = 0;

			for (int i = 0; i < g.conns; i++) {
				if (g.c[i].st == C_CONNECTING || g.c[i].st == C_HANDSHAKE)
					pending++;
			}
			for (int i = 0; i < g.conns && pending < 64; i++) {
				if (g.c[i].st == C_FREE && g.c[i].fd < 0 && g.c[i].ssl == NULL &&
				    g.c[i].started == 0) {
					conn_open(&g.c[i]);
					pending++;
				}
				next = i;
			}
			(void)next;
			if (pending == 0)
				break;
			if (t - t0 > 600)
				die("idle: connections not established after 600 s");
		} else {
			/* a connection that never gets through still lets the
			 * run go on after 10 s, its failures counted */
			if (!g.sched && (all_ready() || t - t0 >= 10))
				g.sched = 1;
			if (!g.measuring && g.sched && t - t0 >= g.warmup) {
				g.measuring = 1;
				g.t_start = t;
				g.nlat = 0;
			}
			if (g.measuring && t - g.t_start >= g.duration)
				break;
			/* Re-open failed connections (counted as errors) after a pause. */
			for (int i = 0; i < g.conns; i++) {
				if (g.c[i].st == C_FREE && t - g.c[i].started > 0.05)
					conn_open(&g.c[i]);
			}
		}
		n = epoll_wait(g.ep, ev, 256, 10);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == NULL) {
				uint64_t ticks = 0;

				if (read(tfd, &ticks, sizeof ticks) != sizeof ticks)
					continue;
				if (!g.sched) {   /* nothing is due before the schedule starts */
					next_tick += (double)ticks * interval;
					continue;
				}
				for (uint64_t k = 0; k < ticks; k++) {
					next_tick += interval;
					if (g.qtail - g.qhead < g.qcap)
						g.queue[g.qtail++ % g.qcap] = next_tick;
				}
				for (int j = 0; j < g.conns && g.qhead != g.qtail; j++) {
					if (g.c[j].st == C_READY) {
						latency_dispatch(&g.c[j]);
						conn_io(&g.c[j]);
					}
				}
				continue;
			}
			conn_io(ev[i].data.ptr);
		}
	}
	g.t_end = now_s();

	if (g.mode == M_IDLE) {
		double held;

		printf("idle-ready open=%d errors=%llu\n", g.opened, g.errors);
		fflush(stdout);
		held = now_s();
		while (now_s() - held < g.hold) {
			struct epoll_event ev[64];
			int n = epoll_wait(g.ep, ev, 64, 100);

			for (int i = 0; i < n; i++)
				conn_io(ev[i].data.ptr);
		}
		printf("result mode=idle conns=%d open=%d errors=%llu\n", g.conns, g.opened, g.errors);
		return g.opened > 0 ? 0 : 1;
	}
	{
		double secs = g.t_end - g.t_start;

		printf("result mode=%s conns=%d secs=%.2f ops=%llu rate=%.1f errors=%llu", m, g.conns,
		       secs, g.ops, (double)g.ops / secs, g.errors);
		if (g.mode == M_RESUME)
			printf(" resumed=%llu", g.resumed);
		if (g.mode == M_BULK)
			printf(" mbps=%.1f", (double)g.body_bytes / secs / 1e6);
		if (g.mode == M_LATENCY) {
			qsort(g.lat, g.nlat, sizeof *g.lat, cmp_double);
			printf(" target=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f", g.rate,
			       pct(50) * 1e6, pct(90) * 1e6, pct(99) * 1e6,
			       g.nlat ? g.lat[g.nlat - 1] * 1e6 : 0.0);
		}
		printf("\n");
	}
	return g.ops > 0 ? 0 : 1;
}
